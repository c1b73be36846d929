"""What a run leaves for its user and for CI: the output folder's files (``files``), the
plots (``plots``), the terminal summary (``summary``), the progress bar (``progress``),
the run report (``report``, its tables ``report_tables``), the comparison of runs
(``compare``, its page ``compare_page``) and the golden KPIs (``golden``); built on a run
folder read back (``run_folder``), the KPI names (``kpi_names``), Plotly figures
(``charts``) and self-contained pages (``page``)."""

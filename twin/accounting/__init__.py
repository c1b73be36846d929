"""What a run counts and reports: the loss ledger (``ledger``), the upload counters
(``counters``), the typed KPIs and results (``kpis``, ``records``, ``mdc_report``,
``results``), the run over time (``series``), which fault lost which readings
(``attribution``) and the scoring of the analytics against the
injected truth (``scoring``, ``forecasts``)."""

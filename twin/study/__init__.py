"""Studies over many runs (DESIGN.md §8): sweeps with replications and confidence intervals
(``sweep``), hardware sizing and fleet growth searches (``sizing``), on a process pool or a
Dask cluster (``executors``).

In the order a study uses them: ``kpi_names`` (what a KPI is called: a dotted path into
``results.json``'s ``kpis``, plus the derived KPIs), ``points`` (the ``--vary``/``--choose``
axes and the scenarios they resolve to), ``records`` (one run as a task and its record, the
append-only record file that makes studies resumable), ``executors`` (serial, pool, Dask),
``runbook`` (runs a batch of tasks, skipping recorded ones, with one progress bar),
``stats`` (Student-t intervals), ``slo`` and ``feasibility`` (service-level objectives and
the sequential check of a candidate against them), ``cost`` (catalog price and energy),
``sweep``, ``sizing``, ``pages`` (``sweep.html``, ``size.html``), ``files`` (what a study
folder holds) and ``summary`` (what the commands print).
"""

"""IMDC Twin: the digital twin that wires the simulated field, network and MDCs around the
real pipeline (DESIGN.md §2). By job, in the order a run uses them: ``scenario`` (the TOML
schema), ``world`` (the field, the network, the MDCs, an upload's journey, the fault
registry), ``sil`` (the pipeline's service time and its calibration), ``accounting`` (the
ledger, the typed results and their scoring) and ``outputs`` (files, plots, the terminal
summary, the run report, comparisons and golden KPIs); ``runner.run(scenario, seed) ->
Results`` is one run and ``cli`` the ``twin`` command."""

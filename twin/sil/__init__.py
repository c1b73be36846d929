"""Software in the loop (DESIGN.md §4): the real pipeline's service time in simulated seconds
(``service_time``: the calibrated, measured and model modes) and the calibration that fits
its cost model on this machine (``calibrate``)."""

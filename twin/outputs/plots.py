"""Plots of a run, written beside ``results.json`` (matplotlib Agg, no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from twin.accounting.results import Results

#: Bin of the "readings stored" panel, s.
STORED_BIN_S = 900.0


def overview_png(path: Path, results: Results) -> Path:
    """Three panels over simulated time: generation by fleet (kW), readings stored per
    15 min, and the distribution of end-to-end latency (s)."""
    series = results.series
    fig = Figure(figsize=(9, 9), layout="constrained")  # no pyplot: no global state
    gen, flow, lat = fig.subplots(3, 1)
    for fleet in series.fleets:
        t_h = (np.arange(fleet.power_w.size) + 0.5) * fleet.sample_s / 3600
        (line,) = gen.plot(t_h, fleet.power_w / 1000, label=f"{fleet.name} ({fleet.kind})")
        if fleet.load_w is not None:
            gen.plot(
                t_h,
                fleet.load_w / 1000,
                color=line.get_color(),
                linestyle="--",
                label=f"{fleet.name} load",
            )
    gen.set(
        ylabel="power, kW",
        xlabel="simulated time, h",
        title="What the sources produced (solid) and the facilities drew (dashed)",
    )
    gen.legend(loc="upper left")

    table = series.timeseries
    t_s = table.rows[:, table.columns.index("t_s")]
    stored = table.rows[:, table.columns.index("readings_stored")]
    bins = (t_s // STORED_BIN_S).astype(np.int64)
    counts = np.bincount(bins, weights=stored) if len(bins) else np.zeros(0)
    flow.bar(
        np.arange(len(counts)) * STORED_BIN_S / 3600,
        counts,
        width=STORED_BIN_S / 3600,
        align="edge",
        color="tab:green",
    )
    flow.set(
        ylabel="readings stored / 15 min",
        xlabel="simulated time, h",
        title="What the pipeline stored",
    )

    latency = series.latency
    if latency.counts.size:
        lat.hist(latency.edges_s[:-1], bins=latency.edges_s, weights=latency.counts,
                 color="tab:purple")  # fmt: skip
        stats = latency.stats
        for q, value, style in ((50, stats.p50, "-"), (95, stats.p95, "--"), (99, stats.p99, ":")):
            if value is not None:
                lat.axvline(value, color="black", linestyle=style, label=f"p{q} {value:.0f} s")
        lat.legend()
    lat.set(xlabel="end of interval -> stored, s", ylabel="readings", title="End-to-end latency")
    fig.savefig(path, dpi=110)
    return path

"""Plots of a run, written beside ``results.json`` (matplotlib Agg, no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from twin.accounting.ledger import Ledger
from twin.world.fleet import FleetData


def overview_png(path: Path, fleets: list[FleetData], ledger: Ledger, horizon_s: float) -> Path:
    """Three panels over simulated time: generation by fleet (kW), readings stored per
    15 min, and the distribution of end-to-end latency (s)."""
    fig = Figure(figsize=(9, 9), layout="constrained")  # no pyplot: no global state
    gen, flow, lat = fig.subplots(3, 1)
    for fleet in fleets:
        step_s = fleet.spec.meter.sample_s
        t_h = (np.arange(fleet.power_w.shape[1]) + 0.5) * step_s / 3600
        (line,) = gen.plot(
            t_h, fleet.power_w.sum(axis=0) / 1000, label=f"{fleet.spec.name} ({fleet.spec.kind})"
        )
        if fleet.load_w is not None:
            gen.plot(
                t_h,
                fleet.load_w.sum(axis=0) / 1000,
                color=line.get_color(),
                linestyle="--",
                label=f"{fleet.spec.name} load",
            )
    gen.set(
        ylabel="power, kW",
        xlabel="simulated time, h",
        title="What the sources produced (solid) and the facilities drew (dashed)",
    )
    gen.legend(loc="upper left")

    stored_at_s = ledger.stored_at_s[np.isfinite(ledger.stored_at_s)]
    bins_s = np.arange(0.0, horizon_s + 900.0, 900.0)
    counts, edges = np.histogram(stored_at_s, bins=bins_s)
    flow.bar(edges[:-1] / 3600, counts, width=0.25, align="edge", color="tab:green")
    flow.set(
        ylabel="readings stored / 15 min",
        xlabel="simulated time, h",
        title="What the pipeline stored",
    )

    latency_s = ledger.latencies_s()
    if latency_s.size:
        lat.hist(latency_s, bins=60, color="tab:purple")
        for q, style in ((50, "-"), (95, "--"), (99, ":")):
            value = float(np.percentile(latency_s, q))
            lat.axvline(value, color="black", linestyle=style, label=f"p{q} {value:.0f} s")
        lat.legend()
    lat.set(xlabel="end of interval -> stored, s", ylabel="readings", title="End-to-end latency")
    fig.savefig(path, dpi=110)
    return path

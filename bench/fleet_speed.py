"""Fleet-scale speed figures for the README: uploads per wall-second, simulated/wall time
and the peak memory of one-day runs of the baseline at several fleet sizes, calibrated
(every upload through the real pipeline) and in ``model`` mode at a 2 % sample, each
in-process and with the pipeline worker.

Run from the project's root (each run is a ``twin run`` a reader can repeat; figures move
with the machine and its load, so report them with the machine)::

    .venv/bin/python bench/fleet_speed.py --sites 220,1000 --repeats 3
    .venv/bin/python bench/fleet_speed.py --sites 10000 --repeats 1

Wall time is the run's own ``wall_time_s`` (results.json: building the fleet and
simulating, without the interpreter's start and the output files). Peak memory is the
largest proportional set size (PSS: shared pages divided among the processes sharing
them) of the ``twin`` process plus its pipeline worker, sampled every 0.2 s from
``/proc/PID/smaps_rollup`` (Linux).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: ``model`` mode at a 2 % sample (DESIGN §7's budget).
MODEL_2 = ["--set", 'pipeline.service_time="model"', "--set", "pipeline.pipeline_sample_rate=0.02"]
#: (label, extra ``twin run`` arguments) of each configuration.
CONFIGS = {
    "calibrated in-process": ["--pipeline-workers", "0"],
    "calibrated worker": ["--pipeline-workers", "1"],
    "model 2 % in-process": [*MODEL_2, "--pipeline-workers", "0"],
    "model 2 % worker": [*MODEL_2, "--pipeline-workers", "1"],
}
#: Share of the baseline's 220 sites that are PV (200 PV, 20 wind).
PV_SHARE = 200 / 220
#: Sites per LTE-M cell in the figures (the 1,000-site day on one cell delivers all).
SITES_PER_CELL = 1000


def fleet_args(sites: int) -> list[str]:
    """``--set`` arguments for a baseline fleet of ``sites`` sites (its PV/wind mix), with a
    cell per :data:`SITES_PER_CELL` sites (one LTE-M cell cannot carry 10,000 meters'
    uploads every 15 minutes: most would fail, and the run would measure a jam)."""
    pv = round(sites * PV_SHARE)
    cells = -(-sites // SITES_PER_CELL)
    return [
        "--set",
        f"fleet.pv.count={pv}",
        "--set",
        f"fleet.wind.count={sites - pv}",
        "--set",
        f"network.cellular.cells_per_region={cells}",
    ]


def _tree_pss_bytes(pid: int) -> int:
    """Proportional set size of ``pid`` and its children (one level: the pipeline worker),
    bytes: pages the forked worker shares with the twin count once, not twice."""
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        return 0
    total = 0
    for p in pids:
        with contextlib.suppress(OSError, StopIteration, ValueError):  # it ended meanwhile
            rollup = Path(f"/proc/{p}/smaps_rollup").read_text().splitlines()
            pss_kib = next(line for line in rollup if line.startswith("Pss:")).split()[1]
            total += int(pss_kib) * 1024
    return total


def run_once(sites: int, extra: list[str], out: Path) -> dict[str, float]:
    """One ``twin run`` of the baseline with ``sites`` sites; its figures."""
    command = [
        str(ROOT / ".venv" / "bin" / "twin"),
        "run",
        str(ROOT / "scenarios" / "baseline.toml"),
        "--out",
        str(out),
        "--force",
        "--no-progress",
        "--no-plots",
        *fleet_args(sites),
        *extra,
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while process.poll() is None:
        peak = max(peak, _tree_pss_bytes(process.pid))
        time.sleep(0.2)
    if process.returncode != 0:
        assert process.stderr is not None
        raise RuntimeError(f"{' '.join(command)}: {process.stderr.read().decode()}")
    results = json.loads((out / "results.json").read_text())
    wall_s = results["wall_time_s"]
    uploads = results["kpis"]["uploads_delivered"]
    return {
        "wall_s": wall_s,
        "uploads_per_s": uploads / wall_s,
        "sim_per_wall": results["scenario"]["duration_s"] / wall_s,
        "peak_gib": peak / 2**30,
        "uploads": uploads,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", default="220,1000", help="fleet sizes, comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="which configurations")
    args = parser.parse_args()
    print(
        "| sites | configuration | uploads | wall s | uploads / wall-s | sim / wall "
        "| peak memory GiB |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="fleet-speed-") as tmp:
        for sites in (int(s) for s in args.sites.split(",")):
            for label in args.configs.split(","):
                runs = [
                    run_once(sites, CONFIGS[label], Path(tmp) / "out") for _ in range(args.repeats)
                ]
                median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                print(
                    f"| {sites:,} | {label} | {int(median['uploads']):,} | "
                    f"{median['wall_s']:.1f} | {median['uploads_per_s']:,.0f} | "
                    f"{median['sim_per_wall']:,.0f}x | {median['peak_gib']:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    sys.exit(main())

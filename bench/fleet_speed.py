"""Fleet-scale speed figures for the README: uploads per wall-second, simulated/wall time
and the peak memory of one-day runs of the baseline at several fleet sizes, calibrated
(every upload through the real pipeline; in-process and with the pipeline worker) and in
``model`` mode at a 2 % sample.

Run from the project's root (each run is a ``twin run`` a reader can repeat; figures move
with the machine and its load, so report them with the machine)::

    .venv/bin/python bench/fleet_speed.py --sites 220,1000 --repeats 3
    .venv/bin/python bench/fleet_speed.py --sites 10000 --repeats 1

Wall time is the run's own ``wall_time_s`` (results.json: building the fleet and
simulating, without the interpreter's start and the output files). Peak memory is the
largest sum of the resident set sizes of the ``twin`` process and its pipeline worker,
sampled every 0.2 s from ``/proc`` (Linux).
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
#: (label, extra ``twin run`` arguments) of each configuration.
CONFIGS = {
    "calibrated in-process": ["--pipeline-workers", "0"],
    "calibrated worker": ["--pipeline-workers", "1"],
    "model 2 %": [
        "--set",
        'pipeline.service_time="model"',
        "--set",
        "pipeline.pipeline_sample_rate=0.02",
        "--pipeline-workers",
        "0",
    ],
}
#: Share of the baseline's 220 sites that are PV (200 PV, 20 wind).
PV_SHARE = 200 / 220
PAGE_BYTES = 4096


def fleet_args(sites: int) -> list[str]:
    """``--set`` arguments for a baseline fleet of ``sites`` sites (its PV/wind mix)."""
    pv = round(sites * PV_SHARE)
    return ["--set", f"fleet.pv.count={pv}", "--set", f"fleet.wind.count={sites - pv}"]


def _tree_rss_bytes(pid: int) -> int:
    """Resident bytes of ``pid`` and its children (one level: the pipeline worker)."""
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        return 0
    total = 0
    for p in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):  # it ended meanwhile
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * PAGE_BYTES
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
        peak = max(peak, _tree_rss_bytes(process.pid))
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
        "peak_rss_gib": peak / 2**30,
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
        "| peak RSS GiB |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="fleet-speed-") as tmp:
        for sites in (int(s) for s in args.sites.split(",")):
            for label in args.configs.split(","):
                runs = [
                    run_once(sites, CONFIGS[label], Path(tmp) / "out")
                    for _ in range(args.repeats)
                ]
                median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                print(
                    f"| {sites:,} | {label} | {int(median['uploads']):,} | "
                    f"{median['wall_s']:.1f} | {median['uploads_per_s']:,.0f} | "
                    f"{median['sim_per_wall']:,.0f}x | {median['peak_rss_gib']:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    sys.exit(main())

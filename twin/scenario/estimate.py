"""What a run will cost, estimated from its scenario before anything is built: peak memory
and a rough wall time (DESIGN.md §7), and the check that refuses a run this machine cannot
hold (DESIGN.md §9: a run too large for the machine gets one line, not a MemoryError after
minutes of work).

Memory. A run holds, per site and sample step of each fleet (a "site-step", one reading),
arrays of the fleet's shape ``[n_sites, n_steps]`` (``twin.world.fleet.FleetData``): the
sources' AC power (float64, 8 B), the facilities' load where the fleet has one (float64,
8 B) and one int64 register series per metered channel (8 B each: one energy channel, two
with a load, plus the electrical channels the meter records); and the ledger's state per
reading (``twin.accounting.ledger.Ledger``: copies int32, final state and blame int8, the
time of the final state float64: 14 B). Its peak is the larger of two phases: building a
fleet, when the arrays of the fleets built before it are joined by about 8 float64 arrays of
its shape with a weather file (the weather on the sites' steps, source-model intermediates,
clock offsets, energy and accuracy draws; 64 B per site-step) or 5 with synthetic weather
(which also allocates about 40 MB once for its climate), and 4 more for a fleet with
facility loads (the load model's terms); and the simulation, when
everything kept is joined by about 57 B per reading (the pipeline analytics' per-series
caches, the ledger's end-of-run audit and latency arrays) and, per site, by the analytics'
fleet grid (``pipeline.analyze.fleet.FleetGrid``: 15-min bins over its window whatever the
run's length, about 42 float64 per site and bin with the transients of an analysis).
Those transient figures are the numpy allocations of ``build_fleets`` and ``run`` as
``tracemalloc`` counts them (numpy reports its allocations to it). Add the interpreter
with the twin's libraries loaded (:data:`BASE_BYTES`, the peak resident set of a 2-site
run). The estimate is checked
against the peak resident set of real runs (``/usr/bin/time -v``) and, in the tests,
against ``tracemalloc``.

Time. A rough figure from the same counts: a start-up cost, building the sources and
meters per site-step, and per upload the real pipeline processes (or, in ``model`` mode,
only costs) the world's wall time per upload.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from pipeline.analyze.fleet import FLEET_STEP_S, FLEET_WINDOW_DAYS
from twin.errors import UsageError
from twin.scenario.loader import Scenario

#: Resident memory of the interpreter with numpy, pandas, pvlib, lxml, SimPy and the
#: pipeline loaded, and a small run's fixed structures, bytes (peak RSS of a 2-site run).
BASE_BYTES = 270 * 2**20
#: Bytes the run keeps per site-step: AC power, float64.
POWER_BYTES = 8
#: ... per site-step of a fleet with facility loads: the load, float64.
LOAD_BYTES = 8
#: ... per site-step and metered channel: the register values, int64.
CHANNEL_BYTES = 8
#: ... per reading in the ledger: copies int32, final and blame int8, final time float64.
LEDGER_BYTES = 4 + 1 + 1 + 8
#: Arrays alive while one fleet is built, bytes per site-step of that fleet: with a
#: weather file (8 float64 arrays) and with synthetic weather drawn per site (5).
BUILD_BYTES = 8 * 8
BUILD_BYTES_SYNTHETIC = 5 * 8
#: ... and more for a fleet with facility loads (4 float64 arrays: the load model's terms).
LOAD_BUILD_BYTES = 4 * 8
#: What synthetic weather allocates once, whatever the fleet's size and the run's length
#: (its climate's statistics), bytes.
SYNTHETIC_BYTES = 40 * 10**6
#: Arrays alive while the run goes besides what it keeps, bytes per reading: the pipeline
#: analytics' per-series caches (the expected clear-sky energy of each interval, float64)
#: and, at the end, the ledger's audit and latency arrays.
RUN_BYTES = 57
#: Bins per site of the analytics' fleet grid: its window and the day under way.
GRID_BINS = (FLEET_WINDOW_DAYS + 1) * 86400 // FLEET_STEP_S
#: Bytes per site and grid bin while the run goes: the grid's arrays (readings, clear-sky
#: and station series, expected energy, flags) and an analysis' transient copies of them,
#: about 42 float64 (``tracemalloc`` of runs of 60 and 240 sites, as the tests measure).
GRID_BYTES_PER_BIN = 42 * 8
#: Fraction of the available memory a run may plan to use: the rest is headroom for the
#: allocator's fragmentation and the page cache of the store.
USABLE_FRACTION = 0.9

#: Wall time to start (imports, the weather file, the store), s; synthetic weather adds the
#: fitting of its climate.
START_S = 2.0
SYNTHETIC_S = 5.0
#: Wall time per site-step of building the sources and meters, s.
BUILD_S_PER_SITE_STEP = 3e-6
#: Wall time per upload through the real pipeline, and per upload only costed, s.
S_PER_UPLOAD_RUN = 3e-4
S_PER_UPLOAD_MODELLED = 5e-5


@dataclass(frozen=True)
class RunEstimate:
    """What a run will cost: ``sites``, ``readings`` (site-steps), ``uploads`` (upload
    windows); bytes of arrays: those it keeps from start to end (``kept_bytes``: the
    fleets' and the ledger's), its peak while building the fleets (``build_bytes``) and
    while simulating (``run_bytes``); its peak ``memory_bytes`` (with the interpreter and
    fixed costs) and a rough ``wall_s``."""

    sites: int
    readings: int
    uploads: int
    kept_bytes: int
    build_bytes: int
    run_bytes: int
    memory_bytes: int
    wall_s: float

    def describe(self) -> str:
        """One line: sites, readings, memory and time."""
        return (
            f"{self.sites:,} sites, {self.readings:,} readings, {self.uploads:,} uploads; "
            f"about {_gib(self.memory_bytes)} of memory and {_duration(self.wall_s)}"
        )


def estimate_run(scenario: Scenario) -> RunEstimate:
    """Peak memory and rough wall time of a run of ``scenario`` (module docstring)."""
    synthetic = scenario.weather.source == "synthetic"
    transient = BUILD_BYTES_SYNTHETIC if synthetic else BUILD_BYTES
    once = SYNTHETIC_BYTES if synthetic else 0
    kept = build = readings = uploads = 0
    for fleet in scenario.fleets:
        site_steps = fleet.count * int(scenario.duration_s // fleet.meter.sample_s)
        channels = len(fleet.meter.channels) + (1 if fleet.load is not None else 0)
        per_step = POWER_BYTES + CHANNEL_BYTES * channels
        per_step += LOAD_BYTES if fleet.load is not None else 0
        building = transient + (LOAD_BUILD_BYTES if fleet.load is not None else 0)
        build = max(build, kept + site_steps * (per_step + building) + once)
        kept += site_steps * per_step
        readings += site_steps
        uploads += fleet.count * math.ceil(scenario.duration_s / fleet.meter.upload_s)
    kept += readings * LEDGER_BYTES
    sites = sum(f.count for f in scenario.fleets)
    running = kept + readings * RUN_BYTES + sites * GRID_BINS * GRID_BYTES_PER_BIN
    sampled = scenario.pipeline.pipeline_sample_rate
    wall_s = (
        START_S
        + (SYNTHETIC_S if synthetic else 0.0)
        + readings * BUILD_S_PER_SITE_STEP
        + uploads * (sampled * S_PER_UPLOAD_RUN + (1.0 - sampled) * S_PER_UPLOAD_MODELLED)
    )
    memory = BASE_BYTES + max(build, running)
    return RunEstimate(sites, readings, uploads, kept, build, running, memory, wall_s)


def available_memory_bytes() -> int | None:
    """Memory available to a new process now, bytes: ``MemAvailable`` of /proc/meminfo
    (Linux), else the physical memory (``os.sysconf``); None if neither is known."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(estimate: RunEstimate, available: int | None = None) -> None:
    """Raise a :class:`UsageError` naming the estimate and the machine's available memory
    when the run cannot fit in it (``available``: default :func:`available_memory_bytes`)."""
    available = available_memory_bytes() if available is None else available
    if available is None or estimate.memory_bytes <= USABLE_FRACTION * available:
        return
    raise UsageError(
        "SCENARIO",
        f"{estimate.sites:,} sites x {estimate.readings:,} readings",
        f"a run that fits in memory: it needs about {_gib(estimate.memory_bytes)}, this "
        f"machine has {_gib(available)} available; shorten scenario.duration, sample less "
        'often (meter.sample) or run fewer sites (service_time = "model" shortens the time, '
        "not the memory)",
    )


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:,.1f} GiB"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:,.1f} h"

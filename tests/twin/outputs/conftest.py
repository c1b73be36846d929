"""Run folders the output tests read: a small cell outage written by ``twin run`` (with
service levels, one of them missed), and a copy of it with a longer outage."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from twin.accounting.results import Results
from twin.cli import main
from twin.outputs.files import write_outputs

PROJECT_ROOT = Path(__file__).resolve().parents[3]
CELL_OUTAGE = PROJECT_ROOT / "scenarios" / "cell_outage.toml"
#: 24 sites for 14 h: the 2 h outage at 10 h and the drain after it.
SMALL = [
    "fleet.pv.count=20",
    "fleet.wind.count=4",
    'scenario.duration="14h"',
    "slo.readings_lost_total=== 0",
    "slo.latency_s.p99=<= 1800",
    "slo.drain_s_max=<= 3600",
]


def twin_run(out_dir: Path, *overrides: str) -> Path:
    """``twin run`` of the small cell outage into ``out_dir``."""
    sets = [arg for o in [*SMALL, *overrides] for arg in ("--set", o)]
    with contextlib.redirect_stdout(io.StringIO()) as summary:
        code = main(["run", str(CELL_OUTAGE), "--out", str(out_dir), "--no-progress", *sets])
    assert code == 0
    assert summary.getvalue().rstrip().endswith(f"report: {out_dir / 'report.html'}")
    return out_dir


@pytest.fixture(scope="session")
def outage_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small cell outage's output folder (2 h outage)."""
    return twin_run(tmp_path_factory.mktemp("outage") / "outage")


@pytest.fixture(scope="session")
def longer_outage_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same with a 3 h outage."""
    return twin_run(tmp_path_factory.mktemp("outage3h") / "outage3h", 'fault.0.duration="3h"')


@pytest.fixture(scope="session")
def field_faults_run(
    tmp_path_factory: pytest.TempPathFactory, field_faults_results: Results
) -> Path:
    """The output folder of the shipped ``field_faults`` run (analytics in every section)."""
    out_dir = tmp_path_factory.mktemp("field_faults") / "field_faults"
    write_outputs(field_faults_results, out_dir, plots=False)
    return out_dir

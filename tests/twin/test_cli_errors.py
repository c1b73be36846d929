"""Every misuse of the ``twin`` command, run as a user runs it (a subprocess): exactly one
line on stderr naming what was wrong, no traceback, exit code 2 (DESIGN.md §9); Ctrl-C
stops a run with one line and exit code 130, leaving the output folder as it was."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.waiting import wait_until

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
BASELINE = SCENARIOS / "baseline.toml"
CELL_OUTAGE = SCENARIOS / "cell_outage.toml"
DIGITS_400 = "1" + "0" * 400
ROOT = os.geteuid() == 0
TWIN = [sys.executable, "-m", "twin.cli"]
TINY = ["--set", "fleet.pv.count=2", "--set", "fleet.wind.count=0"]


def twin(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TWIN, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def one_line(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    """The run failed with exit 2 and one line on stderr holding every ``expected`` text."""
    lines = result.stderr.splitlines()
    assert "Traceback" not in result.stderr
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0]
    return lines[0]


def _unreadable(tmp_path: Path) -> Path:
    """A scenario path that cannot be read: mode 000, or for root (who reads it anyway) a
    file whose read fails."""
    if ROOT:
        return Path("/proc/self/mem")
    path = tmp_path / "secret.toml"
    path.write_text(BASELINE.read_text())
    path.chmod(0)
    return path


def _not_utf8(tmp_path: Path) -> Path:
    path = tmp_path / "latin1.toml"
    path.write_bytes(BASELINE.read_text().replace("Baseline", "Baseline caf\xe9").encode("latin-1"))
    return path


@pytest.mark.parametrize("command", ["run", "validate"])
@pytest.mark.parametrize(
    ("make_path", "expected"),
    [
        (lambda tmp: tmp, "(it is a folder)"),
        (_unreadable, "a readable UTF-8 scenario file ("),
        (_not_utf8, "byte 0xe9 at offset"),
        (lambda tmp: tmp / "missing.toml", "an existing scenario file"),
    ],
    ids=["folder", "unreadable", "not-utf8", "missing"],
)
def test_a_scenario_path_that_cannot_be_read(
    tmp_path: Path, command: str, make_path: object, expected: str
) -> None:
    path = make_path(tmp_path)  # type: ignore[operator]
    line = one_line(twin(command, path), "twin: scenario error: SCENARIO = ", expected)
    assert str(path) in line


def test_a_scenario_too_deeply_nested_or_with_an_endless_number(tmp_path: Path) -> None:
    nested = tmp_path / "nested.toml"
    nested.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    one_line(twin("validate", nested), "valid TOML (nested too deeply)")
    number = tmp_path / "number.toml"
    number.write_text(BASELINE.read_text() + "\nx = " + "9" * 5000 + "\n")
    one_line(twin("validate", number), "valid TOML (")


def _read_only(tmp_path: Path) -> Path:
    """An output folder that cannot be written: below a folder of mode 555, or for root
    (who writes there anyway) in sysfs, where no one can create a folder."""
    if ROOT:
        return Path("/sys/twin-out")
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o555)
    return parent / "out"


def _a_file(tmp_path: Path) -> Path:
    path = tmp_path / "results.json"
    path.write_text("{}")
    return path


def _below_a_file(tmp_path: Path) -> Path:
    return _a_file(tmp_path) / "out"


@pytest.mark.parametrize(
    ("make_out", "expected"),
    [
        (_a_file, "a folder (it is a file)"),
        (_below_a_file, "results.json is a file)"),
        (_read_only, "a folder it can write ("),
    ],
    ids=["file", "below-a-file", "read-only"],
)
def test_an_output_folder_that_cannot_take_the_run(
    tmp_path: Path, make_out: object, expected: str
) -> None:
    out = make_out(tmp_path)  # type: ignore[operator]
    one_line(twin("run", BASELINE, "--out", out, *TINY), "twin: error: --out = ", expected)


@pytest.mark.parametrize(
    "override",
    ["network.cellular.loss_probability=1e400", f"network.cellular.loss_probability={DIGITS_400}"],
)
def test_a_number_beyond_float_range_is_refused_by_run(override: str) -> None:
    one_line(twin("run", BASELINE, "--set", override), "loss_probability = ", "a finite number")


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("network.cellular.loss_probability=nan", "a finite number"),
        ("network.cellular.loss_probability=" + "9" * 5000, "a number in [0.0, 1.0]"),
        (f"fleet.pv.count={DIGITS_400}", "<an integer of 401 digits>"),
        (f"scenario.seed={DIGITS_400}", "an integer in [0, 9223372036854775807]"),
        (f'scenario.duration="{DIGITS_400}h"', "a finite duration"),
        ('fleet.pv.name="pv\u00e9"', "ASCII letters, digits"),
        (f'fleet.pv.name="{"p" * 300}"', "a name of at most 250 characters"),
    ],
)
def test_a_value_the_run_cannot_use_is_refused_by_validate(override: str, expected: str) -> None:
    one_line(twin("validate", BASELINE, "--set", override), expected)


def test_a_fault_lasting_an_overflowing_time_is_refused() -> None:
    result = twin("validate", CELL_OUTAGE, "--set", f'fault.0.duration="{DIGITS_400}h"')
    one_line(result, "fault.0.duration = ", "a finite duration")


def test_a_seed_out_of_range_and_an_unknown_option() -> None:
    one_line(twin("run", BASELINE, "--seed", DIGITS_400), "--seed = <an integer of 401 digits>")
    one_line(twin("run", BASELINE, "--colour", "red"), "unrecognized arguments: --colour red")


def test_pipeline_workers_beyond_one_or_beside_a_live_service() -> None:
    one_line(twin("run", BASELINE, "--pipeline-workers", "2"), "--pipeline-workers = 2: expected 0")
    live = twin("run", BASELINE, "--pipeline-workers", "1", "--live", "spawn")
    one_line(live, "--pipeline-workers = 1: expected no value with --live")


def test_a_run_too_large_for_the_machine_is_refused_at_once() -> None:
    huge = ["--set", "fleet.pv.count=1000000", "--set", 'scenario.duration="366d"']
    one_line(twin("run", BASELINE, *huge), "it needs about ", "GiB available")


def test_an_output_folder_of_another_run_or_of_other_files_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "results.json").write_text(json.dumps({"scenario": {"name": "cell_outage"}}))
    one_line(twin("run", BASELINE, "--out", other, *TINY), "it holds a run of 'cell_outage'")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    one_line(twin("run", BASELINE, "--out", mine, *TINY, "--force"), "it holds other files")
    assert (mine / "notes.txt").read_text() == "my notes"


def test_ctrl_c_stops_a_run_with_one_line_and_leaves_the_folder_as_it_was(
    tmp_path: Path,
) -> None:
    out = tmp_path / "baseline"
    out.mkdir()
    earlier = json.dumps({"scenario": {"name": "baseline"}, "kpis": "earlier"})
    (out / "results.json").write_text(earlier)
    process = subprocess.Popen(
        [*TWIN, "run", str(BASELINE), "--out", str(out), "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(
        lambda: any(p.name.startswith(".twin-staging-") for p in tmp_path.iterdir()),
        process,
        "the run never made its staging folder",
    )
    time.sleep(1.0)  # well inside the run
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGINT, stderr
    assert "Traceback" not in stderr
    assert stderr.splitlines() == ["twin: interrupted (SIGINT); nothing written"]
    assert [p.name for p in tmp_path.iterdir()] == ["baseline"]  # no staging folder left
    assert [p.name for p in out.iterdir()] == ["results.json"]
    assert (out / "results.json").read_text() == earlier

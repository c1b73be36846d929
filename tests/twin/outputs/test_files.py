"""One output folder holds one run, written whole or not at all: a rerun of the scenario
replaces its folder whole (no file of the earlier run left behind), another scenario's run
is replaced only with ``--force``, a run that fails leaves the folder as it was, and
``results.json`` is never seen half-written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import twin.runner
from twin.cli import main
from twin.errors import UsageError
from twin.outputs.files import run_folder, write_text_atomic

BASELINE = Path(__file__).resolve().parents[3] / "scenarios" / "baseline.toml"
TINY = [
    "--set",
    "fleet.pv.count=2",
    "--set",
    "fleet.wind.count=0",
    "--set",
    'scenario.duration="2h"',
    "--no-progress",
]


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_rerun_replaces_its_folder_whole_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "baseline"
    assert main(["run", str(BASELINE), "--out", str(out), *TINY]) == 0
    assert "overview.png" in _names(out)
    assert "replacing" not in capsys.readouterr().err
    assert main(["run", str(BASELINE), "--out", str(out), *TINY, "--no-plots"]) == 0
    assert capsys.readouterr().err == f"twin: replacing the earlier run of baseline in {out}\n"
    # the earlier run's plot is gone with it: the folder is the second run's alone
    assert _names(out) == [
        "latency.json",
        "report.html",
        "results.json",
        "store.sqlite",
        "timeseries.csv",
    ]
    assert _names(tmp_path) == ["baseline"]  # no staging folder left
    data = json.loads((out / "results.json").read_text())
    assert data["store_path"] == str(out / "store.sqlite")
    assert data["extra"] == {"timeseries": str(out / "timeseries.csv")}


def test_force_replaces_the_run_of_another_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "shared"
    out.mkdir()
    (out / "results.json").write_text(json.dumps({"scenario": {"name": "cell_outage"}}))
    (out / "store.sqlite").write_bytes(b"cell_outage's store")
    assert main(["run", str(BASELINE), "--out", str(out), *TINY]) == 2
    assert "it holds a run of 'cell_outage'; --force replaces it" in capsys.readouterr().err
    assert (out / "store.sqlite").read_bytes() == b"cell_outage's store"
    assert main(["run", str(BASELINE), "--out", str(out), *TINY, "--force"]) == 0
    assert json.loads((out / "results.json").read_text())["scenario"]["name"] == "baseline"


def test_a_run_that_fails_leaves_the_folder_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "baseline"
    out.mkdir()
    earlier = json.dumps({"scenario": {"name": "baseline"}})
    (out / "results.json").write_text(earlier)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(twin.runner, "run", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["run", str(BASELINE), "--out", str(out), *TINY])
    assert _names(tmp_path) == ["baseline"] and _names(out) == ["results.json"]
    assert (out / "results.json").read_text() == earlier


def test_results_are_replaced_atomically_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "results.json"
    write_text_atomic(path, '{"run": 1}')
    assert path.read_text() == '{"run": 1}'

    def crash(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="No space left"):
        write_text_atomic(path, '{"run": 2}')
    assert path.read_text() == '{"run": 1}' and _names(tmp_path) == ["results.json"]


def test_a_run_that_finds_its_folder_taken_meanwhile_keeps_its_files_and_says_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"

    def finished(name: str) -> None:  # another run, into the same folder, ends first
        out.mkdir(exist_ok=True)
        (out / "results.json").write_text(json.dumps({"scenario": {"name": name}}))

    with run_folder(out, "baseline") as staging:
        (staging / "results.json").write_text(json.dumps({"scenario": {"name": "baseline"}}))
        finished("baseline")  # the same scenario: replaced, and said so
    assert "replacing the earlier run of baseline" in capsys.readouterr().err
    assert _names(tmp_path) == ["out"]
    with pytest.raises(UsageError) as info, run_folder(out, "baseline") as staging:
        (staging / "results.json").write_text("{}")
        finished("cell_outage")  # another scenario: this run's files stay where they are
    assert f"this run's files are in {staging}" in str(info.value)
    assert (staging / "results.json").read_text() == "{}"
    assert json.loads((out / "results.json").read_text())["scenario"]["name"] == "cell_outage"

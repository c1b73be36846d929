"""The files of a run's output folder (DESIGN.md §6), written from its :class:`Results`:
``results.json``, ``timeseries.csv``, ``ground_truth.csv`` (with field faults) and
``overview.png`` (optional), then ``report.html`` and ``latency.json``
(:mod:`twin.outputs.report`). The pipeline's own ``store.sqlite`` is written by the run.

One folder holds one run, written whole or not at all (:func:`run_folder`): the run and its
files go to a staging folder beside the output folder, which replaces it only once
everything is written, so an interrupted or failed run leaves the folder as it was and two
runs into one folder never mix their files. A folder that holds another scenario's run is
replaced only with ``force``; a folder of other files never (the twin would delete them).
``results.json`` marks a run's folder and names its scenario.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from twin.accounting.results import Results
from twin.errors import UsageError

RESULTS_NAME = "results.json"
#: Prefix of the hidden staging folder a run writes beside its output folder.
STAGING_PREFIX = ".twin-staging-"


@dataclass(frozen=True)
class OutputFiles:
    """Paths written: ``results.json``, the time series, the ground truth (None without
    field faults), the plots and the report."""

    results: Path
    timeseries: Path
    ground_truth: Path | None = None
    plots: list[Path] = field(default_factory=list)
    report: Path | None = None

    def listing(self) -> dict[str, Any]:
        """The ``extra`` record of ``results.json``: the other files, as strings."""
        extra: dict[str, Any] = {"timeseries": str(self.timeseries)}
        if self.ground_truth is not None:
            extra["ground_truth"] = str(self.ground_truth)
        if self.plots:
            extra["plots"] = [str(p) for p in self.plots]
        return extra


def write_outputs(
    results: Results, out_dir: Path, plots: bool = True, *, staging: Path | None = None
) -> OutputFiles:
    """Write the run's files into ``out_dir`` (created if needed), or into ``staging`` (the
    folder of :func:`run_folder` that becomes ``out_dir``); the paths listed and returned
    are those in ``out_dir``. ``results.json`` is written atomically after the other
    files, then the report from the folder."""
    folder = out_dir if staging is None else staging
    folder.mkdir(parents=True, exist_ok=True)
    table = results.series.timeseries
    write_csv(folder / "timeseries.csv", table.columns, table.rows)
    if results.ground_truth:
        write_records(folder / "ground_truth.csv", results.ground_truth)
    pngs = []
    if plots:
        from twin.outputs.plots import overview_png  # matplotlib only when plotting

        pngs.append(out_dir / overview_png(folder / "overview.png", results).name)
    files = OutputFiles(
        out_dir / RESULTS_NAME,
        out_dir / "timeseries.csv",
        out_dir / "ground_truth.csv" if results.ground_truth else None,
        pngs,
    )
    data = results.to_json() | {"extra": files.listing()}
    write_text_atomic(folder / RESULTS_NAME, json.dumps(data, indent=2, sort_keys=True) + "\n")
    from twin.outputs.report import write_run_report  # reads the folder written above

    return replace(files, report=out_dir / write_run_report(results, folder).name)


def write_csv(path: Path, columns: list[str], rows: np.ndarray) -> Path:
    np.savetxt(path, rows, delimiter=",", header=",".join(columns), comments="", fmt="%.10g")
    return path


def write_records(path: Path, records: list[dict[str, Any]]) -> Path:
    """Flat records (e.g. the fault ground truth) as CSV; nested values as JSON text."""
    columns = list(dict.fromkeys(key for record in records for key in record))
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        for record in records:
            writer.writerow(
                {
                    k: json.dumps(v, sort_keys=True) if isinstance(v, dict) else v
                    for k, v in record.items()
                }
            )
    return path


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file in the same folder and a
    rename: a reader sees the old file or the new one, never part of one."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def run_of(folder: Path) -> str | None:
    """The scenario name of the run whose results ``folder`` holds (its ``results.json``),
    else None."""
    try:
        data = json.loads((folder / RESULTS_NAME).read_text("utf-8"))
        name = data["scenario"]["name"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return name if isinstance(name, str) else None


def check_out_dir(out_dir: Path, scenario_name: str, force: bool = False) -> bool:
    """Whether ``out_dir`` can take a run of ``scenario_name`` (module docstring); True when
    it replaces an earlier run there. Raises a :class:`UsageError` (key ``--out``) saying
    why not: it is a file or lies below one, it holds another scenario's run (without
    ``force``) or files that are no run's."""
    for folder in (out_dir, *out_dir.parents):
        if folder.exists() and not folder.is_dir():
            where = "it is a file" if folder == out_dir else f"{folder} is a file"
            raise UsageError("--out", str(out_dir), f"a folder ({where})")
        if folder.exists():
            break
    if not out_dir.is_dir() or not any(out_dir.iterdir()):
        return False
    held = run_of(out_dir)
    if held is None:
        raise UsageError(
            "--out",
            str(out_dir),
            "a new or empty folder, or one of an earlier run (it holds other files, which a "
            "run would replace)",
        )
    if held != scenario_name and not force:
        raise UsageError(
            "--out",
            str(out_dir),
            f"a folder of scenario {scenario_name!r} or an empty one (it holds a run of "
            f"{held!r}; --force replaces it)",
        )
    return True


@contextlib.contextmanager
def run_folder(out_dir: Path, scenario_name: str, force: bool = False) -> Iterator[Path]:
    """A staging folder for a run into ``out_dir`` (checked with :func:`check_out_dir`),
    created beside it; when the block ends normally the staging folder replaces
    ``out_dir``, when it raises (an error, Ctrl-C) it is removed and ``out_dir`` stays as
    it was. A :class:`UsageError` when ``out_dir`` cannot take the run or cannot be
    written, before the block; or after it, when another run took the folder meanwhile
    (the staging folder is then kept, and named)."""
    check_out_dir(out_dir, scenario_name, force)
    target = out_dir.resolve()
    try:
        if target.is_dir() and not os.access(target, os.W_OK | os.X_OK):
            raise PermissionError(13, "permission denied")
        target.parent.mkdir(parents=True, exist_ok=True)
        prefix = f"{STAGING_PREFIX}{target.name}-"
        staging = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
        mask = os.umask(0)
        os.umask(mask)
        staging.chmod(0o777 & ~mask)  # as a folder made with mkdir would be
    except OSError as exc:
        raise UsageError("--out", str(out_dir), f"a folder it can write ({_reason(exc)})") from None
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:  # again: another run may have finished into it meanwhile
        replaces = check_out_dir(out_dir, scenario_name, force)
    except UsageError as exc:
        kept = f"{exc.expected}; this run's files are in {staging}"
        raise UsageError(exc.key, exc.value, kept) from None
    if replaces:
        print(f"twin: replacing the earlier run of {scenario_name} in {out_dir}", file=sys.stderr)
    try:
        _swap_in(staging, target)
    except OSError as exc:
        raise UsageError(
            "--out",
            str(out_dir),
            f"a folder the run can replace ({_reason(exc)}; this run's files are in {staging})",
        ) from None


def _reason(exc: OSError) -> str:
    return (exc.strerror or type(exc).__name__).lower()


def _swap_in(staging: Path, target: Path) -> None:
    """Put ``staging`` in the place of ``target`` (a folder or nothing) by renames."""
    if not target.exists():
        os.rename(staging, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{target.name}-old-", dir=target.parent))
    os.rename(target, old / target.name)
    os.rename(staging, target)
    shutil.rmtree(old, ignore_errors=True)

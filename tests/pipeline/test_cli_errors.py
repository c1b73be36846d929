"""Every misuse of ``python -m pipeline ingest`` (DESIGN §9): one line on stderr naming the
path and what is wrong, no traceback, exit code 2 (1 means a partial rejection), nothing
ingested; Ctrl-C stops it cleanly (exit 130, one line) with the file in progress rolled
back. Each case runs the real command in a subprocess."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipeline import Store
from pipeline.ingest import IngestInterrupted, ingest_files
from pipeline.store.readings import ReadingRepository
from pipeline.store.schema import BUSY_TIMEOUT_S
from tests.conftest import GREENBUTTON_DIR, PROJECT_ROOT
from tests.espi_feeds import resource
from tests.pipeline.test_ingest import T0, reading, small_feed
from tests.waiting import wait_until

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def run_ingest(*args: str | Path, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "ingest", *map(str, args)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def good_file(folder: Path) -> Path:
    path = folder / "good.xml"
    block = resource("IntervalBlock", "".join(reading(T0 + 3600 * i, i) for i in range(3)))
    path.write_bytes(small_feed(block))
    return path


def stored_readings(db: Path) -> int:
    with Store(db) as store:
        return store.readings.count()


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """`path` (a file or a folder) read-only for this process: mode 0444/0555, or, for
    root (whom modes do not stop), the immutable attribute; skips the test when neither
    is possible here."""
    if not IS_ROOT:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip("running as root, and this file system has no immutable attribute")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@contextlib.contextmanager
def locked(db: Path) -> Iterator[None]:
    """Another writer holds `db`'s write lock meanwhile."""
    with Store(db):
        pass  # a valid database
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


#: name -> (the arguments after ``ingest`` for a folder, and what the message must say).
Case = Callable[[Path], tuple[list[str | Path], str]]


def db_directory(tmp: Path) -> tuple[list[str | Path], str]:
    (tmp / "db").mkdir()
    return [good_file(tmp), "--db", tmp / "db"], "is a directory"


def db_text_file(tmp: Path) -> tuple[list[str | Path], str]:
    (tmp / "notes.txt").write_text("not a database\n" * 50)
    return [good_file(tmp), "--db", tmp / "notes.txt"], "not a SQLite database"


def db_empty_path(tmp: Path) -> tuple[list[str | Path], str]:
    return [good_file(tmp), "--db", ""], "--db '': an empty path"


def db_in_memory(tmp: Path) -> tuple[list[str | Path], str]:
    return [good_file(tmp), "--db", ":memory:"], "in-memory database keeps nothing"


def db_folder_missing(tmp: Path) -> tuple[list[str | Path], str]:
    return [good_file(tmp), "--db", tmp / "nowhere" / "db.sqlite"], "does not exist"


def input_missing(tmp: Path) -> tuple[list[str | Path], str]:
    return [tmp / "missing.xml", "--db", tmp / "db.sqlite"], "missing.xml: no such file"


def input_directory(tmp: Path) -> tuple[list[str | Path], str]:
    (tmp / "exports").mkdir()
    return [good_file(tmp), tmp / "exports", "--db", tmp / "db.sqlite"], "is a directory"


def input_below_a_file(tmp: Path) -> tuple[list[str | Path], str]:
    return [good_file(tmp) / "x.xml", "--db", tmp / "db.sqlite"], "cannot be read"


CASES: dict[str, Case] = {
    "db is a directory": db_directory,
    "db is a text file": db_text_file,
    "db is an empty path": db_empty_path,
    "db is :memory:": db_in_memory,
    "db in a missing folder": db_folder_missing,
    "input missing": input_missing,
    "input is a directory": input_directory,
    "input below a file": input_below_a_file,
}


def check_misuse(proc: subprocess.CompletedProcess[str], says: str) -> None:
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("pipeline: ") and says in lines[0], lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stdout == ""


@pytest.mark.parametrize("name", list(CASES))
def test_misuse_is_one_line_and_exit_2(name: str, tmp_path: Path) -> None:
    args, says = CASES[name](tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    check_misuse(run_ingest(*args), says)
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # nothing ingested, no database made, nothing touched
    assert not (PROJECT_ROOT / ":memory:").exists()


def test_a_read_only_database(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    good = good_file(tmp_path)
    assert run_ingest(good, "--db", db).returncode == 0
    more = tmp_path / "more.xml"
    more.write_bytes(small_feed(resource("IntervalBlock", reading(T0 + 86_400, 1))))
    with read_only(db):
        check_misuse(run_ingest(more, "--db", db), "read-only")
    assert stored_readings(db) == 3


def test_a_database_in_a_read_only_folder(tmp_path: Path) -> None:
    good = good_file(tmp_path)
    folder = tmp_path / "archive"
    folder.mkdir()
    with read_only(folder):
        check_misuse(run_ingest(good, "--db", folder / "db.sqlite"), "is read-only")
    assert list(folder.iterdir()) == []


@pytest.mark.skipif(IS_ROOT, reason="root reads a file whatever its mode")
def test_an_unreadable_input(tmp_path: Path) -> None:
    good = good_file(tmp_path)
    good.chmod(0)
    check_misuse(run_ingest(good, "--db", tmp_path / "db.sqlite"), "permission denied")


def test_a_database_locked_beyond_the_busy_timeout(tmp_path: Path) -> None:
    """Another writer holds the lock for the whole run: the command waits the busy timeout
    (5 s), then gives up with one line."""
    db = tmp_path / "db.sqlite"
    with locked(db):
        proc = run_ingest(good_file(tmp_path), "--db", db, timeout_s=120 + BUSY_TIMEOUT_S)
    check_misuse(proc, "locked by another writer")
    assert stored_readings(db) == 0


# --- Ctrl-C ---------------------------------------------------------------------------


def open_for_writing(fifo: Path, proc: subprocess.Popen[str]) -> int:
    """Open `fifo` for writing once `proc` opened it for reading (bounded: never hangs if
    the process ends first)."""

    def try_open() -> int | None:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            return None

    return int(wait_until(try_open, proc, "the ingest never read its second file"))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a named pipe")
def test_ctrl_c_stops_cleanly(tmp_path: Path) -> None:
    """Interrupted while reading its second file (a pipe that never ends): exit 130, one
    line on stderr, the first file stored and reported, nothing of the second."""
    good = good_file(tmp_path)
    fifo = tmp_path / "stream.xml"
    os.mkfifo(fifo)
    db = tmp_path / "db.sqlite"
    command = [sys.executable, "-m", "pipeline", "ingest", good, fifo, "--db", db, "--json"]
    proc = subprocess.Popen(
        [str(part) for part in command],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell without job control starts background jobs ignoring SIGINT; not here
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        fd = open_for_writing(fifo, proc)
        os.write(fd, small_feed()[:200])
        proc.send_signal(signal.SIGINT)
        # the end of the pipe: a read the signal found already under way (CPython acts on
        # a signal between bytecodes) returns, and the interrupt is raised then
        os.close(fd)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("pipeline: interrupted") and str(fifo) in lines[0]
    [file] = json.loads(out)["files"]
    assert (file["path"], file["status"]) == (str(good), "ok")
    assert stored_readings(db) == 3


def test_an_interrupted_file_is_rolled_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C between the two series of a file (PG&E net metering: delivered and received
    energy): none of that file is committed, the file before it is."""
    good = good_file(tmp_path)
    net = GREENBUTTON_DIR / "pge_electric_hourly_netmetering_redacted.xml"
    upsert = ReadingRepository.upsert_batch
    calls = threading.local()

    def interrupted_second_series(self: ReadingRepository, *args: object, **kw: object) -> object:
        calls.n = getattr(calls, "n", 0) + 1
        if calls.n == 3:  # good.xml has one series, the net meter two
            raise KeyboardInterrupt
        return upsert(self, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(ReadingRepository, "upsert_batch", interrupted_second_series)
    db = tmp_path / "db.sqlite"
    with pytest.raises(IngestInterrupted) as info:
        ingest_files([good, net], db)
    assert [r.path for r in info.value.reports] == [str(good)]
    assert info.value.current == str(net)
    monkeypatch.undo()
    assert stored_readings(db) == 3

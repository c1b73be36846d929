"""Runs a study's tasks: the ones its folder's ``runs.jsonl`` does not hold yet go to the
executor, each recorded as it ends (:class:`~twin.study.records.RecordFile`), the others are
read back; one progress bar over all the study's runs, with the time left estimated from
the runs done so far."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from twin.outputs.progress import ProgressBar, bar
from twin.study.executors import Executor
from twin.study.records import RecordFile, RunRecord, RunTask, execute_run


class RunProgress(ProgressBar):
    """``[#####.....] 12/40 runs, 3 reused, 1m20s, ~3m10s left`` over a study's runs."""

    def __init__(self, stream: TextIO = sys.stderr) -> None:
        super().__init__(0.0, stream)
        self.total = 0
        self.done = 0
        self.reused = 0

    def describe(self, t_s: float, elapsed_s: float) -> str:
        ran = self.done - self.reused
        left = self.total - self.done
        eta = f", ~{_duration(elapsed_s / ran * left)} left" if ran and left else ""
        reused = f", {self.reused} reused" if self.reused else ""
        return (
            f"{bar(self.done / self.total if self.total else 1.0)} {self.done}/{self.total} runs"
            f"{reused}, {_duration(elapsed_s)}{eta}"
        )

    def update(self) -> None:
        self(float(self.done))

    def close(self) -> None:
        """End the line on a terminal; in a log, write the final state (once)."""
        if self.shown and not self.interactive:
            self.stream.write(self.describe(0.0, time.perf_counter() - self.t0) + "\n")
            self.stream.flush()
        super().close()
        self.shown = False


def _duration(seconds: float) -> str:
    minutes, s = divmod(round(seconds), 60)
    return f"{minutes}m{s:02d}s" if minutes else f"{s}s"


class RunBook:
    """The runs of the study in ``folder`` on ``executor``; ``executed`` counts the runs
    this book ran, ``reused`` those it found recorded."""

    def __init__(self, folder: Path, executor: Executor, progress: bool = True) -> None:
        self.file = RecordFile(folder)
        self.records = self.file.load()
        self.executor = executor
        self.executed = 0
        self.reused = 0
        self._seen: set[str] = set()
        self.bar = RunProgress() if progress else None
        self.t0 = time.perf_counter()

    def run(self, tasks: Sequence[RunTask]) -> list[RunRecord]:
        """The record of every task, in the order given; a run is made only for a task
        whose key has no record (each key once); keys asked for before count once."""
        new = {t.key: t for t in tasks if t.key not in self._seen}
        self._seen.update(new)
        todo = [t for key, t in new.items() if key not in self.records]
        found = len(new) - len(todo)
        self.reused += found
        if self.bar is not None:
            self.bar.total += len(new)
            self.bar.done += found
            self.bar.reused += found
        for _, record in self.executor.map_unordered(execute_run, todo):
            self.file.append(record)
            self.records[record.key] = record
            self.executed += 1
            if self.bar is not None:
                self.bar.done += 1
                self.bar.update()
        return [self.records[t.key] for t in tasks]

    @property
    def wall_time_s(self) -> float:
        return time.perf_counter() - self.t0

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

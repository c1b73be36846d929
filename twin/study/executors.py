"""Where a study's runs execute: serially in this process, on a local process pool, or on a
Dask distributed cluster (DESIGN.md §8). Every executor has the same interface,
``map_unordered(fn, items)``, yielding ``(index, fn(items[index]))`` as each call ends, so a
study records each run as soon as it is done; the study orders what it gets back, so the
tables are the same on every executor.

A worker that dies mid-run (killed, out of memory) does not fail the study: runs are
deterministic for their seed, so the call is simply made again. On the pool, a dead worker
breaks :class:`concurrent.futures.ProcessPoolExecutor`; the pool is rebuilt and every call
that had not returned is resubmitted, each at most ``max_retries`` times. On Dask, the
scheduler reschedules the tasks of a lost worker itself (up to its
``distributed.scheduler.allowed-failures``, then :class:`distributed.KilledWorker`).
"""

from __future__ import annotations

import gc
import logging
import os
import socket
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol, TypeVar

from twin.errors import ScenarioError

T = TypeVar("T")
R = TypeVar("R")

#: Calls resubmitted after a dead worker, at most, per call (Dask's default
#: ``allowed-failures`` is 3 too).
MAX_RETRIES = 3


class WorkerLostError(RuntimeError):
    """A call whose worker died more than ``max_retries`` times."""


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Executor(Protocol):
    """Runs calls of one function over items; ``workers`` is how many at a time."""

    workers: int

    def map_unordered(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
        """``(index, fn(items[index]))`` for every item, in the order the calls end."""
        ...

    def close(self) -> None: ...


class SerialExecutor:
    """Every call in this process, one after the other."""

    workers = 1

    def map_unordered(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
        for index, item in enumerate(items):
            yield index, fn(item)

    def close(self) -> None:
        pass


class PoolExecutor:
    """A local pool of ``workers`` processes (:class:`ProcessPoolExecutor`), rebuilt when a
    worker dies (module docstring). Where workers fork, the parent's objects are frozen
    (:func:`gc.freeze`) while they start, as the :mod:`gc` documentation advises for
    ``fork()`` without ``exec()``: the workers' collections then leave the inherited heap
    alone instead of scanning it and copying its pages."""

    def __init__(self, workers: int, max_retries: int = MAX_RETRIES) -> None:
        self.workers = workers
        self.max_retries = max_retries
        self._pool: ProcessPoolExecutor | None = None

    def map_unordered(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
        pending = dict(enumerate(items))
        lost: Counter[int] = Counter()
        while pending:
            fresh = self._pool is None
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=self.workers)
            if fresh:  # the workers fork on the first submit: keep the collector off the
                gc.freeze()  # inherited heap, so it neither scans nor copies those pages
            try:
                futures = {self._pool.submit(fn, item): i for i, item in pending.items()}
            finally:
                if fresh:
                    gc.unfreeze()
            broken = False
            for future in as_completed(futures):
                index = futures[future]
                try:
                    result = future.result()
                except BrokenProcessPool:
                    broken = True
                    lost[index] += 1
                    if lost[index] > self.max_retries:
                        self.close()
                        raise WorkerLostError(
                            f"call {index} lost its worker {lost[index]} times"
                        ) from None
                    continue
                del pending[index]
                yield index, result
            if broken:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class DaskExecutor:
    """Calls as tasks on a Dask distributed cluster: the scheduler at ``address``
    (``tcp://HOST:PORT``; its workers need this package installed) or, with ``"local"``, a
    :class:`distributed.LocalCluster` of ``workers`` single-threaded worker processes
    started here and stopped by :meth:`close`."""

    def __init__(self, address: str, workers: int) -> None:
        from distributed import Client, LocalCluster

        self._cluster: Any = None
        if address == "local":
            self._cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            self._client = Client(self._cluster)
        else:
            try:
                _check_reachable(address)
                self._client = Client(address, timeout="10s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise ScenarioError(
                    "--scheduler",
                    address,
                    f'"local" or the address of a running Dask scheduler, tcp://HOST:PORT ({exc})',
                ) from None
        self.workers = max(1, sum(self._client.nthreads().values()))

    def map_unordered(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
        from distributed import as_completed as dask_completed

        futures = [self._client.submit(fn, item, pure=False) for item in items]
        index = {future.key: i for i, future in enumerate(futures)}
        for future in dask_completed(futures):
            yield index[future.key], future.result()

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def _check_reachable(address: str, timeout_s: float = 3.0) -> None:
    """Fail fast (OSError, ValueError) when a TCP scheduler address refuses connections,
    before Dask's own, longer, connection timeout."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "tcp", address
    if scheme not in ("tcp", "tls"):
        return
    host, _, port = rest.rpartition(":")
    with socket.create_connection((host.strip("[]") or "localhost", int(port)), timeout_s):
        pass


def make_executor(workers: int | None, scheduler: str | None) -> Executor:
    """The executor the command line asks for: Dask with ``scheduler``; else a pool of
    ``workers`` processes (default: every core), or this process alone for one worker."""
    if workers is not None and workers < 1:
        raise ScenarioError("--workers", workers, "an integer >= 1")
    count = workers if workers is not None else cores()
    if scheduler is not None:
        return DaskExecutor(scheduler, count)
    return SerialExecutor() if count == 1 else PoolExecutor(count)

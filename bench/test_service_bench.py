"""Uploads per second the MDC service sustains over loopback HTTP (``python -m pipeline
serve``, one uvicorn worker and two) against the in-process pipeline on the same sealed
uploads (`pipeline.Pipeline.handle`, commit per upload as the twin's in-process runs, and
commit per group as the service does), as ratios.

Each timed call stores `UPLOADS` fresh uploads (distinct meters and sequence numbers, all
inserted). The service is driven by `CONCURRENCY` keep-alive connections from a minimal
HTTP/1.1 client on asyncio streams in this process (a load generator must cost less than
what it loads: httpx's asynchronous pool spends milliseconds of CPU per request at 64
connections), with ``--ack commit``: an upload counts once its COMMIT is answered. On the
2-core machine of DESIGN §7 the client, the event loop and the writer thread share the
cores, so the figures are what one machine does end to end, reported, not gated (how much
of a core the client takes varies with the machine): the ratios of wall time per call
(`bench/conftest.py`), and uploads per second in ``extra_info`` of the JSON report.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from pipeline import Keyring, Pipeline, seal
from twin.sil.calibrate import EPOCH_S, sample_upload
from twin.sil.live_http import HttpBridge, ServiceProcess
from twin.sil.live_run import write_keyring

#: Meters, uploads per timed call, rounds, requests in flight.
METERS = 200
UPLOADS = 1000
ROUNDS = 5
CONCURRENCY = 64
KEYS = {f"m-{i:04d}": bytes([i % 251 + 1]) * 32 for i in range(METERS)}
_HEAD = b"POST /v1/uploads HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n"
_CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


def batches() -> Iterator[list[bytes]]:
    """Successive calls' uploads: sequence numbers go on, so every upload is new."""
    meters = list(KEYS)
    for round_no in itertools.count():
        batch = []
        for j in range(UPLOADS):
            meter = meters[j % METERS]
            seq = round_no * (UPLOADS // METERS + 1) + j // METERS
            body = sample_upload(meter, 15, seq=seq, start_s=EPOCH_S + 900 * seq)
            batch.append(seal(meter, seq, body, KEYS[meter]))
        yield batch


@pytest.mark.parametrize(("name", "commit_every"), [("in_process", 1), ("in_process_grouped", 256)])
def test_in_process_pipeline(
    benchmark: Any,
    record_median: Callable[[str], None],
    tmp_path: Path,
    name: str,
    commit_every: int,
) -> None:
    pipeline = Pipeline(tmp_path / "mdc.sqlite", commit_every=commit_every, keyring=Keyring(KEYS))
    calls = batches()

    def store_batch() -> list[Any]:
        outcomes = [pipeline.handle(body) for body in next(calls)]
        pipeline.uploads.flush()
        return outcomes

    outcomes = benchmark.pedantic(store_batch, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    pipeline.close()
    assert all(o.accepted and o.inserted == 15 for o in outcomes)
    record_median(name)
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["uploads_per_s"] = UPLOADS / benchmark.stats.stats.median


async def _post_all(url: str, bodies: list[bytes]) -> list[int]:
    """POST every body to ``/v1/uploads`` over `CONCURRENCY` keep-alive connections (each
    takes the next body when its answer is in); the statuses."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    pending = iter(bodies)
    statuses: list[int] = []

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for body in pending:
                writer.write(_HEAD % (host.encode(), len(body)) + body)
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                length = _CONTENT_LENGTH.search(head)
                assert length is not None, head
                await reader.readexactly(int(length.group(1)))
                statuses.append(int(head.split(b" ", 2)[1]))
        finally:
            writer.close()
            await writer.wait_closed()

    await asyncio.gather(*(connection() for _ in range(CONCURRENCY)))
    return statuses


@pytest.mark.parametrize("workers", [1, 2])
def test_service_over_http(
    benchmark: Any, record_median: Callable[[str], None], tmp_path: Path, workers: int
) -> None:
    keyring = tmp_path / "keys.json"
    write_keyring(keyring, KEYS)
    args = ["--db", str(tmp_path / "mdc.sqlite"), "--keyring", str(keyring)]
    args += ["--workers", str(workers), "--ack", "commit", "--analyze-every", "off"]
    service = ServiceProcess("bench", args, tmp_path / "service.log")
    bridge = HttpBridge(1, 60.0)
    calls = batches()
    posted = [0]  # calls made: rounds and warm-up (one under --benchmark-disable)

    def post_batch() -> list[int]:
        posted[0] += 1
        return asyncio.run(_post_all(url, next(calls)))

    try:
        url = service.start(bridge)
        statuses = benchmark.pedantic(
            post_batch,
            rounds=ROUNDS,
            iterations=1,
            warmup_rounds=1,
        )
        rows = bridge.call("GET", f"{url}/api/meters")[1]
        assert service.stop() == 0
    finally:
        service.kill()
        bridge.close()
    assert set(statuses) == {200}
    assert rows is not None and rows["total"] == posted[0] * UPLOADS * 15
    record_median(f"service_{workers}")
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["uploads_per_s"] = UPLOADS / benchmark.stats.stats.median
    benchmark.extra_info["concurrency"] = CONCURRENCY

"""The pipeline on meter uploads beside a bare ``lxml.etree.fromstring`` of the same bytes
(DESIGN.md §7 budget: fetch+process at most 2x the bare parse), for the twin's typical
upload, a single-channel and a five-channel upload with local time from the meters' encoder
(meters.espi_upload.encode_meter_upload), and a sealed (HMAC) upload; stored uploads per second
with a commit per upload against a commit per group of `GROUP` uploads; and the rejection
of hostile bodies against a bare parse of a genuine upload of the same size.

Fetch+process is `pipeline.service.UploadService.fetch_process`, the fetch and process
stages of `UploadService.handle` (without a keyring for plain uploads). For the sealed
upload (``pipeline.fetch.auth`` envelope: header line, then the document) the reference is
``fromstring`` of the same document, the bytes inside the envelope: the ratio is the cost
of envelope check, HMAC-SHA256, parse and process against a bare parse of that XML.

Ratios are printed at the end of the run (medians of the same run); figures go into
``extra_info`` of the JSON report too."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lxml import etree

from bench.conftest import interleaved_ratio
from meters.espi import Channel, LocalTimeSpec, ReadingTypeSpec
from meters.espi_upload import encode_meter_upload
from pipeline import Keyring, Limits, Pipeline, RejectedUpload, seal
from pipeline.fetch.parse import parse_upload
from pipeline.process.upload import extract_batches
from twin.sil.calibrate import sample_upload

UPLOAD = sample_upload("pv-00042", 15)  # the twin's upload: a 15-minute window of 1-min readings
EPOCH_S = 1_781_913_600
#: A net meter's channels (meters.espi.ReadingTypeSpec's documented typical channels):
#: energy delivered and received (Wh), voltage (V), current (A), power factor (cosTheta).
NET_METER = [
    ReadingTypeSpec(),
    ReadingTypeSpec(flow_direction=19),
    ReadingTypeSpec(uom=29, kind=54, accumulation_behaviour=12, power_of_ten_multiplier=-3),
    ReadingTypeSpec(uom=5, kind=4, accumulation_behaviour=12, power_of_ten_multiplier=-3),
    ReadingTypeSpec(uom=65, kind=38, accumulation_behaviour=12, power_of_ten_multiplier=-3),
]
#: Uploads per transaction in the batched-commit benchmark.
GROUP = 50
KEY = bytes(range(32))


def meter_upload(meter_id: str, seq: int, n_channels: int, n: int = 15) -> bytes:
    """An upload of `n_channels` channels of `n` 1-min readings from the meters' encoder
    (docs/upload-format.md, with LocalTimeParameters)."""
    starts = EPOCH_S + 60 * (seq * n + np.arange(n, dtype=np.int64))
    channels = [
        Channel(spec, (500 + 100 * np.sin(np.arange(n) / 30.0 + k)).astype(np.int64))
        for k, spec in enumerate(NET_METER[:n_channels])
    ]
    return encode_meter_upload(
        meter_id, seq, starts, channels, EPOCH_S, LocalTimeSpec.for_zone("America/New_York")
    )


SINGLE = meter_upload("pv-00042", 0, 1)
MULTI = meter_upload("net-00042", 0, 5)
SEALED = seal("pv-00042", 0, UPLOAD, KEY)

#: DESIGN.md §7: fetch+process at most 2x a bare ``fromstring`` of the same bytes, gated on
#: the interleaved minimum of plain uploads.
MAX_FETCH_PROCESS_RATIO = 2.0
#: The sealed upload adds HMAC-SHA256 over every byte and the envelope and replay checks
#: (about 10 µs, a third of a parse): at most 2.5x the bare parse of the document inside.
MAX_SEALED_FETCH_PROCESS_RATIO = 2.5

_MEDIANS_S: dict[str, float] = {}
#: (label, numerator, denominator): printed as numerator / denominator.
_RATIOS = [
    ("twin upload: fetch+process / fromstring", "fetch_process", "bare_fromstring"),
    ("1 channel: fetch+process / fromstring", "fetch_process_single", "bare_fromstring_single"),
    ("5 channels: fetch+process / fromstring", "fetch_process_multi", "bare_fromstring_multi"),
    (
        "sealed twin upload: auth+fetch+process / fromstring",
        "fetch_process_sealed",
        "bare_fromstring",
    ),
    (f"uploads/s, commit per {GROUP} / commit per upload", "handle_per_upload", "handle_batched"),
]


@pytest.fixture(scope="module", autouse=True)
def _print_ratios(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        _write_ratios(reporter)


def _write_ratios(reporter: Any) -> None:
    reporter.write_line("")
    reporter.write_line(f"pipeline ratios (medians of this run, {Path(__file__).name}):")
    for label, a, b in _RATIOS:
        if a in _MEDIANS_S and b in _MEDIANS_S:
            reporter.write_line(
                f"  {label:<52} {_MEDIANS_S[a] / _MEDIANS_S[b]:6.2f}x"
                f"   ({_MEDIANS_S[a] * 1e6:9.1f} us / {_MEDIANS_S[b] * 1e6:9.1f} us)"
            )
    for name in ("handle_per_upload", "handle_batched"):
        if name in _MEDIANS_S:
            reporter.write_line(
                f"  {name:<52} {GROUP / _MEDIANS_S[name]:8.0f} uploads/s "
                f"({GROUP} uploads of 15 readings per timed call)"
            )


def run(benchmark: Any, name: str, fn: Callable[[], Any]) -> Any:
    result = benchmark(fn)
    if benchmark.stats is not None:  # None under --benchmark-disable
        _MEDIANS_S[name] = benchmark.stats.stats.median
    return result


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("bare_fromstring", UPLOAD),
        ("bare_fromstring_single", SINGLE),
        ("bare_fromstring_multi", MULTI),
    ],
)
def test_bare_fromstring(benchmark: Any, record_median: Any, name: str, body: bytes) -> None:
    record_median(name)
    root = run(benchmark, name, lambda: etree.fromstring(body))
    assert root.tag.endswith("feed")
    benchmark.extra_info["size_bytes"] = len(body)


@pytest.mark.gate
@pytest.mark.parametrize(
    ("name", "body", "n_series"),
    [
        ("fetch_process", UPLOAD, 1),
        ("fetch_process_single", SINGLE, 1),
        ("fetch_process_multi", MULTI, 5),
    ],
)
def test_fetch_process(
    benchmark: Any, record_median: Any, tmp_path: Path, name: str, body: bytes, n_series: int
) -> None:
    record_median(name)
    pipeline = Pipeline(tmp_path / "plain.sqlite")
    batches = run(benchmark, name, lambda: pipeline.uploads.fetch_process(body))
    assert len(batches) == n_series and all(b.n_readings == 15 for b in batches)
    # the same batches as the process stage on its own tree (no shortcut changes them)
    reference = extract_batches(parse_upload(body))
    assert [b.value.tolist() for b in batches] == [b.value.tolist() for b in reference]
    benchmark.extra_info["size_bytes"] = len(body)
    ratio = interleaved_ratio(
        f"{name} / fromstring",
        lambda: pipeline.uploads.fetch_process(body),
        lambda: etree.fromstring(body),
    )
    benchmark.extra_info["ratio_vs_fromstring_interleaved"] = ratio
    pipeline.close()
    assert ratio <= MAX_FETCH_PROCESS_RATIO, f"fetch+process {ratio:.2f}x a bare fromstring"


@pytest.mark.gate
def test_fetch_process_sealed(benchmark: Any, tmp_path: Path) -> None:
    """Envelope check (header, HMAC-SHA256, replay window), parse, feed-id check, process:
    the fetch and process stages of a pipeline with a keyring, on the twin's upload,
    against ``fromstring`` of the document inside the envelope (`UPLOAD`, the very bytes
    after the header line)."""
    assert SEALED.partition(b"\n")[2] == UPLOAD
    pipeline = Pipeline(tmp_path / "auth.sqlite", keyring=Keyring({"pv-00042": KEY}))

    def fetch_process() -> Any:
        return pipeline.uploads.fetch_process(SEALED)

    batches = run(benchmark, "fetch_process_sealed", fetch_process)
    benchmark.extra_info["size_bytes"] = len(SEALED)
    ratio = interleaved_ratio(
        "fetch_process_sealed / fromstring", fetch_process, lambda: etree.fromstring(UPLOAD)
    )
    benchmark.extra_info["ratio_vs_fromstring_interleaved"] = ratio
    pipeline.close()
    assert batches[0].n_readings == 15
    assert ratio <= MAX_SEALED_FETCH_PROCESS_RATIO, f"sealed: {ratio:.2f}x a bare fromstring"


def test_pipeline_handle(benchmark: Any, record_median: Any, tmp_path: Path) -> None:
    record_median("pipeline_handle")
    pipeline = Pipeline(tmp_path / "bench.sqlite")
    seq = itertools.count()
    # distinct meters so that every call really inserts (no duplicate short-cut)
    bodies = [sample_upload(f"m-{i}", 15) for i in range(20_000)]
    outcome = run(
        benchmark, "pipeline_handle", lambda: pipeline.handle(bodies[next(seq) % len(bodies)])
    )
    pipeline.close()
    assert outcome.accepted
    benchmark.extra_info["size_bytes"] = len(UPLOAD)


@pytest.mark.parametrize(
    ("name", "commit_every"), [("handle_per_upload", 1), ("handle_batched", GROUP)]
)
def test_uploads_per_second(benchmark: Any, tmp_path: Path, name: str, commit_every: int) -> None:
    """`GROUP` fresh uploads (distinct meters, all inserted) per timed call, so that a
    batched group's one commit is inside every measurement."""
    rounds = 30
    bodies = [sample_upload(f"m-{i}", 15) for i in range(GROUP * (rounds + 2))]
    groups = iter([bodies[i : i + GROUP] for i in range(0, len(bodies), GROUP)])
    pipeline = Pipeline(tmp_path / f"{name}.sqlite", commit_every=commit_every)

    def handle_group() -> list[Any]:
        return [pipeline.handle(body) for body in next(groups)]

    outcomes = benchmark.pedantic(handle_group, rounds=rounds, iterations=1, warmup_rounds=1)
    assert pipeline.uploads.pending_uploads == 0
    pipeline.close()
    assert all(o.accepted and o.inserted == 15 for o in outcomes)
    assert outcomes[-1].committed
    if benchmark.stats is not None:  # None under --benchmark-disable
        _MEDIANS_S[name] = benchmark.stats.stats.median
        benchmark.extra_info["uploads_per_s"] = GROUP / benchmark.stats.stats.median


#: A meter upload's feed element, as hostile bodies open it.
_FEED_OPEN = UPLOAD[UPLOAD.index(b"<feed") : UPLOAD.index(b"<title>")]


def normal_upload(approx_bytes: int) -> bytes:
    """A genuine one-channel meter upload of about `approx_bytes` (the encoder's)."""
    per_reading = (len(meter_upload("m-1", 0, 1, 1001)) - len(meter_upload("m-1", 0, 1, 1))) / 1000
    return meter_upload("m-1", 0, 1, max(1, int(approx_bytes / per_reading)))


#: Hostile bodies the fetch stage must refuse fast (DESIGN §9), and the most their
#: rejection may cost against a bare ``fromstring`` of a genuine upload of the same size:
#: a DOCTYPE and a body over the size limit are refused before any parsing, a flood of
#: elements by counting start tags, a deep nesting by libxml2 at depth 256.
HOSTILE: list[tuple[str, Callable[[], bytes], float]] = [
    ("doctype", lambda: b"<!DOCTYPE feed>" + normal_upload(1_000_000), 0.2),
    ("oversized", lambda: b"<" * 4_000_001, 0.05),
    ("element flood", lambda: _FEED_OPEN + b"<a/>" * 990_000 + b"</feed>", 0.75),
    ("40,000-deep", lambda: _FEED_OPEN + b"<a>" * 40_000 + b"</a>" * 40_000 + b"</feed>", 0.5),
]


@pytest.mark.gate
@pytest.mark.parametrize(("name", "make", "max_ratio"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_upload_rejection(
    benchmark: Any, name: str, make: Callable[[], bytes], max_ratio: float
) -> None:
    """Rejection of a hostile body / a bare parse of a genuine upload of the same size."""
    body = make()
    reference = normal_upload(min(len(body), Limits().max_size_bytes))

    def reject() -> str:
        try:
            parse_upload(body)
        except RejectedUpload as exc:
            return exc.code
        raise AssertionError(f"{name} was accepted")

    code = run(benchmark, f"hostile {name}", reject)
    assert code in ("dtd_forbidden", "too_large", "too_many_elements", "too_deep")
    ratio = interleaved_ratio(
        f"hostile {name} / fromstring", reject, lambda: etree.fromstring(reference), 5
    )
    benchmark.extra_info["ratio_vs_fromstring_interleaved"] = ratio
    assert ratio <= max_ratio, f"{name}: {ratio:.2f}x a bare parse of its size"

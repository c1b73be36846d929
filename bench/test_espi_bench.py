"""The ESPI encoder beside a bare ``lxml.etree.fromstring`` of the bytes it produces
(DESIGN.md §7: ratios measured in the same run, absolute figures reported, not gated).

Cases: the twin's typical upload (one channel of 15 one-minute readings, ``encode_upload``)
and a net-metering meter with power-quality channels (energy delivered and received, voltage
with a ReadingQuality per reading, current, power factor) and LocalTimeParameters
(``encode_meter_upload``). The ratios are printed at the end of the module's run, with
what ``model`` mode pays instead of the encoder for an upload its sample leaves out: the
exact size (``meter_upload_size``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from lxml import etree

from meters.espi import Channel, LocalTimeSpec, ReadingTypeSpec
from meters.espi_upload import encode_meter_upload, encode_upload, meter_upload_size

T0 = 1_782_000_000  # 2026-06-21T00:00:00Z
N = 15
STARTS = T0 + 60 * np.arange(N, dtype=np.int64)
_RNG = np.random.default_rng(42)
ENERGY = _RNG.integers(0, 20_000, N, dtype=np.int64)
SINGLE = ReadingTypeSpec(interval_length_s=60, flow_direction=19, power_of_ten_multiplier=-3)
#: Instantaneous (AccumulationKind 12), no flow direction: voltage, current, power factor.
INSTANT = ReadingTypeSpec(accumulation_behaviour=12, flow_direction=0, interval_length_s=60)
CHANNELS = [
    Channel(ReadingTypeSpec(interval_length_s=60, power_of_ten_multiplier=-3), ENERGY),
    Channel(SINGLE, ENERGY[::-1].copy()),
    Channel(
        replace(INSTANT, uom=29, kind=54, power_of_ten_multiplier=-1),
        2300 + ENERGY % 100,
        np.where(ENERGY % 7 == 0, 9, -1),
    ),
    Channel(replace(INSTANT, uom=5, kind=4, power_of_ten_multiplier=-3), ENERGY),
    Channel(
        replace(INSTANT, uom=65, kind=38, power_of_ten_multiplier=-3),
        900 + ENERGY % 100,
    ),
]
LOCAL_TIME = LocalTimeSpec.for_zone("America/Denver")


def encode_single() -> bytes:
    return encode_upload("pv-00042", 7, SINGLE, STARTS, ENERGY, T0 + 900)


def encode_five_channels() -> bytes:
    return encode_meter_upload("pv-00042", 7, STARTS, CHANNELS, T0 + 900, LOCAL_TIME)


SINGLE_DOC = encode_single()
FIVE_DOC = encode_five_channels()

_MEDIANS_S: dict[str, float] = {}
_RATIOS = [
    ("encode_upload / fromstring (1 channel, 15 readings)", "encode_single", "parse_single"),
    ("encode_meter_upload / fromstring (5 channels + LTP)", "encode_five", "parse_five"),
    ("meter_upload_size / encode_upload (1 channel)", "size_single", "encode_single"),
    ("meter_upload_size / encode_meter_upload (5 channels + LTP)", "size_five", "encode_five"),
]


@pytest.fixture(scope="module", autouse=True)
def _print_ratios(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        for label, a, b in _RATIOS:
            if a in _MEDIANS_S and b in _MEDIANS_S:
                reporter.write_line(
                    f"\n{label:<60} {_MEDIANS_S[a] / _MEDIANS_S[b]:6.3f}x   "
                    f"({_MEDIANS_S[a] * 1e6:7.2f} us / {_MEDIANS_S[b] * 1e6:7.2f} us)"
                )


def _run(benchmark: Any, name: str, function: Callable[[], Any]) -> Any:
    result = benchmark(function)
    if benchmark.stats is not None:  # None with --benchmark-disable
        _MEDIANS_S[name] = benchmark.stats.stats.median
    return result


def test_encode_single_channel(benchmark: Any) -> None:
    assert _run(benchmark, "encode_single", encode_single) == SINGLE_DOC
    benchmark.extra_info["size_bytes"] = len(SINGLE_DOC)


def test_parse_single_channel(benchmark: Any) -> None:
    root = _run(benchmark, "parse_single", lambda: etree.fromstring(SINGLE_DOC))
    assert root.tag.endswith("feed")


def test_encode_five_channels(benchmark: Any) -> None:
    assert _run(benchmark, "encode_five", encode_five_channels) == FIVE_DOC
    benchmark.extra_info["size_bytes"] = len(FIVE_DOC)


def test_parse_five_channels(benchmark: Any) -> None:
    root = _run(benchmark, "parse_five", lambda: etree.fromstring(FIVE_DOC))
    assert root.tag.endswith("feed")


def test_size_single_channel(benchmark: Any) -> None:
    channels = [Channel(SINGLE, ENERGY)]
    size = _run(
        benchmark,
        "size_single",
        lambda: meter_upload_size("pv-00042", 7, STARTS, channels, T0 + 900, None, 0),
    )
    assert size == len(SINGLE_DOC)


def test_size_five_channels(benchmark: Any) -> None:
    size = _run(
        benchmark,
        "size_five",
        lambda: meter_upload_size("pv-00042", 7, STARTS, CHANNELS, T0 + 900, LOCAL_TIME),
    )
    assert size == len(FIVE_DOC)

"""The weather feed through the pipeline (``docs/upload-format.md`` §6): a station's
observations and forecast issues, sealed with the station's key, stored once however
often they arrive, read back as columns; bad documents refused with a reason, and a meter
upload never taken for one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from meters.weather_station import ForecastIssue, StationSpec, encode_forecast, encode_observations
from pipeline import Keyring, Pipeline, seal
from pipeline.fetch.parse import parse_upload
from pipeline.fetch.rejection import RejectedUpload
from pipeline.process.weather import read_weather
from tests.espi_feeds import Channel, meter_upload

SPEC = StationSpec("met-north", 36.1, -79.9, 270.0)
KEY = bytes(range(32))
EPOCH = 1_782_000_000


def observations(seq: int, start: int, n: int, ghi: float = 400.0) -> bytes:
    values = {
        "ghi": np.full(n, ghi),
        "temp_air": np.linspace(10.0, 11.0, n),
        "wind_speed": np.full(n, 4.0),
    }
    return encode_observations(SPEC, seq, start, 60, values, start + 60 * n)


def test_observations_and_forecasts_are_stored_once_and_read_back(tmp_path: Path) -> None:
    with Pipeline(tmp_path / "mdc.sqlite", keyring=Keyring({"met-north": KEY})) as pipe:
        first = pipe.handle(seal("met-north", 1, observations(1, EPOCH, 15), KEY))
        assert first.accepted and (first.meter_id, first.sequence_no) == ("met-north", 1)
        assert (first.n_readings, first.inserted, first.duplicates) == (15, 15, 0)
        again = pipe.handle(seal("met-north", 1, observations(1, EPOCH, 15), KEY))
        assert again.accepted and (again.inserted, again.duplicates) == (0, 15)
        overlap = pipe.handle(seal("met-north", 2, observations(2, EPOCH + 600, 15), KEY))
        assert (overlap.inserted, overlap.duplicates) == (10, 5)
        obs = pipe.store.weather.observations("met-north", EPOCH, EPOCH + 3600)
        assert obs.n == 25 and obs.start_s[-1] == EPOCH + 24 * 60
        assert np.all(obs.ghi == 400.0) and obs.duration_s[0] == 60
        issue = ForecastIssue(
            0.0, 3600.0 * np.arange(3), np.array([1.0, 2.0, np.nan]), np.zeros(3), np.zeros(3)
        )
        body = encode_forecast(SPEC, 3, issue, EPOCH)
        assert pipe.handle(seal("met-north", 3, body, KEY)).inserted == 2
        (stored,) = pipe.store.weather.issues("met-north", EPOCH, EPOCH)
        assert stored.issued_s == EPOCH and stored.ghi.tolist() == [1.0, 2.0]
        assert set(pipe.store.weather.stations()) == {"met-north"}
        # the station's key is its own: another's does not open it
        wrong = pipe.handle(seal("met-north", 4, observations(4, EPOCH, 5), bytes(32)))
        assert not wrong.accepted and wrong.reason_code == "auth_bad_signature"


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        ((b'count="15"', b'count="14"'), "14"),
        ((b'<wx:ghi unit="W/m2">400.0', b'<wx:ghi unit="W/m2">4000.0'), "outside"),
        ((b'<wx:ghi unit="W/m2">400.0', b'<wx:ghi unit="W/m2">abc'), "not decimals"),
        ((b'unit="W/m2"', b'unit="kW/m2"'), "kW/m2"),
        ((b'id="met-north" latitude', b'id="met-south" latitude'), "not the feed's"),
        ((b'interval="60"', b'interval="0"'), "interval"),
        ((b'latitude="36.100000"', b'latitude="north"'), "latitude"),
    ],
    ids=["count", "range", "text", "unit", "station", "interval", "position"],
)
def test_a_bad_weather_document_is_refused_with_its_reason(
    edit: tuple[bytes, bytes], says: str
) -> None:
    body = observations(1, EPOCH, 15).replace(*edit, 1)
    with pytest.raises(RejectedUpload, match=says) as info:
        read_weather(parse_upload(body), ("met-north", 1))
    assert info.value.code == "bad_weather"


def test_a_meter_upload_is_not_a_weather_document() -> None:
    doc = meter_upload(
        "pv-1", 3, [EPOCH], [Channel({"flowDirection": 19, "uom": 72, "intervalLength": 60}, [5])]
    )
    assert read_weather(parse_upload(doc), ("pv-1", 3)) is None

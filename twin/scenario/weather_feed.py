"""Scenario schema of ``[weather.feed]``: each region's met station and forecast product
(:mod:`meters.weather_station`), sent through the network to the MDC like a meter's
uploads (:mod:`twin.world.weather_feed`).

Keys (all optional): ``enabled`` (true), ``sample`` ("1min", the observation interval),
``upload`` ("15min"), ``outage_mtbf`` ("30d"; "0s": the station is never down),
``outage_mttr`` ("6h") and ``forecast`` (true: the forecast product every 6 h).
"""

from __future__ import annotations

from dataclasses import dataclass

from twin.errors import ScenarioError
from twin.scenario.schema import Table


@dataclass(frozen=True)
class WeatherFeedSpec:
    """The regional weather feed of a run (module docstring; durations in s)."""

    enabled: bool = True
    sample_s: float = 60.0
    upload_s: float = 900.0
    outage_mtbf_s: float = 30 * 86400.0
    outage_mttr_s: float = 6 * 3600.0
    forecast: bool = True


def parse_weather_feed(table: Table) -> WeatherFeedSpec:
    spec = WeatherFeedSpec(
        enabled=table.boolean("enabled", True),
        sample_s=table.duration_s("sample", "1min"),
        upload_s=table.duration_s("upload", "15min"),
        outage_mtbf_s=table.duration_s("outage_mtbf", "30d", positive=False),
        outage_mttr_s=table.duration_s("outage_mttr", "6h"),
        forecast=table.boolean("forecast", True),
    )
    if 3600.0 % spec.sample_s:
        raise ScenarioError(table.key("sample"), table.raw("sample"), "an interval dividing 1h")
    if spec.upload_s % spec.sample_s:
        raise ScenarioError(
            table.key("upload"), table.raw("upload"), "a whole number of sample intervals"
        )
    table.finish()
    return spec

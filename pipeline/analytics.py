"""Site analytics on interval-energy series: expected output, performance, fault detectors,
short-term forecasts and recommendations.

Everything works on columnar numpy arrays of one series on a regular grid (the output of
`pipeline.vee.vee`, see `Series.from_vee`); nothing loops over readings in Python.

The parts live in their own modules, all re-exported here, each documenting its models
and sources:

- `pipeline.sites`: the shared types (`SiteMeta`, `Series`, `Detection`, `DetectorParams`)
  and which detectors run for which kind of site (`SITE_DETECTORS`);
- `pipeline.clearsky`: the expected (clear-sky) output, the pipeline's own solar position,
  clear-sky and plane-of-array chain (it must stand alone, DESIGN §2);
- `pipeline.detectors`: the daily performance ratio and the detectors (`DETECTORS`:
  soiling, inverter trip, stuck meter, curtailment, anomaly);
- `pipeline.forecast`: short-term forecasts (`FORECAST_METHODS`) and their backtest.

**Recommendations.** `recommendations` turns detections into sentences a person can act on
("clean panels at site X: performance ratio down 12% over 10 days").

Here: the recommendations and the per-site run (`analyze_site`).

Only numpy, numba and the standard library are imported here (DESIGN §2).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pipeline.clearsky import (
    CLEAR_SKY_MODELS,
    SOLAR_CONSTANT_W_M2,
    SOLAR_POSITION_MODELS,
    ClearSky,
    SolarPosition,
    clear_sky,
    expected_energy_wh,
    expected_pv_power_w,
    extra_radiation_w_m2,
    poa_isotropic_w_m2,
    relative_airmass_kasten_young,
    solar_position,
)
from pipeline.detectors import (
    DETECTORS,
    DailyPerformance,
    _hours,
    _utc,
    daily_performance,
    detect_anomalies,
    detect_curtailment,
    detect_inverter_trip,
    detect_soiling,
    detect_stuck_meter,
)
from pipeline.detectors import Detector as Detector
from pipeline.forecast import FORECAST_METHODS, ForecastScore, backtest_forecast, forecast
from pipeline.sites import (
    _SECONDS_PER_DAY,
    ANOMALY,
    CURTAILMENT,
    INVERTER_TRIP,
    PVWATTS_DERATE,
    SITE_DETECTORS,
    SOILING,
    STUCK_METER,
    Detection,
    DetectorParams,
    Series,
    SiteMeta,
)

__all__ = [
    "ANOMALY",
    "CLEAR_SKY_MODELS",
    "CURTAILMENT",
    "DETECTORS",
    "FORECAST_METHODS",
    "INVERTER_TRIP",
    "PVWATTS_DERATE",
    "RECOMMENDERS",
    "SITE_DETECTORS",
    "SOILING",
    "SOLAR_CONSTANT_W_M2",
    "SOLAR_POSITION_MODELS",
    "STUCK_METER",
    "ClearSky",
    "DailyPerformance",
    "Detection",
    "DetectorParams",
    "ForecastScore",
    "Series",
    "SiteMeta",
    "SiteReport",
    "SolarPosition",
    "analyze_site",
    "backtest_forecast",
    "clear_sky",
    "daily_performance",
    "detect_anomalies",
    "detect_curtailment",
    "detect_inverter_trip",
    "detect_soiling",
    "detect_stuck_meter",
    "expected_energy_wh",
    "expected_pv_power_w",
    "extra_radiation_w_m2",
    "forecast",
    "poa_isotropic_w_m2",
    "recommendations",
    "relative_airmass_kasten_young",
    "solar_position",
]


# ======================================================================================
# Recommendations and the per-site run
# ======================================================================================


def _recommend_soiling(d: Detection) -> str:
    days = max(1, round((d.end_s - d.start_s) / _SECONDS_PER_DAY))
    return (
        f"clean panels at site {d.series_id}: performance ratio down {d.magnitude:.0%} "
        f"over {days} days"
    )


def _recommend_trip(d: Detection) -> str:
    return (
        f"inspect and reset the inverter at site {d.series_id}: no output since "
        f"{_utc(d.start_s)} in good sun (about {d.magnitude / 1000.0:.0f} kWh lost so far)"
    )


def _recommend_stuck(d: Detection) -> str:
    return (
        f"check meter {d.series_id}: the same reading ({d.magnitude:g} Wh) for "
        f"{_hours(d.end_s - d.start_s)} since {_utc(d.start_s)}; data since then are "
        "not real (estimate them and repair or replace the meter)"
    )


def _recommend_curtailment(d: Detection) -> str:
    return (
        f"review curtailment at {d.series_id}: output held at {d.magnitude:.0%} of rated "
        f"from {_utc(d.start_s)} to {_utc(d.end_s)}; if the grid operator did not order "
        "it, check the turbine controller's power limit"
    )


def _recommend_anomaly(d: Detection) -> str:
    return f"look at {d.series_id} around {_utc(d.start_s)}: {d.message}"


#: Recommendation templates: detection kind -> f(detection) -> sentence.
RECOMMENDERS: dict[str, Callable[[Detection], str]] = {
    SOILING: _recommend_soiling,
    INVERTER_TRIP: _recommend_trip,
    STUCK_METER: _recommend_stuck,
    CURTAILMENT: _recommend_curtailment,
    ANOMALY: _recommend_anomaly,
}


def recommendations(detections: Sequence[Detection], min_confidence: float = 0.5) -> list[str]:
    """Sentences a person can act on, one per detection at or above `min_confidence`,
    most confident first."""
    ranked = sorted(
        (d for d in detections if d.confidence >= min_confidence),
        key=lambda d: (-d.confidence, d.start_s),
    )
    return [RECOMMENDERS[d.kind](d) for d in ranked]


@dataclass(frozen=True)
class SiteReport:
    """`analyze_site` output: detections and the recommendations drawn from them."""

    site_id: str
    detections: tuple[Detection, ...]
    recommendations: tuple[str, ...]


def analyze_site(
    site: SiteMeta,
    series: Series,
    *,
    detectors: Sequence[str] | None = None,
    params: DetectorParams | None = None,
) -> SiteReport:
    """Run the site kind's detectors (`SITE_DETECTORS`, or the given names) on a series;
    the clear-sky expectation is computed once and shared (PV)."""
    p = DetectorParams() if params is None else params
    names = SITE_DETECTORS[site.kind] if detectors is None else tuple(detectors)
    unknown = [n for n in names if n not in DETECTORS]
    if unknown:
        raise ValueError(f"unknown detectors {unknown}; known: {sorted(DETECTORS)}")
    expected = (
        expected_energy_wh(site, series.start_s, series.interval_length_s)
        if site.kind == "pv"
        else None
    )
    found: list[Detection] = []
    for name in names:
        found.extend(DETECTORS[name](site, series, expected, p))
    found.sort(key=lambda d: (d.start_s, d.kind))
    return SiteReport(site.site_id, tuple(found), tuple(recommendations(found)))

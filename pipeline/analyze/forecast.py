"""The short-term forecasts the batch analysis issues (`ForecastRecord`), their step and
horizon. `pipeline.analyze.fleet_forecast` makes them for the fleet's generation meters.
Each record carries its reference forecast of the same intervals: the twin scores both
against what happened (skill ``1 - RMSE / RMSE_reference``, A. H. Murphy, Mon. Wea. Rev.
116, 1988).

Only the standard library is imported here (DESIGN §2).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FORECAST_HORIZON_S", "FORECAST_STEP_S", "ForecastRecord"]


#: Step of the short-term forecast of `Pipeline.analyze`, s: hourly energy. This
#: project's choice: the resolution a dispatcher or a site operator plans in.
FORECAST_STEP_S = 3600
#: How far the forecast reaches, s: the next 6 hours ("intra-day" in solar forecasting,
#: e.g. Coimbra, Kleissl & Marquez 2013). This project's choice.
FORECAST_HORIZON_S = 6 * 3600


@dataclass(frozen=True)
class ForecastRecord:
    """One short-term forecast of one generation series, issued by `Pipeline.analyze`
    with its reference forecast on the same intervals, so that its skill can be scored
    (flat, JSON-friendly: ``dataclasses.asdict`` gives a dict for ``json.dumps``).

    Attributes:
        series_id: the meter id.
        flow_direction: the series' ESPI flowDirection (19 for a generation meter).
        method: how it was made (see `pipeline.analyze.fleet_forecast`).
        issued_s: epoch s: the start of the first forecast interval.
        interval_length_s: forecast step, s (`FORECAST_STEP_S`).
        horizon_steps: number of forecast intervals.
        forecast_wh: energy forecast of each interval ``[issued_s + k * step, + step)``,
            Wh (k = 0 .. horizon_steps - 1), never negative.
        reference_method: the baseline the forecast is scored against (smart persistence
            for PV, persistence otherwise).
        reference_wh: the baseline's forecast of the same intervals, Wh.
    """

    series_id: str
    flow_direction: int
    method: str
    issued_s: int
    interval_length_s: int
    horizon_steps: int
    forecast_wh: tuple[float, ...]
    reference_method: str = "persistence"
    reference_wh: tuple[float, ...] = ()

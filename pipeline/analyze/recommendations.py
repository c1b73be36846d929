"""Recommendations: each detection turned into what a person should do, where, what the
fault has cost so far and how urgent it is (`Recommendation`, made by `recommend` from a
template per kind, `RECOMMENDERS`).

The energy of a fault so far is read from the fleet grid (`pipeline.analyze.fleet`): over
the detection's bins up to now, the energy the reference expected and the meter did not
read (a fault of the source: energy *lost*), or the energy the meter misread either way
(a fault of the register: energy *not metered*, to be estimated for billing). Its cost is
that energy at `DEFAULT_PRICE_PER_KWH` (or the caller's price).

Only the standard library, numpy and the pipeline's own modules are imported here (DESIGN
§2).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pipeline.analyze.detectors import hours_text, utc_text
from pipeline.analyze.faults import (
    ANOMALY,
    CLOCK_OFFSET,
    CURTAILMENT,
    DEGRADATION,
    ICING,
    INVERTER_TRIP,
    PARTIAL_SHADING,
    SOILING,
    SPIKE,
    STUCK_METER,
    ZERO_REGISTER,
)
from pipeline.analyze.fleet import FLEET_STEP_S, FleetGrid
from pipeline.store.alerts import Detection

__all__ = [
    "DEFAULT_PRICE_PER_KWH",
    "RECOMMENDERS",
    "URGENCIES",
    "Recommendation",
    "energy_so_far_kwh",
    "recommend",
]

#: Value of a kWh, USD: the order of the average US commercial retail price (U.S. EIA,
#: *Electric Power Monthly*, Table 5.6.A: about 12-13 cents/kWh in 2023-2024). This
#: project's default; the operator sets its own tariff.
DEFAULT_PRICE_PER_KWH = 0.12
#: Urgencies, most urgent first: act today; within days; at the next planned visit.
URGENCIES: tuple[str, ...] = ("high", "medium", "low")

#: Kinds whose energy is lost at the source (the rest are faults of the meter's register,
#: whose energy was produced but not metered right).
_SOURCE_KINDS = frozenset(
    {INVERTER_TRIP, SOILING, DEGRADATION, PARTIAL_SHADING, CURTAILMENT, ICING}
)


@dataclass(frozen=True)
class Recommendation:
    """What to do about one detection.

    Attributes:
        kind: the detection's kind; site_id: where (the site, its meter id).
        latitude_deg, longitude_deg: the site's place (NaN when not registered).
        start_s, end_s: the detection's evidence, epoch s.
        action: what to do, for a person.
        energy_kwh: energy lost (source faults) or not metered (register faults) so far.
        lost_at_source: True when `energy_kwh` is lost production.
        cost: `energy_kwh` at the price per kWh.
        urgency: one of `URGENCIES`.
        text: the whole recommendation in one sentence.
    """

    kind: str
    site_id: str
    latitude_deg: float
    longitude_deg: float
    start_s: int
    end_s: int
    action: str
    energy_kwh: float
    lost_at_source: bool
    cost: float
    urgency: str
    text: str

    @property
    def urgency_rank(self) -> int:
        return URGENCIES.index(self.urgency)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for k in ("latitude_deg", "longitude_deg"):
            if not np.isfinite(data[k]):
                data[k] = None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Recommendation:
        """The recommendation of `to_json` (a null place comes back as NaN)."""
        place = {
            k: math.nan if data[k] is None else float(data[k])
            for k in ("latitude_deg", "longitude_deg")
        }
        return cls(**(data | place))


def energy_so_far_kwh(grid: FleetGrid, d: Detection, now_s: int) -> tuple[float, bool]:
    """(energy, lost at source) of a detection up to `now_s` (module docstring); 0 for a
    site that is not on the grid."""
    row = grid.row.get(d.series_id)
    lost = d.kind in _SOURCE_KINDS
    if row is None or grid.t0_s is None:
        return 0.0, lost
    b0 = max(0, grid.bin_of(d.start_s))
    b1 = min(grid.n_bins, grid.bin_of(min(d.end_s, now_s) - 1) + 1)
    if b1 <= b0:
        return 0.0, lost
    view = grid.view(b0, b1)
    e, x = view.gen[row], view.expected_wh[row]
    ok = np.isfinite(x) & (np.isfinite(e) | (d.kind == ZERO_REGISTER))
    diff = x[ok] - np.nan_to_num(e[ok])
    wh = np.sum(np.maximum(diff, 0.0)) if lost else np.sum(np.abs(diff))
    return float(wh) / 1000.0, lost


def _trip(d: Detection) -> tuple[str, str]:
    return "high", "inspect and reset the inverter (check AC breaker, isolation alarm)"


def _zero(d: Detection) -> tuple[str, str]:
    return "high", "check the meter's CT and voltage connections; estimate the missing data"


def _stuck(d: Detection) -> tuple[str, str]:
    return "high", "repair or replace the meter; its readings since the start are not real"


def _spike(d: Detection) -> tuple[str, str]:
    return "low", "check the meter's register and firmware; the reading was estimated by VEE"


def _clock(d: Detection) -> tuple[str, str]:
    return "medium", "resynchronise the meter's clock (check its time source)"


def _soiling(d: Detection) -> tuple[str, str]:
    return ("medium" if d.magnitude >= 0.1 else "low"), "clean the panels"


def _degradation(d: Detection) -> tuple[str, str]:
    return "low", "inspect the modules (IV curve, thermography) for degradation"


def _shading(d: Detection) -> tuple[str, str]:
    return "low", "find and remove the new obstruction (a tree, a structure) or re-site modules"


def _curtailment(d: Detection) -> tuple[str, str]:
    return (
        "medium",
        "confirm the curtailment with the grid operator; if none was ordered, check the "
        "turbine controller's power limit",
    )


def _icing(d: Detection) -> tuple[str, str]:
    return "high", "check the blades for ice (ice-throw risk near the turbine); de-ice or stop"


def _anomaly(d: Detection) -> tuple[str, str]:
    return "medium", "look at the readings around the anomaly"


#: Templates: detection kind -> f(detection) -> (urgency, action).
RECOMMENDERS: dict[str, Callable[[Detection], tuple[str, str]]] = {
    INVERTER_TRIP: _trip,
    ZERO_REGISTER: _zero,
    STUCK_METER: _stuck,
    SPIKE: _spike,
    CLOCK_OFFSET: _clock,
    SOILING: _soiling,
    DEGRADATION: _degradation,
    PARTIAL_SHADING: _shading,
    CURTAILMENT: _curtailment,
    ICING: _icing,
    ANOMALY: _anomaly,
}


def recommend(
    d: Detection, grid: FleetGrid, price_per_kwh: float, now_s: int | None
) -> Recommendation:
    """The recommendation of one detection as of `now_s` (default: its evidence's end)."""
    urgency, action = RECOMMENDERS.get(d.kind, _anomaly)(d)
    now = d.end_s if now_s is None else int(now_s)
    kwh, lost = energy_so_far_kwh(grid, d, now)
    row = grid.row.get(d.series_id)
    lat = grid.sites[row].latitude_deg if row is not None else float("nan")
    lon = grid.sites[row].longitude_deg if row is not None else float("nan")
    cost = kwh * price_per_kwh
    what = "lost" if lost else "not metered"
    span = hours_text(max(0, min(d.end_s, now) - d.start_s))
    text = (
        f"[{urgency}] {d.series_id}: {action}. {d.kind.replace('_', ' ')} since "
        f"{utc_text(d.start_s)} ({span}); {kwh:.1f} kWh {what} so far "
        f"(~{cost:.2f} at {price_per_kwh:g}/kWh)"
    )
    _ = FLEET_STEP_S
    return Recommendation(
        d.kind, d.series_id, lat, lon, int(d.start_s), int(d.end_s), action, kwh, lost, cost,
        urgency, text,
    )  # fmt: skip

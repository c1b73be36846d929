"""The fleet's daily digest: one day of the fleet in a few lines (energy per kind of site,
sites reporting, open alerts and what to do about them, what they cost), the MDC's
"social-media update" that `pipeline.sinks.digest` sends to the alert webhook.

Only numpy, the standard library and the pipeline's own modules are imported here (DESIGN
§2).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.analyze.detectors import utc_text
from pipeline.analyze.fleet import FleetGrid
from pipeline.analyze.recommendations import Recommendation, recommend
from pipeline.store.alerts import Detection

__all__ = ["FleetDigest", "fleet_digest"]

#: Recommendations listed in a digest's text (all are in `FleetDigest.recommendations`).
_TOP = 5


@dataclass(frozen=True)
class FleetDigest:
    """One day of the fleet.

    Attributes:
        day_start_s, day_end_s: the day, epoch s.
        sites_reporting: sites with readings that day, by kind (``pv``, ``wind``).
        energy_kwh: metered energy that day by kind of site (generation meters and net
            meters' export), kWh.
        open_alerts: open alerts at the day's end, by detection kind.
        recommendations: one per open alert, most urgent first.
        text: the digest as a short message.
    """

    day_start_s: int
    day_end_s: int
    sites_reporting: dict[str, int]
    energy_kwh: dict[str, float]
    open_alerts: dict[str, int]
    recommendations: list[Recommendation] = field(default_factory=list)
    text: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "day_start_s": self.day_start_s,
            "day_end_s": self.day_end_s,
            "sites_reporting": dict(self.sites_reporting),
            "energy_kwh": dict(self.energy_kwh),
            "open_alerts": dict(self.open_alerts),
            "recommendations": [r.to_json() for r in self.recommendations],
            "text": self.text,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FleetDigest:
        """The digest of `to_json`."""
        recommendations = [Recommendation.from_json(r) for r in data["recommendations"]]
        return cls(**(data | {"recommendations": recommendations}))


def fleet_digest(
    grid: FleetGrid,
    open_detections: Sequence[Detection],
    day_start_s: int,
    day_end_s: int,
    price_per_kwh: float,
) -> FleetDigest:
    """The digest of [day_start_s, day_end_s) (see `FleetDigest`)."""
    reporting: Counter[str] = Counter()
    energy: dict[str, float] = {}
    if grid.t0_s is not None and grid.sites:
        view = grid.view(grid.bin_of(day_start_s), grid.bin_of(day_end_s))
        has = np.isfinite(view.gen).any(axis=1)
        for kind in ("pv", "wind"):
            rows = np.array([s.kind == kind for s in view.sites], dtype=bool)
            reporting[kind] = int(np.count_nonzero(has & rows))
            energy[kind] = float(np.nansum(view.gen[rows])) / 1000.0
    recs = sorted(
        (recommend(d, grid, price_per_kwh, day_end_s) for d in open_detections),
        key=lambda r: (r.urgency_rank, -r.cost),
    )
    alerts = Counter(d.kind for d in open_detections)
    cost = sum(r.cost for r in recs)
    lines = [
        f"Fleet digest {utc_text(day_start_s)} to {utc_text(day_end_s)}: "
        + ", ".join(f"{k} {v:,.0f} kWh from {reporting[k]} sites" for k, v in energy.items()),
        f"{len(recs)} open alert(s)"
        + (": " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(alerts.items())))
        * bool(alerts)
        + (f"; {cost:.2f} lost or unmetered so far" if recs else ""),
        *(r.text for r in recs[:_TOP]),
    ]
    return FleetDigest(
        day_start_s, day_end_s, dict(reporting), energy, dict(alerts), recs, "\n".join(lines)
    )

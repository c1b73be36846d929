"""One series through the batch analysis, the steps `pipeline.analyze.batch.BatchAnalysis`
runs on each series' stored window (and the tests run on synthetic ones):

1. `channel_context`: what the analysis knows of the series besides its readings: its
   channel role, the registered site whose nameplate bounds it, the ceiling of its flat
   tops and the detector thresholds of its role (`pipeline.analyze.channels` says which
   and why);
2. `validate_series`: VEE with the limits of its unit and context;
3. `evidence`: the validated series in Wh with VEE's estimates left out;
4. `detect_faults`: for a series that is not on the fleet grid, the detectors of its role
   and site on that evidence.

Pure functions of their arguments: reading and writing the store is the orchestrator's.

Only numpy and the standard library are imported here (DESIGN §2).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from pipeline.analyze.channels import (
    LOAD_DRIVEN_ROLES,
    LOAD_STUCK_MIN_DURATION_S,
    METADATA_FREE_DETECTORS,
    NAMEPLATE_ROLES,
    OTHER,
    ROLE_DETECTORS,
    LimitContext,
    observed_flat_top_w,
    vee_limits,
)
from pipeline.analyze.detectors import DETECTORS
from pipeline.analyze.faults import DetectorParams
from pipeline.analyze.series import Series
from pipeline.analyze.vee import VeeResult, vee
from pipeline.espi.codes import QUALITY_ESTIMATED_LINEAR, QUALITY_ESTIMATED_REFERENCE_DAY, UOM_WH
from pipeline.espi.reading_type import ReadingType
from pipeline.store.alerts import Detection
from pipeline.store.readings import SeriesRows
from pipeline.store.sites import SiteMeta

__all__ = [
    "ChannelContext",
    "bounding_site",
    "channel_context",
    "detect_faults",
    "evidence",
    "params_for_role",
    "validate_series",
]

#: Capacity of the stand-in site of a series without a ceiling, W: no run is a flat top.
_NO_CEILING_W = 1e18

_ESTIMATED_QUALITIES = np.array(
    [QUALITY_ESTIMATED_LINEAR, QUALITY_ESTIMATED_REFERENCE_DAY], dtype=np.uint16
)


def bounding_site(site: SiteMeta | None, role: str) -> SiteMeta | None:
    """`site` when it is registered and its nameplate bounds a channel of `role`
    (`pipeline.analyze.channels.NAMEPLATE_ROLES`), else None."""
    if site is not None and role in NAMEPLATE_ROLES.get(site.kind, frozenset()):
        return site
    return None


def params_for_role(params: DetectorParams, role: str) -> DetectorParams:
    """The detector thresholds of a channel of `role`: on a load-driven channel a stuck run
    must last at least `pipeline.analyze.channels.LOAD_STUCK_MIN_DURATION_S`."""
    if role in LOAD_DRIVEN_ROLES:
        return replace(
            params,
            stuck_min_duration_s=max(params.stuck_min_duration_s, LOAD_STUCK_MIN_DURATION_S),
        )
    return params


@dataclass(frozen=True)
class ChannelContext:
    """What the analysis knows of a series besides its readings.

    Attributes:
        meter_id, reading_type: the series.
        role: its channel role (`pipeline.analyze.channels.channel_roles`), ``other`` for
            a series that is not interval energy.
        site: the registered site of the meter, None without one.
        nameplate_w: the site's nameplate when it bounds this channel (`bounding_site`), W.
        flat_top_w: the ceiling of the flat-top exemption: the nameplate, else for energy
            the observed flat top of the window (`observed_flat_top_w`), W; None for none.
        params: the detector thresholds of the role (`params_for_role`).
    """

    meter_id: str
    reading_type: ReadingType
    role: str
    site: SiteMeta | None
    nameplate_w: float | None
    flat_top_w: float | None
    params: DetectorParams

    @property
    def is_energy(self) -> bool:
        """Interval energy (uom Wh): the series the detectors read."""
        return self.reading_type.uom == UOM_WH


def channel_context(
    meter_id: str,
    reading_type: ReadingType,
    role: str,
    site: SiteMeta | None,
    params: DetectorParams,
    raw_value: np.ndarray,
) -> ChannelContext:
    """The `ChannelContext` of a series whose window holds the raw register values
    `raw_value` (read for the observed flat top of energy series without a nameplate)."""
    rt = reading_type
    energy = rt.uom == UOM_WH
    role = role if energy else OTHER
    bounding = bounding_site(site, role)
    nameplate_w = None if bounding is None else bounding.nameplate_w
    flat_top_w = nameplate_w
    if energy and nameplate_w is None:
        scale = 10.0 ** int(rt.power_of_ten_multiplier)
        flat_top_w = observed_flat_top_w(raw_value * scale, int(rt.interval_length_s))
    return ChannelContext(
        meter_id, rt, role, site, nameplate_w, flat_top_w, params_for_role(params, role)
    )


def validate_series(ctx: ChannelContext, rows: SeriesRows) -> VeeResult:
    """VEE of a series' stored rows (`pipeline.analyze.vee.vee`), with the limits of its unit
    and context (`pipeline.analyze.channels.vee_limits`)."""
    limits = vee_limits(
        LimitContext(
            ctx.reading_type,
            ctx.nameplate_w,
            ctx.flat_top_w,
            ctx.params.stuck_exempt_fraction,
            ctx.params.stuck_min_duration_s,
        )
    )
    step = int(ctx.reading_type.interval_length_s)
    return vee(rows.start_s, rows.raw_value, step, limits, duration_s=rows.duration_s)


def evidence(series: Series, result: VeeResult) -> Series:
    """`series` with every VEE estimate set to NaN (unknown), for the detectors: they
    judge what the meter read. Estimates fill gaps for billing and forecasting, but a
    linear fill across a long gap (`pipeline.analyze.vee` interpolates a gap it has no
    reference day for) is a flat or near-zero line through daylight, which the stuck-meter
    and inverter-trip detectors would take for a fault."""
    estimated = np.isin(result.quality, _ESTIMATED_QUALITIES)
    if not estimated.any():
        return series
    return replace(series, energy_wh=np.where(estimated, np.nan, series.energy_wh))


def detect_faults(
    series: Series,
    site: SiteMeta | None,
    role: str,
    params: DetectorParams | None = None,
    *,
    flat_top_w: float | None = None,
) -> list[Detection]:
    """The detectors of a channel's role and site on an interval-energy series (Wh).

    With a registered `site` whose nameplate bounds `role` (`bounding_site`): the detectors
    of (site kind, role) (`pipeline.analyze.channels.ROLE_DETECTORS`), with the site; else
    the metadata-free detectors, with a stand-in site whose ceiling is `flat_top_w` (none
    when None). The thresholds are `params` (default `DetectorParams()`) for the role
    (`params_for_role`).

    Returns:
        The detections, by start then kind.
    """
    p = params_for_role(DetectorParams() if params is None else params, role)
    bounding = bounding_site(site, role)
    if bounding is not None:
        det_site = bounding
        names = ROLE_DETECTORS.get((bounding.kind, role), METADATA_FREE_DETECTORS)
    else:
        ceiling_w = _NO_CEILING_W if flat_top_w is None else flat_top_w
        det_site = SiteMeta(series.series_id, "load", ceiling_w)
        names = METADATA_FREE_DETECTORS
    found: list[Detection] = []
    for name in names:
        found += DETECTORS[name](det_site, series, None, p)
    found.sort(key=lambda d: (d.start_s, d.kind))
    return found

"""What a channel of a meter is to the analysis, and the VEE limits of its unit.

Which detectors run on which series (`pipeline.analyze.series_analysis`):

- only interval-energy series (uom 72 Wh, not a bulk or cumulative register) are given to
  the detectors, converted to Wh with the ReadingType's powerOfTenMultiplier; VEE runs on
  every interval series (limits per unit from `VEE_LIMITS_BY_UOM`, `vee_limits`);
- each energy channel gets a *role* from the meter's energy flow directions
  (`channel_roles`): a meter with flowDirection 19 only is a generation meter (role
  ``generation``), with 1 only a consumption meter (``consumption``), with both a net meter
  (19 ``export``, 1 ``import``);
- the generation, export and import channels of a registered PV or wind site
  (`pipeline.store.sites.SiteMeta`) go to the fleet grid (`pipeline.analyze.fleet`), whose
  detectors compare the site with its neighbours. A net meter's export is generation minus
  the site's own consumption, so the PV performance detectors read generation meters only;
  the register detectors read both registers of a net meter. The site's nameplate bounds
  the roles of `NAMEPLATE_ROLES` (VEE high limit, flat-top exemption);
- a registered load site's consumption gets its per-series detectors (`ROLE_DETECTORS`);
  every other energy series (no metadata) gets the metadata-free detectors
  (`METADATA_FREE_DETECTORS`: the stuck register). Its
  flat-top exemption (clipping, rated power) then uses the highest reading of the window
  as the ceiling, when the series ramps up to it and back (`observed_flat_top_w`);
- on load-driven channels (``consumption``, ``import``) a stuck run must last
  `LOAD_STUCK_MIN_DURATION_S` (6 h), in VEE and in the detector: a facility's night load
  can sit on one register value for hours.

Only numpy and the standard library are imported here (DESIGN §2).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import NamedTuple

import numpy as np

from pipeline.analyze.faults import ANOMALY, STUCK_METER
from pipeline.analyze.vee import VeeLimits, max_interval_value
from pipeline.espi.codes import (
    FLOW_DELIVERED,
    FLOW_NET,
    FLOW_RECEIVED,
    UOM_AMPERE,
    UOM_COS_THETA,
    UOM_VOLT,
    UOM_WH,
)
from pipeline.espi.reading_type import ReadingType

__all__ = [
    "CONSUMPTION",
    "EXPORT",
    "GENERATION",
    "IMPORT",
    "LOAD_DRIVEN_ROLES",
    "LOAD_STUCK_MIN_DURATION_S",
    "METADATA_FREE_DETECTORS",
    "NAMEPLATE_ROLES",
    "OTHER",
    "ROLE_DETECTORS",
    "VEE_LIMITS_BY_UOM",
    "LimitContext",
    "channel_roles",
    "observed_flat_top_w",
    "vee_limits",
]

#: Lowest interval energy of a register by flowDirection (`_energy_limits`): the signed net
#: register (4) has none, every other energy register is a non-negative quantity.
_MIN_INTERVAL_ENERGY_BY_FLOW: dict[int, float] = {FLOW_NET: -math.inf}

#: Roles of an interval-energy channel (see `channel_roles`).
GENERATION = "generation"
CONSUMPTION = "consumption"
EXPORT = "export"
IMPORT = "import"
OTHER = "other"

#: Per-series detectors per (site kind, channel role) when the site is registered; any
#: other pair gets `METADATA_FREE_DETECTORS`. A registered PV or wind site's generation,
#: export and import channels are not here: the fleet's detectors compare them with their
#: neighbours (`pipeline.analyze.batch`).
ROLE_DETECTORS: dict[tuple[str, str], tuple[str, ...]] = {
    ("load", CONSUMPTION): (ANOMALY, STUCK_METER),
}
#: Detectors that need no site metadata: a register repeating one non-zero value for hours
#: is a fault whatever the source.
METADATA_FREE_DETECTORS: tuple[str, ...] = (STUCK_METER,)
#: Roles whose readings the site's nameplate bounds (VEE high limit, flat-top exemption).
NAMEPLATE_ROLES: dict[str, frozenset[str]] = {
    "pv": frozenset({GENERATION, EXPORT}),
    "wind": frozenset({GENERATION, EXPORT}),
    "load": frozenset({CONSUMPTION}),
}


def channel_roles(flow_directions: Iterable[int]) -> dict[int, str]:
    """Role of each interval-energy channel of one meter, by flowDirection.

    A meter with reverse flow (19) only is a generation meter (a PV or wind site's meter,
    ``docs/upload-format.md``); forward (1) only, a consumption meter; both, a net meter
    whose registers are export (19: generation minus consumption when positive) and import
    (1). Other directions: ``other``.
    """
    flows = set(flow_directions)
    net = FLOW_DELIVERED in flows and FLOW_RECEIVED in flows
    roles = {}
    for f in flows:
        if f == FLOW_RECEIVED:
            roles[f] = EXPORT if net else GENERATION
        elif f == FLOW_DELIVERED:
            roles[f] = IMPORT if net else CONSUMPTION
        else:
            roles[f] = OTHER
    return roles


def observed_flat_top_w(
    energy_wh: np.ndarray, interval_length_s: int, ramp_fraction: float = 0.1
) -> float | None:
    """Ceiling of a series without metadata, W: its highest reading, as power, if the
    series ramps up to it and back (at least `ramp_fraction` of its non-zero readings lie
    between 5 % and 90 % of the top, as PV days and wind do); else None.

    Used instead of a nameplate for the flat-top exemption of the stuck checks, so that
    inverter clipping and turbines at rated power are not called stuck when no metadata is
    registered. A register frozen for the whole window does not ramp: no ceiling, no
    exemption. (A register frozen *at* the series' top cannot be told from clipping
    without metadata.) Default 10 %: this project's choice.
    """
    x = np.asarray(energy_wh, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return None
    top = float(x.max())
    if not top > 0:
        return None
    positive = int(np.count_nonzero(x > 0))
    ramp = int(np.count_nonzero((x > 0.05 * top) & (x < 0.9 * top)))
    if ramp < ramp_fraction * positive:
        return None
    return top * 3600.0 / interval_length_s


class LimitContext(NamedTuple):
    """What `VEE_LIMITS_BY_UOM` factories know of a series.

    Attributes:
        reading_type: the series' ReadingType (unit, multiplier, interval length).
        nameplate_w: the site's nameplate when it bounds this channel (see the module
            docstring), W; else None.
        flat_top_w: the ceiling for the flat-top exemption (the nameplate, or
            `observed_flat_top_w`), W; None for none.
        exempt_fraction: runs at or above this fraction of the ceiling are flat tops.
        stuck_min_duration_s: identical readings for longer than this are stuck, s.
    """

    reading_type: ReadingType
    nameplate_w: float | None
    flat_top_w: float | None
    exempt_fraction: float
    stuck_min_duration_s: float


def _energy_limits(ctx: LimitContext) -> VeeLimits:
    """Interval energy: never negative on a one-direction register (flowDirection 1, 19,
    ...), no lower bound on the signed net register (4: export reads negative, see
    `_MIN_INTERVAL_ENERGY_BY_FLOW`); with a nameplate, no more than it allows over an
    interval plus 10 % (`pipeline.analyze.vee.max_interval_value`); runs at or above the exempt
    fraction of the ceiling are flat tops, not stuck. The spike check (a robust z-score,
    symmetric in sign) applies to every register alike."""
    rt = ctx.reading_type
    step, p10 = rt.interval_length_s, rt.power_of_ten_multiplier
    max_value = None if ctx.nameplate_w is None else max_interval_value(ctx.nameplate_w, step, p10)
    ceiling_w = ctx.nameplate_w if ctx.nameplate_w is not None else ctx.flat_top_w
    exempt_at = (
        None
        if ceiling_w is None
        else ctx.exempt_fraction * max_interval_value(ceiling_w, step, p10, 0.0)
    )
    return VeeLimits(
        min_value=_MIN_INTERVAL_ENERGY_BY_FLOW.get(rt.flow_direction, 0.0),
        max_value=max_value,
        stuck_exempt_at_or_above=exempt_at,
        stuck_max_duration_s=int(ctx.stuck_min_duration_s),
    )


def _non_negative_limits(ctx: LimitContext) -> VeeLimits:
    """Voltage and current magnitudes: never negative."""
    return VeeLimits(min_value=0.0)


def _power_factor_limits(ctx: LimitContext) -> VeeLimits:
    """cos(theta): within [-1, 1]; runs at unity are not stuck (inverters run at a constant
    power factor of 1.0 by default, IEEE 1547-2018)."""
    one = 10.0 ** -int(ctx.reading_type.power_of_ten_multiplier)
    return VeeLimits(min_value=-one, max_value=one, stuck_exempt_at_or_above=0.99 * one)


def _signed_limits(ctx: LimitContext) -> VeeLimits:
    """Any other unit: no range check (the sign convention is unknown)."""
    return VeeLimits(min_value=-math.inf)


#: VEE limits per ESPI UnitSymbolKind: uom -> f(LimitContext) -> VeeLimits (values in
#: register counts). Units not listed: no range check.
VEE_LIMITS_BY_UOM: dict[int, Callable[[LimitContext], VeeLimits]] = {
    UOM_WH: _energy_limits,
    UOM_VOLT: _non_negative_limits,
    UOM_AMPERE: _non_negative_limits,
    UOM_COS_THETA: _power_factor_limits,
}


def vee_limits(ctx: LimitContext) -> VeeLimits:
    """The VEE limits of a series: `VEE_LIMITS_BY_UOM` of its unit, no range check for any
    other unit (the sign convention is unknown)."""
    return VEE_LIMITS_BY_UOM.get(ctx.reading_type.uom, _signed_limits)(ctx)

#: Roles whose readings follow a facility's consumption rather than a source.
LOAD_DRIVEN_ROLES = frozenset({CONSUMPTION, IMPORT})
#: Shortest stuck run on a load-driven channel, s (6 h, instead of the 2 h of
#: `pipeline.analyze.faults.DetectorParams.stuck_min_duration_s`). A facility's night load can
#: hold one register value for hours when its variation is below the register's
#: resolution: the twin's clinics behind class 0.5S net meters read the same 137 Wh per
#: minute (a 0.7 % step) for up to 2.5 h on heat-wave nights, which a 2 h rule reported as
#: 16 stuck meters in 72 h. PV and wind output is not flat for hours below its ceiling.
LOAD_STUCK_MIN_DURATION_S = 6 * 3600

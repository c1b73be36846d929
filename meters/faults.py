"""Field faults with ground truth: what goes wrong at a site or in its meter, and the record of
exactly what each fault changed, so that the pipeline's analytics can be scored against it
(precision, recall and detection delay per kind, DESIGN.md §4).

Three layers, applied in this order by the twin:

- ``source``: acts on the source's AC power before it is metered (an inverter trip, soiling,
  degradation, shading, curtailment, icing, a storm cut-out). Power arrays hold interval
  means, so a fault window that covers a fraction ``w`` of an interval changes that
  interval's mean by ``w`` times the full change: ``p' = p + w (f(p) - p)``.
- ``register``: acts on the register values the meter records (stuck, zero, spike). A
  reading is affected when its interval starts inside the window.
- ``clock``: acts on the meter's clock, so on the interval labels (a clock jump; see
  :mod:`meters.clock` for how offsets become labels).

Each fault acts on one row (one site/meter) and on a window ``[at_s, end_s)`` in seconds since
the run's start; ``duration_s = 0`` means open-ended (to the end of the run, or for a clock
jump to the next time sync). Overlapping faults compose as the union of their windows
(DESIGN.md §9): faults of the same kind and parameters on one row whose windows overlap or
touch are one fault over the union (one ground-truth record, under the first of them), so
an overlap is never applied twice (a spike multiplied twice, a clock jumped twice, a
partly covered interval tripped twice). Faults are then applied in the order they start
(the order given among equal starts), the one that began first acting first; the ground
truth of a fault is the change that fault made on top of the ones applied before it, so
the deltas of faults on one row add up to the total change, and the records come in the
order the faults were given. Every fault is a slice operation: no per-reading Python
loop. Randomness: none (where and when is the scenario's choice).

Model sources are in each kind's ``doc`` (see :data:`FIELD_FAULTS`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from meters.energy import INT48_MAX, INT48_MIN

LAYERS = ("source", "register", "clock")
_SECONDS_PER_DAY = 86400.0
_SECONDS_PER_YEAR = 365.25 * _SECONDS_PER_DAY  # Julian year
_EPS = 1e-9

#: Fields of a ground-truth record (one per fault), with units: a flat table for results.
GROUND_TRUTH_FIELDS: dict[str, str] = {
    "kind": "fault kind (a key of FIELD_FAULTS)",
    "layer": "source | register | clock",
    "meter_id": "target meter",
    "row": "row of the target in the fleet's arrays",
    "start_s": "start of the active window, s after the scenario start (clipped to the run)",
    "end_s": "end of the active window, s after the scenario start (clipped to the run)",
    "first_reading": "index of the first reading the window touches",
    "end_reading": "one past the last reading the window touches",
    "window_readings": "readings the window touches (end_reading - first_reading)",
    "affected_readings": "readings whose value (or label) the fault changed",
    "energy_delta_wh": "sum of (faulty - true) energy over the readings, Wh; None for clock",
    "params": "the fault's parameters with defaults filled in (name -> value)",
}


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a fault kind: default, allowed range [minimum, maximum], unit, doc."""

    default: float
    minimum: float
    maximum: float
    unit: str
    doc: str
    integer: bool = False

    def check(self, kind: str, name: str, value: Any) -> float:
        """``value`` as a number (an int for integer parameters); a ValueError naming the
        parameter, its value and the expected range if it is not one or out of range."""
        expected = f"expected {self.minimum:g} <= {name} <= {self.maximum:g} ({self.unit})"
        if self.integer:
            expected = f"expected an integer {self.minimum:g} <= {name} <= {self.maximum:g}"
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise ValueError(f"{kind}: {name}={value!r} is not a number: {expected}")
        number = float(value)
        if (
            not math.isfinite(number)
            or not self.minimum <= number <= self.maximum
            or (self.integer and not number.is_integer())
        ):
            raise ValueError(f"{kind}: {name}={value!r} out of range: {expected}")
        return int(number) if self.integer else number


@dataclass(frozen=True)
class FaultContext:
    """What a kind's ``apply`` gets besides the values of its window."""

    row: int
    at_s: float  # the fault's start as given, s after the scenario start
    start_s: float  # active window, clipped to the run
    end_s: float
    lo: int  # readings [lo, hi) the window touches
    hi: int
    step_s: float
    #: [hi - lo] time the fault sees for each reading, s: the midpoint of the covered part of
    #: the interval (source layer) or the interval start (register and clock layers).
    t_s: np.ndarray
    #: [hi - lo] UTC hour of day of each interval's midpoint (source layer with times_utc).
    utc_hour: np.ndarray | None = None
    nominal_power_w: float = math.nan  # the row's nominal (rated) power (source layer)


#: (values of the window [hi - lo], context, params) -> the faulty values over a full interval.
ApplyFn = Callable[[np.ndarray, FaultContext, Mapping[str, float]], np.ndarray]
#: (at_s, duration_s, params, horizon_s, step_s) -> end of the active window, s.
WindowFn = Callable[[float, float, Mapping[str, float], float, float], float]


def _open_ended(
    at_s: float, duration_s: float, params: Mapping[str, float], horizon_s: float, step_s: float
) -> float:
    """``at + duration``; ``duration = 0``: until the end of the run."""
    return horizon_s if duration_s <= 0 else at_s + duration_s


@dataclass(frozen=True, eq=False)  # holds a dict: compare by identity
class FaultKind:
    """One kind of field fault: where it acts, on which fleets, its parameters and model."""

    name: str
    layer: str  # "source" | "register" | "clock"
    fleet_kinds: tuple[str, ...]
    params: dict[str, ParamSpec]
    apply: ApplyFn
    doc: str
    window_end: WindowFn = _open_ended

    def resolve(self, params: Mapping[str, Any]) -> dict[str, float]:
        """Parameters checked against their specs, defaults filled in, sorted by name."""
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            allowed = ", ".join(sorted(self.params)) or "none"
            raise ValueError(
                f"{self.name}: unknown parameter {unknown[0]}={params[unknown[0]]!r}: "
                f"expected one of: {allowed}"
            )
        return {
            name: spec.check(self.name, name, params.get(name, spec.default))
            for name, spec in sorted(self.params.items())
        }


@dataclass(frozen=True, eq=False)
class FaultInstance:
    """One injected fault: ``kind`` (a key of :data:`FIELD_FAULTS`) on ``row`` (the target's
    row in the fleet's arrays; ``meter_id`` names it) from ``at_s`` for ``duration_s``
    (0 = open-ended), with ``params`` (checked and completed with defaults on creation)."""

    kind: str
    row: int
    meter_id: str
    at_s: float
    duration_s: float = 0.0
    params: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in FIELD_FAULTS:
            raise ValueError(f"kind={self.kind!r}: expected one of {sorted(FIELD_FAULTS)}")
        for name, value in (("at_s", self.at_s), ("duration_s", self.duration_s)):
            if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not (
                math.isfinite(value) and value >= 0
            ):
                raise ValueError(f"{self.kind}: {name}={value!r}: expected a finite number >= 0 s")
        if isinstance(self.row, bool) or not isinstance(self.row, int | np.integer) or self.row < 0:
            raise ValueError(f"{self.kind}: row={self.row!r}: expected an integer >= 0")
        object.__setattr__(self, "params", self.spec.resolve(self.params))

    @property
    def spec(self) -> FaultKind:
        return FIELD_FAULTS[self.kind]

    def window_s(self, horizon_s: float, step_s: float) -> tuple[float, float]:
        """The active window [start, end), s after the scenario start, clipped to the run."""
        end = self.spec.window_end(self.at_s, self.duration_s, self.params, horizon_s, step_s)
        start = min(self.at_s, horizon_s)
        return start, min(max(end, start), horizon_s)


# -- source-layer models -------------------------------------------------------------------
def _trip(power: np.ndarray, ctx: FaultContext, p: Mapping[str, float]) -> np.ndarray:
    return np.zeros_like(power)


def _soiling(power: np.ndarray, ctx: FaultContext, p: Mapping[str, float]) -> np.ndarray:
    days = (ctx.t_s - ctx.at_s) / _SECONDS_PER_DAY
    loss = np.minimum(p["rate_pct_per_day"] * days, p["max_loss_pct"]) / 100.0
    out: np.ndarray = power * (1.0 - loss)
    return out


def _degradation(power: np.ndarray, ctx: FaultContext, p: Mapping[str, float]) -> np.ndarray:
    years = (ctx.t_s - ctx.at_s) / _SECONDS_PER_YEAR
    loss = np.minimum(p["rate_pct_per_year"] * years / 100.0, 1.0)
    out: np.ndarray = power * (1.0 - loss)
    return out


def _shading(power: np.ndarray, ctx: FaultContext, p: Mapping[str, float]) -> np.ndarray:
    if ctx.utc_hour is None:
        raise ValueError("partial_shading: needs times_utc (the UTC time of each interval)")
    local = np.mod(ctx.utc_hour + p["utc_offset_h"], 24.0)
    lo, hi = p["from_hour"], p["to_hour"]
    shaded = (local >= lo) & (local < hi) if lo <= hi else (local >= lo) | (local < hi)
    out: np.ndarray = power * np.where(shaded, 1.0 - p["shade_fraction"], 1.0)
    return out


def _curtailment(power: np.ndarray, ctx: FaultContext, p: Mapping[str, float]) -> np.ndarray:
    if not math.isfinite(ctx.nominal_power_w):
        raise ValueError("turbine_curtailment: needs nominal_power_w (the turbine's rated power)")
    return np.minimum(power, p["limit_fraction"] * ctx.nominal_power_w)


def _icing(power: np.ndarray, ctx: FaultContext, p: Mapping[str, float]) -> np.ndarray:
    out: np.ndarray = power * (1.0 - p["loss_fraction"])
    return out


def _permanent(
    at_s: float, duration_s: float, params: Mapping[str, float], horizon_s: float, step_s: float
) -> float:
    return horizon_s


def _storm_end(
    at_s: float, duration_s: float, params: Mapping[str, float], horizon_s: float, step_s: float
) -> float:
    return _open_ended(at_s, duration_s, params, horizon_s, step_s) + params["restart_delay_s"]


# -- register-layer models -----------------------------------------------------------------
def _stuck(values: np.ndarray, ctx: FaultContext, p: Mapping[str, float]) -> np.ndarray:
    return np.full_like(values, values[0]) if len(values) else values


def _zero(values: np.ndarray, ctx: FaultContext, p: Mapping[str, float]) -> np.ndarray:
    return np.zeros_like(values)


def _spike(values: np.ndarray, ctx: FaultContext, p: Mapping[str, float]) -> np.ndarray:
    scaled = np.clip(np.rint(values * p["factor"]), INT48_MIN, INT48_MAX)
    return scaled.astype(values.dtype)


def _spike_end(
    at_s: float, duration_s: float, params: Mapping[str, float], horizon_s: float, step_s: float
) -> float:
    first = math.ceil(at_s / step_s - _EPS) * step_s  # start of the first reading at or after at
    return first + params["count"] * step_s


# -- clock-layer models --------------------------------------------------------------------
def _jump(offsets: np.ndarray, ctx: FaultContext, p: Mapping[str, float]) -> np.ndarray:
    return offsets + p["offset_s"]


_DURATION_NOTE = "duration 0 = until the end of the run."

#: Registry of field faults by kind name (the scenario's ``[[fault]] kind``).
FIELD_FAULTS: dict[str, FaultKind] = {
    "inverter_trip": FaultKind(
        "inverter_trip",
        "source",
        ("pv",),
        {},
        _trip,
        "The PV inverter trips (grid protection, an internal fault or an isolation alarm) "
        "and feeds nothing for the duration: AC power 0 (IEC 62116 / IEEE 1547 disconnection). "
        + _DURATION_NOTE,
    ),
    "soiling": FaultKind(
        "soiling",
        "source",
        ("pv",),
        {
            "rate_pct_per_day": ParamSpec(
                0.15, 0.0, 10.0, "%/day",
                "soiling loss rate; default 0.15 %/day, pvlib.soiling.kimber's default (Kimber "
                "et al. 2006, 'The effect of soiling on large grid-connected PV systems in "
                "California')",
            ),
            "max_loss_pct": ParamSpec(
                30.0, 0.0, 100.0, "%", "loss at which soiling saturates (pvlib.soiling.kimber "
                "max_soiling 0.3)",
            ),
        },
        _soiling,
        "Dust builds up on the modules: a loss growing linearly at rate_pct_per_day from "
        "`at` (up to max_loss_pct) until the window ends, when cleaning (rain or a wash) "
        "restores the output. " + _DURATION_NOTE,
    ),
    "degradation": FaultKind(
        "degradation",
        "source",
        ("pv", "wind"),
        {
            "rate_pct_per_year": ParamSpec(
                0.5, 0.0, 1000.0, "%/year",
                "output loss rate; default 0.5 %/yr, the median PV degradation rate of Jordan "
                "& Kurtz 2013 ('Photovoltaic Degradation Rates - an Analytical Review', Prog. "
                "Photovolt. 21); wind turbines lose about 1.6 %/yr (Staffell & Green 2014, "
                "Renewable Energy 66). Larger values accelerate it for short runs.",
            ),
        },
        _degradation,
        "Permanent ageing from `at` to the end of the run: output x (1 - rate * years since "
        "at); the duration is ignored.",
        _permanent,
    ),
    "partial_shading": FaultKind(
        "partial_shading",
        "source",
        ("pv",),
        {
            "shade_fraction": ParamSpec(0.3, 0.0, 1.0, "1", "fraction of the output lost"),
            "from_hour": ParamSpec(15.0, 0.0, 24.0, "h", "local hour the shade arrives"),
            "to_hour": ParamSpec(
                17.0, 0.0, 24.0, "h", "local hour the shade leaves (before from_hour: wraps "
                "past midnight)",
            ),
            "utc_offset_h": ParamSpec(
                0.0, -12.0, 14.0, "h", "local time minus UTC at the site (UTC-12 .. UTC+14)",
            ),
        },
        _shading,
        "A new obstruction (a tree, a building, a mast) shades the array every day between "
        "local hours from_hour and to_hour: output x (1 - shade_fraction) in those hours, "
        "for the days of the window (an interval counts by its midpoint). " + _DURATION_NOTE,
    ),
    "turbine_curtailment": FaultKind(
        "turbine_curtailment",
        "source",
        ("wind",),
        {
            "limit_fraction": ParamSpec(
                0.6, 0.0, 1.0, "1",
                "output cap as a fraction of rated power; default 0.6, a step of German feed-in "
                "management (EEG 2012 §6: 100/60/30/0 %)",
            ),
        },
        _curtailment,
        "The grid operator caps the turbine: power = min(power, limit_fraction x rated). "
        + _DURATION_NOTE,
    ),
    "icing": FaultKind(
        "icing",
        "source",
        ("wind",),
        {
            "loss_fraction": ParamSpec(
                0.3, 0.0, 1.0, "1",
                "fraction of the output lost; 1 = ice detection stops the turbine. Ice on the "
                "leading edge costs tens of percent of output (IEA Wind TCP Task 19, 'Available "
                "Technologies for Wind Energy in Cold Climates', 2018); 0.3 is a model choice",
            ),
        },
        _icing,
        "Rotor icing: power x (1 - loss_fraction) for the window. " + _DURATION_NOTE,
    ),
    "storm_cutout": FaultKind(
        "storm_cutout",
        "source",
        ("wind",),
        {
            "restart_delay_s": ParamSpec(
                600.0, 0.0, 86400.0, "s",
                "hysteresis before restart: the controller restarts only after the 10-min mean "
                "wind (IEC 61400-1 averaging period) is back below the restart speed, so at "
                "least 600 s",
            ),
        },
        _trip,
        "High-wind cut-out: the turbine stops for the window and restarts restart_delay_s "
        "after its end (power 0 on [at, end + restart_delay_s)). " + _DURATION_NOTE,
        _storm_end,
    ),
    "stuck_value": FaultKind(
        "stuck_value",
        "register",
        ("pv", "wind"),
        {},
        _stuck,
        "The meter's register freezes: every reading in the window repeats the value of the "
        "first one (a metering IC that stopped updating). " + _DURATION_NOTE,
    ),
    "zero_value": FaultKind(
        "zero_value",
        "register",
        ("pv", "wind"),
        {},
        _zero,
        "The register reads 0 (a lost CT/voltage connection to the meter). " + _DURATION_NOTE,
    ),
    "spike": FaultKind(
        "spike",
        "register",
        ("pv", "wind"),
        {
            "factor": ParamSpec(10.0, 0.0, 1e6, "1", "multiplier of the register values"),
            "count": ParamSpec(1.0, 1.0, 10000.0, "readings", "readings affected", integer=True),
        },
        _spike,
        "`count` readings from `at` read `factor` times their value (a corrupted register or "
        "a decimal-point error), clipped to the ESPI Int48 range; the duration is ignored.",
        _spike_end,
    ),
    "clock_jump": FaultKind(
        "clock_jump",
        "clock",
        ("pv", "wind"),
        {
            "offset_s": ParamSpec(
                3600.0, -86400.0, 86400.0, "s",
                "size of the jump (positive: the clock runs ahead); default 3600 s, a daylight-"
                "saving change applied to a clock that should keep UTC",
            ),
        },
        _jump,
        "The meter's clock jumps by offset_s at `at`; the labels of its readings shift (by "
        "whole intervals, see meters.clock) until the next time sync or the end of the window. "
        "Duration 0 = until the next sync (or the end of the run).",
    ),
}


# -- applying faults -----------------------------------------------------------------------
def _check_rows(faults: Sequence[FaultInstance], n_rows: int, fleet_kind: str | None) -> None:
    for f in faults:
        if not 0 <= f.row < n_rows:
            raise ValueError(
                f"{f.kind} on {f.meter_id}: row={f.row} outside the {n_rows} rows (0..{n_rows - 1})"
            )
        if fleet_kind is not None and fleet_kind not in f.spec.fleet_kinds:
            raise ValueError(
                f"{f.kind} on {f.meter_id}: applies to {' or '.join(f.spec.fleet_kinds)} fleets, "
                f"not to a {fleet_kind} fleet"
            )


def _record(
    f: FaultInstance,
    window: tuple[float, float],
    lo: int,
    hi: int,
    affected: int,
    energy_delta_wh: float | None,
) -> dict[str, Any]:
    return {
        "kind": f.kind,
        "layer": f.spec.layer,
        "meter_id": f.meter_id,
        "row": int(f.row),
        "start_s": float(window[0]),
        "end_s": float(window[1]),
        "first_reading": lo,
        "end_reading": hi,
        "window_readings": hi - lo,
        "affected_readings": affected,
        "energy_delta_wh": energy_delta_wh,
        "params": dict(f.params),
    }


def _reading_range(window: tuple[float, float], step_s: float, n_steps: int) -> tuple[int, int]:
    """Readings whose interval STARTS in [start, end)."""
    start, end = window
    if end <= start:
        lo = min(math.ceil(start / step_s - _EPS), n_steps)
        return lo, lo
    lo = min(math.ceil(start / step_s - _EPS), n_steps)
    hi = min(math.ceil(end / step_s - _EPS), n_steps)
    return lo, max(lo, hi)


def _utc_hours(times_utc: Any, n_steps: int) -> np.ndarray:
    index = pd.DatetimeIndex(times_utc)
    if index.tz is None:
        index = index.tz_localize("UTC")
    if len(index) != n_steps:
        raise ValueError(f"times_utc: {len(index)} times for {n_steps} steps")
    seconds = np.asarray(
        (index - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1), dtype=np.float64
    )
    out: np.ndarray = np.mod(seconds, _SECONDS_PER_DAY) / 3600.0
    return out


def _of_layer(faults: Sequence[FaultInstance], layer: str) -> list[FaultInstance]:
    return [f for f in faults if f.spec.layer == layer]


def compose_windows(
    faults: Sequence[FaultInstance], windows: Sequence[tuple[float, float]]
) -> list[tuple[int, tuple[float, float]]]:
    """How ``faults`` with their active ``windows`` compose (module docstring): (index of
    the fault that stands for a group, the group's window), in the order to apply them.
    A group is the faults of one row, kind and parameters whose windows overlap or touch;
    the fault that starts first (first given among equal starts) stands for it, over the
    union of their windows."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, f in enumerate(faults):
        groups.setdefault((int(f.row), f.kind, tuple(sorted(f.params.items()))), []).append(i)
    merged: list[tuple[int, tuple[float, float]]] = []
    for members in groups.values():
        members.sort(key=lambda i: (windows[i][0], i))
        first, (start, end) = members[0], windows[members[0]]
        for i in members[1:]:
            lo, hi = windows[i]
            if lo <= end:
                end = max(end, hi)
            else:
                merged.append((first, (start, end)))
                first, start, end = i, lo, hi
        merged.append((first, (start, end)))
    return sorted(merged, key=lambda item: (item[1][0], item[0]))


def _in_given_order(truth: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    return [truth[i] for i in sorted(truth)]


def apply_source_faults(
    power_w: np.ndarray,
    faults: Sequence[FaultInstance],
    step_s: float,
    times_utc: Any = None,
    nominal_power_w: np.ndarray | None = None,
    *,
    fleet_kind: str | None = None,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """The sources' power with the ``source``-layer faults of ``faults`` applied, and their
    ground truth (one record per fault, fields :data:`GROUND_TRUTH_FIELDS`).

    ``power_w`` [n_sites, n_steps] holds interval means (W) of intervals
    ``[i step_s, (i+1) step_s)``; it is not modified. ``times_utc`` (interval midpoints, as
    :class:`meters.weather.Weather` has them) is needed by ``partial_shading``;
    ``nominal_power_w`` [n_sites] (rated power, W) by ``turbine_curtailment``. Faults of
    other layers are ignored; ``fleet_kind`` checks each fault applies to the fleet.
    ``energy_delta_wh`` is the integral of (faulty - true) power over the run, Wh."""
    power = np.array(power_w, dtype=np.float64, copy=True, ndmin=2)
    n_sites, n_steps = power.shape
    faults = _of_layer(faults, "source")
    _check_rows(faults, n_sites, fleet_kind)
    horizon_s = n_steps * step_s
    utc_hour = _utc_hours(times_utc, n_steps) if times_utc is not None and faults else None
    nominal = (
        None if nominal_power_w is None else np.broadcast_to(
            np.asarray(nominal_power_w, dtype=np.float64), (n_sites,)
        )
    )
    truth: dict[int, dict[str, Any]] = {}
    windows = [f.window_s(horizon_s, step_s) for f in faults]
    for index, window in compose_windows(faults, windows):
        f = faults[index]
        start, end = window
        lo = min(math.floor(start / step_s + _EPS), n_steps)
        hi = min(math.ceil(end / step_s - _EPS), n_steps) if end > start else lo
        edges = np.arange(lo, hi + 1, dtype=np.float64) * step_s
        left = np.maximum(edges[:-1], start)
        right = np.minimum(edges[1:], end)
        cover = np.clip((right - left) / step_s, 0.0, 1.0)
        ctx = FaultContext(
            row=f.row,
            at_s=f.at_s,
            start_s=start,
            end_s=end,
            lo=lo,
            hi=hi,
            step_s=step_s,
            t_s=(left + right) / 2.0,
            utc_hour=None if utc_hour is None else utc_hour[lo:hi],
            nominal_power_w=math.nan if nominal is None else float(nominal[f.row]),
        )
        before = power[f.row, lo:hi].copy()
        full = np.asarray(f.spec.apply(before.copy(), ctx, f.params), dtype=np.float64)
        after = np.where(cover >= 1.0, full, before + cover * (full - before))
        power[f.row, lo:hi] = after
        diff = after - before
        truth[index] = _record(
            f, window, lo, hi, int(np.count_nonzero(diff)), float(diff.sum() * step_s / 3600.0)
        )
    return power, _in_given_order(truth)


def apply_register_faults(
    values: np.ndarray,
    faults: Sequence[FaultInstance],
    step_s: float,
    *,
    power_of_ten_multiplier: int = 0,
    fleet_kind: str | None = None,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Register values (int64 [n_sites, n_steps], units of 10**m Wh) with the ``register``-
    layer faults of ``faults`` applied, and their ground truth. ``values`` is not modified.

    A reading is in a fault's window when its interval starts in it. ``energy_delta_wh`` is
    the sum of (faulty - true) register values times 10**``power_of_ten_multiplier`` Wh.
    Faults of other layers are ignored."""
    out = np.array(values, dtype=np.int64, copy=True, ndmin=2)
    n_sites, n_steps = out.shape
    faults = _of_layer(faults, "register")
    _check_rows(faults, n_sites, fleet_kind)
    horizon_s = n_steps * step_s
    scale = 10.0**power_of_ten_multiplier
    truth: dict[int, dict[str, Any]] = {}
    windows = [f.window_s(horizon_s, step_s) for f in faults]
    for index, window in compose_windows(faults, windows):
        f = faults[index]
        lo, hi = _reading_range(window, step_s, n_steps)
        ctx = FaultContext(
            row=f.row,
            at_s=f.at_s,
            start_s=window[0],
            end_s=window[1],
            lo=lo,
            hi=hi,
            step_s=step_s,
            t_s=np.arange(lo, hi, dtype=np.float64) * step_s,
        )
        before = out[f.row, lo:hi].copy()
        after = np.asarray(f.spec.apply(before.copy(), ctx, f.params), dtype=np.int64)
        out[f.row, lo:hi] = after
        diff = after - before
        truth[index] = _record(
            f, window, lo, hi, int(np.count_nonzero(diff)), float(diff.sum()) * scale
        )
    return out, _in_given_order(truth)


def clock_fault_offsets(
    faults: Sequence[FaultInstance],
    n_sites: int,
    n_steps: int,
    step_s: float,
    *,
    sync_period_s: float | np.ndarray | None = None,
    sync_phase_s: float | np.ndarray = 0.0,
    fleet_kind: str | None = None,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Clock offsets (s, float64 [n_sites, n_steps], 0 where no fault acts) that the
    ``clock``-layer faults add for each reading, and their ground truth.

    Add the result to the drift offsets of :func:`meters.clock.clock_offset_s` (evaluated at
    the interval starts) and turn the sum into labels with
    :func:`meters.clock.interval_labels_s`. A jump lasts until the end of its window or the
    meter's next time sync after ``at_s`` (syncs at ``sync_phase_s + k sync_period_s``,
    per meter or for all; ``None``: never synced), whichever is first.
    ``affected_readings`` counts the readings whose label the jump shifts (by whole
    intervals, on top of earlier jumps); ``energy_delta_wh`` is None."""
    offsets = np.zeros((n_sites, n_steps), dtype=np.float64)
    faults = _of_layer(faults, "clock")
    _check_rows(faults, n_sites, fleet_kind)
    horizon_s = n_steps * step_s
    period = (
        None if sync_period_s is None else np.broadcast_to(
            np.asarray(sync_period_s, dtype=np.float64), (n_sites,)
        )
    )
    phase = np.broadcast_to(np.asarray(sync_phase_s, dtype=np.float64), (n_sites,))
    windows = []
    for f in faults:
        start, end = f.window_s(horizon_s, step_s)
        if period is not None:
            p, ph = float(period[f.row]), float(phase[f.row])
            if math.isfinite(p):
                next_sync = ph + p * (math.floor((f.at_s - ph) / p + _EPS) + 1)
                end = max(start, min(end, next_sync))
        windows.append((start, end))
    truth: dict[int, dict[str, Any]] = {}
    for index, window in compose_windows(faults, windows):
        f = faults[index]
        start, end = window
        lo, hi = _reading_range(window, step_s, n_steps)
        ctx = FaultContext(
            row=f.row,
            at_s=f.at_s,
            start_s=start,
            end_s=end,
            lo=lo,
            hi=hi,
            step_s=step_s,
            t_s=np.arange(lo, hi, dtype=np.float64) * step_s,
        )
        before = offsets[f.row, lo:hi].copy()
        after = np.asarray(f.spec.apply(before.copy(), ctx, f.params), dtype=np.float64)
        offsets[f.row, lo:hi] = after
        shift_before = np.floor(before / step_s + 0.5)
        shift_after = np.floor(after / step_s + 0.5)
        truth[index] = _record(
            f, window, lo, hi, int(np.count_nonzero(shift_after != shift_before)), None
        )
    return offsets, _in_given_order(truth)

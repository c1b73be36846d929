"""Site load: electricity consumption of the medical facility a source feeds.

A facility's demand (W, interval means) is the sum of three parts, each a pure function on
[n_sites, n_steps] arrays:

1. **Base and schedule** -- ``peak_load_w * (base_fraction + (1 - base_fraction) * a(t))``,
   where ``a(t)`` in [0, 1] is the facility kind's hourly *activity* in LOCAL time (hour of
   the week; ``Facilities.utc_offset_h``, standard time, no daylight saving), integrated
   exactly over each sample interval. The shapes are the plug-load schedules
   (``BLDG_EQUIP_SCH``) of the DOE commercial prototype buildings (ASHRAE 90.1-2013
   editions of the DOE Commercial Reference Buildings, Deru et al. 2011,
   NREL/TP-5500-46861) "Outpatient Health Care" and "Hospital", rescaled to [0, 1].
   ``peak_load_w`` is thus the scheduled peak: base plus full activity, before HVAC and
   imaging.
2. **HVAC** -- a variable-base degree-hour model (ASHRAE Handbook -- Fundamentals 2017,
   ch. 19): ``peak_load_w * (c_cool * max(T - T_cool, 0) + c_heat * max(T_heat - T, 0))``
   with slopes in W per K per kW of peak load, scaled by ``hvac_setback + (1 -
   hvac_setback) * a(t)`` (night setback in a clinic; none in a hospital, which keeps its
   ventilation rates day and night, ASHRAE 170).
3. **Imaging exams** -- MRI/CT scans arrive as a Poisson process of intensity ``rate_per_h
   * imaging_rate_factor * a(t)`` (thinning of a homogeneous process, so arrivals follow
   opening hours), each adding ``power_w`` for ``duration_s``; overlapping exams add (several
   scanners). Drawn per site from that site's own numpy Generator; each exam's exact
   overlap with each sample interval is added by a compiled kernel (per exam, not per
   reading).

The deterministic parts are computed once per distinct (kind, utc_offset_h, weather row)
and scaled to each site's ``peak_load_w``.

Defaults per kind (:data:`FACILITY_KINDS`) are calibrated so that the annual electricity
intensity at a mid-US climate (TMY3 723170, Greensboro NC, ASHRAE zone 4A) matches the
CBECS mean for the building type, and the HVAC slopes so that cooling and electric heating
take the shares of electricity that CBECS reports for it (see each kind's docstring).

:func:`net_flows_wh` nets consumption against on-site generation into the two registers of
a net-metering meter (ESPI flowDirection 1 delivered, 19 received).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numba import njit

_HOUR_S = 3600.0
_WEEK_S = 7 * 86_400.0
#: 1970-01-01 (epoch) was a Thursday: the epoch is 3 days after a Monday 00:00.
_EPOCH_AFTER_MONDAY_S = 3 * 86_400.0
_FT2_PER_M2 = 10.763910416709722


def kwh_per_ft2_to_kwh_per_m2(kwh_per_ft2: float) -> float:
    """Convert an energy intensity in kWh/ft2 (CBECS tables) to kWh/m2."""
    return kwh_per_ft2 * _FT2_PER_M2


def hourly_schedule(*until_value: tuple[int, float]) -> tuple[float, ...]:
    """24 hourly values from EnergyPlus ``Schedule:Compact`` style pairs ``(until_hour,
    value)``: ``(6, 0.0), (18, 1.0), (24, 0.0)`` is 0 until 06:00, 1 until 18:00, then 0."""
    values: list[float] = []
    for until, value in until_value:
        if not len(values) < until <= 24:
            raise ValueError(f"schedule hours must increase up to 24, got {until_value}")
        values += [float(value)] * (until - len(values))
    if len(values) != 24:
        raise ValueError(f"schedule must end at hour 24, got {until_value}")
    return tuple(values)


def _rescaled(*until_value: tuple[int, float], low: float, high: float) -> tuple[float, ...]:
    """A DOE prototype schedule rescaled to activity in [0, 1]: (f - low) / (high - low)."""
    return tuple((v - low) / (high - low) for v in hourly_schedule(*until_value))


@dataclass(frozen=True)
class EquipmentSpike:
    """One kind of intermittent equipment use (an imaging exam).

    ``power_w`` is the demand above the scanner's idle draw (idle is part of the base
    load) while an exam runs, for ``duration_s``; ``rate_per_h`` is the arrival rate at
    full activity (a = 1).
    """

    name: str
    power_w: float
    duration_s: float
    rate_per_h: float

    def __post_init__(self) -> None:
        if not (self.power_w >= 0 and self.duration_s > 0 and self.rate_per_h >= 0):
            raise ValueError(f"invalid equipment spike {self!r}")

    @property
    def mean_energy_wh_per_active_h(self) -> float:
        """Expected exam energy per hour of full activity, Wh (rate x power x duration)."""
        return self.rate_per_h * self.power_w * self.duration_s / _HOUR_S


#: MRI exam: scan mode draws 28.6-48.3 kW against 9.5-14.5 kW idle (four outpatient 1.5/3 T
#: scanners metered at 1 Hz; Woolen et al. 2023, Radiology 307(4):e230441), so about 25 kW
#: above idle; a 30-minute slot. Rate: about one exam per scanner-hour of opening time.
MRI_EXAM = EquipmentSpike("mri", power_w=25_000.0, duration_s=1800.0, rate_per_h=1.0)

#: CT exam: the X-ray generator draws tens of kW for seconds of exposure within a ~10 min
#: room time; averaged over that time, an estimated 5 kW above the 2.6 kW idle draw
#: (idle from Schulz et al. 2024, Acad. Radiol., three dual-energy CT scanners). Estimate,
#: not a measured mean. Rate: three exams per scanner-hour of opening time.
CT_EXAM = EquipmentSpike("ct", power_w=5_000.0, duration_s=600.0, rate_per_h=3.0)


@dataclass(frozen=True)
class FacilityKind:
    """Parameters of one kind of medical facility (a value of :data:`FACILITY_KINDS`).

    Schedules are 24 hourly activity values in [0, 1] of local standard time for weekdays,
    Saturdays and Sundays. HVAC slopes are W per K per kW of ``peak_load_w``.
    """

    description: str
    floor_area_m2: float  # reference building floor area, m2
    peak_load_w: float  # default scheduled peak demand (base + full activity), W
    base_fraction: float  # always-on share of peak_load_w
    weekday: tuple[float, ...]
    saturday: tuple[float, ...]
    sunday: tuple[float, ...]
    cooling_balance_c: float  # outdoor temperature above which cooling load rises, degC
    heating_balance_c: float  # outdoor temperature below which electric heating rises, degC
    cooling_w_per_k_per_kw: float  # W of cooling per K above balance per kW of peak load
    heating_w_per_k_per_kw: float  # W of electric heating per K below balance per kW peak
    hvac_setback: float  # HVAC response at zero activity relative to full activity
    spikes: tuple[EquipmentSpike, ...] = ()
    reference_intensity_kwh_m2_yr: float = 0.0  # published mean electricity intensity
    week_activity: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        days = (self.weekday,) * 5 + (self.saturday, self.sunday)
        if any(len(day) != 24 for day in days):
            raise ValueError(f"{self.description}: schedules need 24 hourly values")
        week = np.array(days, dtype=np.float64).reshape(168)
        if not ((week >= 0).all() and (week <= 1).all()):
            raise ValueError(f"{self.description}: activity must lie in [0, 1]")
        if not (0 <= self.base_fraction <= 1 and 0 <= self.hvac_setback <= 1):
            raise ValueError(f"{self.description}: base_fraction and hvac_setback in [0, 1]")
        if self.heating_balance_c > self.cooling_balance_c:
            raise ValueError(f"{self.description}: heating balance above cooling balance")
        week.flags.writeable = False
        object.__setattr__(self, "week_activity", week)  # hour of week, Monday 00:00 first


#: Outpatient clinic. Building: DOE Reference "Outpatient Health Care", 40,946 ft2 = 3,804 m2,
#: 3 floors (Deru et al. 2011). Schedule: prototype ``BLDG_EQUIP_SCH``, which is 0.990460515
#: times (weekdays 0.3 until 04:00, 0.5 until 06:00, 1.0 until 18:00, 0.5 until 20:00, then
#: 0.3; Saturday 0.3/0.5/0.8 09-15 h/0.5 until 20:00; Sunday 0.5 08-17 h): base 0.3.
#: Intensity: CBECS 2018 "clinic/other outpatient health care" 18.9 kWh/ft2/yr = 203 kWh/m2/yr
#: (CBECS 2012 Table C14 outpatient mean 18.7 kWh/ft2). HVAC: CBECS 2003 Table E4 outpatient
#: electricity 55.0 kBtu/ft2 of which cooling 7.0 (12.7 %) and space heating 2.3 (4.2 %);
#: balance points below 18 degC because of internal gains (variable-base degree days, ASHRAE
#: Fundamentals ch. 19). Calibrated at Greensboro NC (TMY3 723170, UTC-5): peak 110 kW
#: (29 W/m2) and slopes 36 / 23 W/K/kW give 205 kWh/m2/yr, cooling 12.7 %, heating 4.2 %,
#: imaging 7 %. Schedules: energycodes.gov ASHRAE901_OutPatientHealthCare_STD2013 IDF.
CLINIC = FacilityKind(
    description="outpatient health care clinic (DOE reference Outpatient Health Care)",
    floor_area_m2=3804.0,
    peak_load_w=110_000.0,
    base_fraction=0.3,
    weekday=_rescaled((4, 0.3), (6, 0.5), (18, 1.0), (20, 0.5), (24, 0.3), low=0.3, high=1.0),
    saturday=_rescaled((7, 0.3), (9, 0.5), (15, 0.8), (20, 0.5), (24, 0.3), low=0.3, high=1.0),
    sunday=_rescaled((8, 0.3), (17, 0.5), (24, 0.3), low=0.3, high=1.0),
    cooling_balance_c=15.0,
    heating_balance_c=10.0,
    cooling_w_per_k_per_kw=36.0,
    heating_w_per_k_per_kw=23.0,
    hvac_setback=0.4,
    spikes=(MRI_EXAM, CT_EXAM),
    reference_intensity_kwh_m2_yr=kwh_per_ft2_to_kwh_per_m2(18.9),
)  # fmt: skip

#: Hospital wing: one of the five floors of the DOE Reference "Hospital" (241,351 ft2 =
#: 22,422 m2, Deru et al. 2011): 4,484 m2. Open 24/7: the shape is the Hospital prototype's
#: ``BLDG_EQUIP_SCH`` (weekdays 0.349 until 07:00, 0.682 until 08:00, 0.877 until 16:00,
#: 0.584 until 22:00, 0.524 until 23:00; Saturday 0.487/0.633 07-18 h; Sunday 0.262/0.349),
#: but patient rooms, ICU, labs and the ventilation (21 % of inpatient electricity, CBECS
#: 2003 Table E4) run day and night, so the base is 0.6 of peak (assumed) and the day/night
#: swing smaller than a clinic's. Intensity: CBECS 2018 inpatient 28.8 kWh/ft2/yr = 310
#: kWh/m2/yr (CBECS 2012 Table C14: 31.0). HVAC: CBECS 2003 Table E4 inpatient electricity
#: 93.7 kBtu/ft2, cooling 13.0 (13.9 %), space heating 1.6 (1.7 %). Calibrated at
#: Greensboro NC (TMY3 723170, UTC-5): peak 165 kW (37 W/m2) and slopes 27 / 9 W/K/kW give
#: 310 kWh/m2/yr, cooling 13.8 %, heating 1.7 %. Schedules: ASHRAE901_Hospital_STD2013 IDF.
HOSPITAL_WING = FacilityKind(
    description="hospital wing, 24/7 inpatient care (one floor of the DOE reference Hospital)",
    floor_area_m2=22_422.0 / 5,
    peak_load_w=165_000.0,
    base_fraction=0.6,
    weekday=_rescaled((7, 0.3493), (8, 0.6818), (16, 0.8766), (22, 0.5844), (23, 0.5239),
                      (24, 0.3493), low=0.2620, high=0.8766),
    saturday=_rescaled((7, 0.3493), (8, 0.4870), (18, 0.6331), (24, 0.3493),
                       low=0.2620, high=0.8766),
    sunday=_rescaled((8, 0.2620), (16, 0.3493), (24, 0.2620), low=0.2620, high=0.8766),
    cooling_balance_c=13.0,
    heating_balance_c=8.0,
    cooling_w_per_k_per_kw=27.0,
    heating_w_per_k_per_kw=9.0,
    hvac_setback=1.0,
    spikes=(
        EquipmentSpike("mri", MRI_EXAM.power_w, MRI_EXAM.duration_s, rate_per_h=0.8),
        EquipmentSpike("ct", CT_EXAM.power_w, CT_EXAM.duration_s, rate_per_h=2.0),
    ),
    reference_intensity_kwh_m2_yr=kwh_per_ft2_to_kwh_per_m2(28.8),
)  # fmt: skip

#: Registry of facility kinds: name -> parameters. ``Facilities.kind_index`` indexes
#: :data:`FACILITY_KIND_NAMES` (its order).
FACILITY_KINDS: dict[str, FacilityKind] = {
    "clinic": CLINIC,
    "hospital_wing": HOSPITAL_WING,
}
FACILITY_KIND_NAMES: tuple[str, ...] = tuple(FACILITY_KINDS)


def _site_column(value: float | np.ndarray, n: int, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got {arr.shape}")
    return arr.copy()


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class Facilities:
    """Per-site facility parameters, arrays of length n_sites.

    ``kind_index`` indexes :data:`FACILITY_KIND_NAMES`; ``peak_load_w`` is the scheduled
    peak demand (W, before HVAC and imaging); ``utc_offset_h`` is local standard time minus
    UTC (h, e.g. -5 for US Eastern); ``imaging_rate_factor`` multiplies the kind's exam
    rates (0 = no scanners on site, 2 = twice the exams).
    """

    kind_index: np.ndarray
    peak_load_w: np.ndarray
    utc_offset_h: np.ndarray
    imaging_rate_factor: np.ndarray

    def __post_init__(self) -> None:
        kind = np.asarray(self.kind_index)
        if kind.ndim != 1 or not np.issubdtype(kind.dtype, np.integer):
            raise ValueError(f"kind_index must be a 1-D integer array, got {kind!r}")
        if kind.size and not ((kind >= 0).all() and (kind < len(FACILITY_KIND_NAMES)).all()):
            raise ValueError(
                f"kind_index must index FACILITY_KIND_NAMES {FACILITY_KIND_NAMES}, got {kind}"
            )
        n = kind.size
        object.__setattr__(self, "kind_index", kind.astype(np.intp))
        for name in ("peak_load_w", "utc_offset_h", "imaging_rate_factor"):
            object.__setattr__(self, name, _site_column(getattr(self, name), n, name))
        if not (self.peak_load_w > 0).all():
            raise ValueError(f"peak_load_w must be > 0, got {self.peak_load_w}")
        if not (np.abs(self.utc_offset_h) <= 14).all():
            raise ValueError(f"utc_offset_h must lie in [-14, 14], got {self.utc_offset_h}")
        if not (self.imaging_rate_factor >= 0).all():
            raise ValueError(f"imaging_rate_factor must be >= 0, got {self.imaging_rate_factor}")

    @classmethod
    def from_kinds(
        cls,
        kinds: Sequence[str],
        peak_load_w: float | np.ndarray | None = None,
        utc_offset_h: float | np.ndarray = 0.0,
        imaging_rate_factor: float | np.ndarray = 1.0,
    ) -> Facilities:
        """Facilities by kind name; ``peak_load_w`` defaults to each kind's reference peak.
        Raises ValueError naming an unknown kind and the known ones."""
        unknown = sorted({k for k in kinds if k not in FACILITY_KINDS})
        if unknown:
            raise ValueError(
                f"unknown facility kind(s) {unknown}; expected one of {list(FACILITY_KINDS)}"
            )
        index = np.array([FACILITY_KIND_NAMES.index(k) for k in kinds], dtype=np.intp)
        if peak_load_w is None:
            peak_load_w = np.array([FACILITY_KINDS[k].peak_load_w for k in kinds])
        return cls(index, np.asarray(peak_load_w), np.asarray(utc_offset_h),
                   np.asarray(imaging_rate_factor))  # fmt: skip

    @property
    def n_sites(self) -> int:
        return int(self.kind_index.size)

    def kinds(self) -> list[FacilityKind]:
        """The FacilityKind of each site."""
        return [FACILITY_KINDS[FACILITY_KIND_NAMES[k]] for k in self.kind_index]

    def kind_param(self, name: str) -> np.ndarray:
        """A FacilityKind field for every site, float64 [n_sites]."""
        table = np.array([getattr(FACILITY_KINDS[k], name) for k in FACILITY_KIND_NAMES])
        out: np.ndarray = table[self.kind_index].astype(np.float64)
        return out


def _interval_edges_s(times_utc: pd.DatetimeIndex, step_s: float) -> np.ndarray:
    """UTC epoch seconds of each interval's start, [n_steps] (times are midpoints)."""
    if times_utc.tz is None:
        raise ValueError("times_utc must be timezone-aware (UTC)")
    mid_ns = times_utc.tz_convert("UTC").as_unit("ns").asi8
    return mid_ns.astype(np.float64) / 1e9 - step_s / 2.0


def _week_position(local_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(week number, hour of week 0..167 from Monday 00:00, seconds into that hour)."""
    u = local_s + _EPOCH_AFTER_MONDAY_S
    week = np.floor(u / _WEEK_S)
    r = u - week * _WEEK_S
    hour = np.minimum(np.floor(r / _HOUR_S), 167).astype(np.intp)
    return week, hour, r - hour * _HOUR_S


def activity(times_utc: pd.DatetimeIndex, step_s: float, facilities: Facilities) -> np.ndarray:
    """Mean activity a in [0, 1] over each interval, [n_sites, n_steps].

    The kind's hourly weekly activity in local standard time (``utc_offset_h``), integrated
    exactly over each interval (any step, aligned or not). Computed once per distinct
    (kind, utc_offset_h) and gathered to the sites.
    """
    start_s = _interval_edges_s(times_utc, step_s)
    keys = np.stack([facilities.kind_index.astype(np.float64), facilities.utc_offset_h], 1)
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    kind = unique[:, 0].astype(np.intp)[:, None]
    offset_s = unique[:, 1:2] * _HOUR_S
    week = np.array([FACILITY_KINDS[k].week_activity for k in FACILITY_KIND_NAMES])
    cum = np.concatenate([np.zeros((len(week), 1)), np.cumsum(week, axis=1)], axis=1) * _HOUR_S
    w0, _, _ = _week_position(start_s[:1])  # count weeks from the first one (precision)

    def integral(t_utc_s: np.ndarray) -> np.ndarray:
        """Activity-seconds from Monday 00:00 local of week w0 to each t."""
        w, h, frac = _week_position(t_utc_s[None, :] + offset_s)
        within: np.ndarray = cum[kind, h] + week[kind, h] * frac
        return (w - w0) * cum[kind, -1] + within

    mean = (integral(start_s + step_s) - integral(start_s)) / step_s
    out: np.ndarray = np.clip(mean, 0.0, 1.0)[inverse.reshape(-1)]
    return out


def scheduled_load_w(act: np.ndarray, facilities: Facilities) -> np.ndarray:
    """Base plus scheduled load, W, [n_sites, n_steps]: P (base + (1 - base) a)."""
    base = facilities.kind_param("base_fraction")[:, None]
    out: np.ndarray = facilities.peak_load_w[:, None] * (base + (1.0 - base) * act)
    return out


def hvac_load_w(temp_air: np.ndarray, act: np.ndarray, facilities: Facilities) -> np.ndarray:
    """Electric HVAC load, W, [n_sites, n_steps]: degree-hour model scaled by activity.

    ``temp_air`` (degC, interval means) is [n_steps], [1, n_steps] or [n_sites, n_steps].
    """
    n = facilities.n_sites
    temp = np.atleast_2d(np.asarray(temp_air, dtype=np.float64))
    if temp.ndim != 2 or temp.shape[0] not in (1, n) or temp.shape[1] != act.shape[1]:
        raise ValueError(
            f"temp_air must be [{act.shape[1]}], [1, {act.shape[1]}] or "
            f"[{n}, {act.shape[1]}], got shape {np.shape(temp_air)}"
        )
    cool = facilities.kind_param("cooling_w_per_k_per_kw")[:, None] / 1000.0
    heat = facilities.kind_param("heating_w_per_k_per_kw")[:, None] / 1000.0
    t_cool = facilities.kind_param("cooling_balance_c")[:, None]
    t_heat = facilities.kind_param("heating_balance_c")[:, None]
    setback = facilities.kind_param("hvac_setback")[:, None]
    per_w = cool * np.maximum(temp - t_cool, 0.0) + heat * np.maximum(t_heat - temp, 0.0)
    out: np.ndarray = facilities.peak_load_w[:, None] * per_w * (setback + (1 - setback) * act)
    return out


def _regular_edges_s(times_utc: pd.DatetimeIndex, step_s: float) -> np.ndarray:
    """Interval starts (UTC epoch s) of a regular grid; ValueError if midpoints are not
    ``step_s`` apart (exam intervals are binned on the grid)."""
    start_s = _interval_edges_s(times_utc, step_s)
    if start_s.size > 1 and not np.allclose(np.diff(start_s), step_s, rtol=0, atol=1e-6):
        raise ValueError(f"times_utc must be a regular grid of step_s={step_s} s midpoints")
    return start_s


@njit(cache=True, fastmath=False)
def _add_exams_kernel(
    out: np.ndarray,
    site: np.ndarray,
    start_s: np.ndarray,
    stop_s: np.ndarray,
    power_w: np.ndarray,
    step_s: float,
) -> None:
    """Add each exam's mean power to the intervals it overlaps: out[site, k] += power *
    |[start, stop) & [k step, (k+1) step)| / step (times in s from the grid origin)."""
    n = out.shape[1]
    for e in range(site.size):
        a = start_s[e]
        b = stop_s[e]
        k0 = max(int(np.floor(a / step_s)), 0)
        k1 = min(int(np.ceil(b / step_s)), n)
        for k in range(k0, k1):
            overlap = min(b, (k + 1) * step_s) - max(a, k * step_s)
            if overlap > 0.0:
                out[site[e], k] += power_w[e] * overlap / step_s


def equipment_spikes_w(
    times_utc: pd.DatetimeIndex,
    step_s: float,
    facilities: Facilities,
    rngs: Sequence[np.random.Generator],
) -> np.ndarray:
    """Imaging-exam load, W, interval means, [n_sites, n_steps] (regular time grid).

    For each site (its own generator ``rngs[i]``) and each of its kind's
    :class:`EquipmentSpike` in order: a homogeneous Poisson process of rate
    ``rate_per_h * imaging_rate_factor`` over [start - duration, end] (so exams already
    running at the start are included), thinned by the local hourly activity at each
    arrival, each accepted exam adding ``power_w`` for ``duration_s``. Only the draws loop
    over sites in Python; the thinning is vectorised and the exact interval means (overlap
    of each exam with each interval) are added by a compiled kernel, exam by exam.
    """
    n = facilities.n_sites
    if len(rngs) != n:
        raise ValueError(f"need one Generator per site: {n} sites, {len(rngs)} generators")
    start_s = _regular_edges_s(times_utc, step_s)
    n_steps = start_s.size
    out = np.zeros((n, n_steps))
    if n_steps == 0 or n == 0:
        return out
    origin_s = float(start_s[0])
    span_s = n_steps * step_s
    kinds = facilities.kinds()
    spikes = [spike for kind in kinds for spike in kind.spikes]
    counts = np.empty(len(spikes), dtype=np.intp)
    starts: list[np.ndarray] = []
    uniforms: list[np.ndarray] = []
    j = 0
    for i in range(n):  # the draws: each site's own stream, in a fixed order
        rng = rngs[i]
        for spike in kinds[i].spikes:
            rate_per_s = spike.rate_per_h * facilities.imaging_rate_factor[i] / _HOUR_S
            counts[j] = rng.poisson(rate_per_s * (span_s + spike.duration_s))
            starts.append(rng.uniform(-spike.duration_s, span_s, size=counts[j]))
            uniforms.append(rng.random(counts[j]))
            j += 1
    if not spikes:
        return out
    per_site = np.array([len(kind.spikes) for kind in kinds], dtype=np.intp)
    site = np.repeat(np.repeat(np.arange(n), per_site), counts)
    start = np.concatenate(starts)
    power = np.repeat([spike.power_w for spike in spikes], counts)
    duration = np.repeat([spike.duration_s for spike in spikes], counts)
    # thinning by the site's hourly activity at the arrival (local standard time)
    _, hour, _ = _week_position(start + origin_s + facilities.utc_offset_h[site] * _HOUR_S)
    week = np.array([FACILITY_KINDS[k].week_activity for k in FACILITY_KIND_NAMES])
    keep = np.concatenate(uniforms) < week[facilities.kind_index[site], hour]
    _add_exams_kernel(
        out, site[keep], start[keep], start[keep] + duration[keep], power[keep], float(step_s)
    )
    return out


def facility_load_w(
    times_utc: pd.DatetimeIndex,
    step_s: float,
    temp_air: np.ndarray,
    facilities: Facilities,
    rngs: Sequence[np.random.Generator],
) -> np.ndarray:
    """Electricity consumption of each facility, W (interval means), [n_sites, n_steps] >= 0.

    ``times_utc`` are interval midpoints (tz-aware) of length n_steps, ``step_s`` the
    interval length, ``temp_air`` the outdoor air temperature (degC) as [n_steps],
    [1, n_steps] or [n_sites, n_steps], ``rngs`` one numpy Generator per site (only exams
    are random: the same generator gives the same row; another site's generator never
    changes it). Sum of :func:`scheduled_load_w`, :func:`hvac_load_w` and
    :func:`equipment_spikes_w`.
    """
    n = facilities.n_sites
    temp = np.atleast_2d(np.asarray(temp_air, dtype=np.float64))
    if temp.ndim != 2 or temp.shape[0] not in (1, n) or temp.shape[1] != len(times_utc):
        raise ValueError(
            f"temp_air must be [{len(times_utc)}], [1, {len(times_utc)}] or "
            f"[{n}, {len(times_utc)}], got shape {np.shape(temp_air)}"
        )
    # Deterministic parts per W of peak, once per distinct (kind, offset, weather row).
    row = np.arange(n) if temp.shape[0] == n > 1 else np.zeros(n, dtype=np.intp)
    keys = np.stack([facilities.kind_index, facilities.utc_offset_h, row], axis=1)
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    groups = Facilities(
        unique[:, 0].astype(np.intp), np.ones(len(unique)), unique[:, 1], np.zeros(len(unique))
    )
    act = activity(times_utc, step_s, groups)
    per_peak = scheduled_load_w(act, groups)
    per_peak += hvac_load_w(temp[unique[:, 2].astype(np.intp)], act, groups)
    load = facilities.peak_load_w[:, None] * per_peak[inverse.reshape(-1)]
    load += equipment_spikes_w(times_utc, step_s, facilities, rngs)
    return np.maximum(load, 0.0, out=load)


def net_flows_wh(
    consumption_wh: np.ndarray, generation_wh: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Net-metering registers of each interval: (delivered_wh, received_wh).

    net = consumption - generation; ``delivered_wh = max(net, 0)`` is imported from the grid
    (ESPI flowDirection 1, "forward"), ``received_wh = max(-net, 0)`` is exported to it
    (flowDirection 19, "reverse"), so ``delivered - received == consumption - generation``
    and at most one is > 0 per interval. Netting happens at the resolution given: summing
    these to coarser intervals can give both > 0 in one interval, as in real hourly
    net-metering Green Button feeds (PG&E sample: 13 of 47 hours carry both registers).
    """
    consumption = np.asarray(consumption_wh, dtype=np.float64)
    generation = np.asarray(generation_wh, dtype=np.float64)
    if (consumption < 0).any() or (generation < 0).any():
        raise ValueError("consumption_wh and generation_wh must be >= 0")
    net = consumption - generation
    return np.maximum(net, 0.0), np.maximum(-net, 0.0)

"""Facility load: schedules, HVAC, imaging exams, published intensities, net metering."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pvlib
import pytest

from meters.load import (
    CLINIC,
    FACILITY_KINDS,
    HOSPITAL_WING,
    EquipmentSpike,
    Facilities,
    activity,
    equipment_spikes_w,
    facility_load_w,
    hvac_load_w,
    kwh_per_ft2_to_kwh_per_m2,
    net_flows_wh,
)
from meters.weather import PVLIB_DATA_DIR

EASTERN_H = -5.0  # US Eastern standard time
DEAD_BAND_C = 12.0  # between the heating and cooling balance points of both kinds


def midpoints(
    start_local: str, periods: int, step_s: float, utc_offset_h: float
) -> pd.DatetimeIndex:
    """Interval midpoints in UTC of a grid starting at a local standard time."""
    start = pd.Timestamp(start_local, tz="UTC") - pd.Timedelta(hours=utc_offset_h)
    return pd.DatetimeIndex(start + pd.to_timedelta((np.arange(periods) + 0.5) * step_s, unit="s"))


def rngs_for(n: int, seed: int = 7) -> list[np.random.Generator]:
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


def local_slot(times: pd.DatetimeIndex, utc_offset_h: float, day: str, hour: float) -> int:
    """Index of the interval whose midpoint is on local `day` at `hour` (+ half a step)."""
    local = times.tz_convert(None) + pd.Timedelta(hours=utc_offset_h)
    target = pd.Timestamp(day) + pd.Timedelta(hours=hour)
    return int(np.argmin(np.abs((local - target).total_seconds())))


def test_clinic_weekdays_weekends_and_opening_hours() -> None:
    step_s = 900.0
    times = midpoints("2026-06-22", 7 * 96, step_s, EASTERN_H)  # Monday .. Sunday, local
    sites = Facilities.from_kinds(["clinic"], 100_000.0, EASTERN_H, imaging_rate_factor=0.0)
    load = facility_load_w(times, step_s, np.full(times.size, DEAD_BAND_C), sites, rngs_for(1))[0]

    def at(day: str, hour: float) -> float:
        return float(load[local_slot(times, EASTERN_H, day, hour)])

    # DOE Outpatient prototype BLDG_EQUIP_SCH rescaled: base 0.30, weekday 06-18 h full,
    # Saturday 09-15 h 0.714, Sunday 08-17 h 0.286 of the scheduled swing.
    assert at("2026-06-24", 10.125) == pytest.approx(100_000.0)  # Wednesday 10:00 open
    assert at("2026-06-24", 2.125) == pytest.approx(30_000.0)  # night: base load only
    assert at("2026-06-24", 19.125) == pytest.approx(30_000.0 + 70_000.0 * 2 / 7)
    assert at("2026-06-27", 12.125) == pytest.approx(30_000.0 + 70_000.0 * 5 / 7)  # Saturday
    assert at("2026-06-28", 12.125) == pytest.approx(30_000.0 + 70_000.0 * 2 / 7)  # Sunday
    days = load.reshape(7, 96).mean(axis=1)
    assert np.allclose(days[:5], days[0]) and days[0] > days[5] > days[6]
    # opening is at 06:00 local: 11:00 UTC for Eastern standard time
    opening = local_slot(times, EASTERN_H, "2026-06-23", 6.125)
    assert times[opening].hour == 11 and load[opening] == pytest.approx(100_000.0)
    assert load[opening - 1] < load[opening]


def test_local_time_shifts_the_schedule() -> None:
    step_s = 3600.0
    times = midpoints("2026-01-05", 14 * 24, step_s, 0.0)
    sites = Facilities.from_kinds(["clinic", "clinic"], 100_000.0, np.array([-5.0, 1.0]), 0.0)
    load = facility_load_w(times, step_s, np.full((1, times.size), DEAD_BAND_C), sites, rngs_for(2))
    # UTC-5 runs the same local schedule 6 h after UTC+1
    np.testing.assert_allclose(load[0, 6:], load[1, :-6])


def test_activity_is_integrated_exactly_over_unaligned_steps() -> None:
    step_s = 420.0  # 7 minutes: intervals straddle hour boundaries
    times = midpoints("2026-06-22 00:00", 1440, step_s, EASTERN_H)  # exactly one week
    sites = Facilities.from_kinds(["clinic", "hospital_wing"], utc_offset_h=EASTERN_H)
    act = activity(times, step_s, sites)
    for i, kind in enumerate((CLINIC, HOSPITAL_WING)):
        assert act[i].sum() * step_s == pytest.approx(kind.week_activity.sum() * 3600.0)
    # 7-minute interval 257 runs from Tuesday 05:59 to 06:06 local: 1 min at 2/7, 6 min at 1
    assert act[0, 257] == pytest.approx((1 * 2 / 7 + 6 * 1.0) / 7)


def test_hospital_wing_runs_day_and_night_with_a_smaller_swing() -> None:
    step_s = 3600.0
    times = midpoints("2026-06-22", 7 * 24, step_s, EASTERN_H)
    sites = Facilities.from_kinds(["clinic", "hospital_wing"], 100_000.0, EASTERN_H, 0.0)
    load = facility_load_w(times, step_s, np.full(times.size, DEAD_BAND_C), sites, rngs_for(2))
    clinic, wing = load
    assert clinic.min() / clinic.max() == pytest.approx(0.30, abs=0.01)
    assert wing.min() / wing.max() >= 0.6
    night = local_slot(times, EASTERN_H, "2026-06-24", 3.5)
    assert wing[night] > 0.6 * 100_000.0 > clinic[night]


@pytest.mark.parametrize(
    ("kind", "temp_c", "hour", "slope_w_per_k"),
    [
        ("clinic", 25.0, 10.5, 36.0 * 100),  # open, above the 15 degC cooling balance
        ("clinic", 0.0, 10.5, -23.0 * 100),  # open, below the 10 degC heating balance
        ("clinic", 12.0, 10.5, 0.0),  # dead band
        ("clinic", 25.0, 2.5, 0.4 * 36.0 * 100),  # night setback: 40 % of the response
        ("hospital_wing", 25.0, 2.5, 27.0 * 100),  # 24/7 ventilation: no setback
        ("hospital_wing", -5.0, 10.5, -9.0 * 100),
    ],
)
def test_hvac_slope_per_kelvin(kind: str, temp_c: float, hour: float, slope_w_per_k: float) -> None:
    step_s = 3600.0
    times = midpoints("2026-06-24", 24, step_s, EASTERN_H)  # a Wednesday
    sites = Facilities.from_kinds([kind], 100_000.0, EASTERN_H)
    k = local_slot(times, EASTERN_H, "2026-06-24", hour)
    cold = facility_load_w(times, step_s, np.full(24, temp_c), sites, rngs_for(1, seed=3))
    warm = facility_load_w(times, step_s, np.full(24, temp_c + 1.0), sites, rngs_for(1, seed=3))
    assert warm[0, k] - cold[0, k] == pytest.approx(slope_w_per_k, abs=1e-6)


def test_hvac_uses_each_sites_weather_row() -> None:
    times = midpoints("2026-06-24", 4, 3600.0, 0.0)
    sites = Facilities.from_kinds(["clinic", "clinic"], 100_000.0)
    act = activity(times, 3600.0, sites)
    per_site = hvac_load_w(np.array([[30.0] * 4, [12.0] * 4]), act, sites)
    assert (per_site[0] > 0).all() and (per_site[1] == 0).all()
    with pytest.raises(ValueError, match="temp_air must be"):
        hvac_load_w(np.zeros((3, 4)), act, sites)


def test_exam_spikes_match_the_poisson_rate() -> None:
    n_sites, step_s = 400, 300.0
    times = midpoints("2026-06-22", 7 * 288, step_s, EASTERN_H)  # Monday .. Sunday, local
    sites = Facilities.from_kinds(["clinic"] * n_sites, utc_offset_h=EASTERN_H)
    spikes_w = equipment_spikes_w(times, step_s, sites, rngs_for(n_sites, seed=11))
    energy_wh = spikes_w.sum(axis=1) * step_s / 3600.0
    # Clinic activity is 0 around Monday 00:00 and Sunday 24:00 local, so every exam lies
    # inside the week: E[energy] = sum_j rate_j P_j d_j * active hours, and the exam counts
    # are Poisson, Var = sum_j (P_j d_j)^2 rate_j * active hours.
    active_h = CLINIC.week_activity.sum()
    mean_wh = sum(s.mean_energy_wh_per_active_h for s in CLINIC.spikes) * active_h
    var_wh2 = sum(
        (s.power_w * s.duration_s / 3600.0) ** 2 * s.rate_per_h * active_h for s in CLINIC.spikes
    )
    assert mean_wh == pytest.approx(74.6 * (25_000 * 0.5 * 1.0 + 5_000 / 6 * 3.0), rel=0.01)
    total_sd = np.sqrt(n_sites * var_wh2)
    assert abs(energy_wh.sum() - n_sites * mean_wh) < 4.0 * total_sd
    # per-site spread is Poisson's: sample variance within 40 % (SE about 8 % at n = 400)
    assert energy_wh.var(ddof=1) / var_wh2 == pytest.approx(1.0, abs=0.4)
    # no exam runs in the small hours: activity is 0 from 20:00 to 04:00 on weekdays
    small_hours = [local_slot(times, EASTERN_H, "2026-06-24", h) for h in (1.0, 2.0, 3.5)]
    assert (spikes_w[:, small_hours] == 0).all()
    # one MRI exam alone adds 25 kW for 30 minutes: 5-min means are multiples of 5 kW steps
    assert spikes_w.max() >= 25_000.0


def test_exam_interval_means_are_exact_at_any_step() -> None:
    # Arrivals depend on the window and the generator, not on the step: 5-minute means must
    # be the means of the 1-minute means, which are exact overlaps of rectangles.
    sites = Facilities.from_kinds(["clinic"], utc_offset_h=EASTERN_H, imaging_rate_factor=3.0)
    # Wednesday 03:00-22:00 local: no activity before 04:00 or after 20:00, so every exam
    # starts and ends inside the window
    fine_t = midpoints("2026-06-24 03:00", 19 * 60, 60.0, EASTERN_H)
    coarse_t = midpoints("2026-06-24 03:00", 19 * 12, 300.0, EASTERN_H)
    fine = equipment_spikes_w(fine_t, 60.0, sites, rngs_for(1, seed=5))[0]
    coarse = equipment_spikes_w(coarse_t, 300.0, sites, rngs_for(1, seed=5))[0]
    assert fine.max() >= 25_000.0
    np.testing.assert_allclose(coarse, fine.reshape(-1, 5).mean(axis=1), rtol=1e-9, atol=1e-6)
    # whole exams only: an MRI is 25 kW x 0.5 h = 15 CT exams of 5 kW x 10 min (833.3 Wh)
    ct_exams = fine.sum() / 60.0 / (5_000.0 / 6)
    assert ct_exams == pytest.approx(round(ct_exams), abs=1e-6) and ct_exams > 100


def test_load_is_non_negative_for_any_weather() -> None:
    rng = np.random.default_rng(3)
    n_sites, step_s = 50, 900.0
    times = midpoints("2026-01-01", 2 * 96, step_s, 0.0)
    kinds = [("clinic", "hospital_wing")[i % 2] for i in range(n_sites)]
    sites = Facilities.from_kinds(
        kinds, rng.uniform(1e3, 1e6, n_sites), rng.uniform(-12, 14, n_sites), 3.0
    )
    temp = rng.uniform(-45.0, 50.0, (n_sites, times.size))
    load = facility_load_w(times, step_s, temp, sites, rngs_for(n_sites))
    assert load.shape == (n_sites, times.size)
    assert np.isfinite(load).all() and (load >= 0).all()
    base = np.where(np.array(kinds) == "clinic", CLINIC.base_fraction, HOSPITAL_WING.base_fraction)
    assert (load >= base[:, None] * sites.peak_load_w[:, None] - 1e-6).all()  # never below base


def test_each_site_has_its_own_random_stream() -> None:
    step_s = 600.0
    times = midpoints("2026-06-22", 5 * 144, step_s, EASTERN_H)
    sites = Facilities.from_kinds(["clinic", "hospital_wing", "clinic"], utc_offset_h=EASTERN_H)
    temp = np.full(times.size, 20.0)
    seeds = np.random.SeedSequence(2026).spawn(3)
    first = facility_load_w(times, step_s, temp, sites, [np.random.default_rng(s) for s in seeds])
    again = facility_load_w(times, step_s, temp, sites, [np.random.default_rng(s) for s in seeds])
    np.testing.assert_array_equal(first, again)
    other = [np.random.default_rng(s) for s in seeds]
    other[1] = np.random.default_rng(99)
    changed = facility_load_w(times, step_s, temp, sites, other)
    np.testing.assert_array_equal(changed[[0, 2]], first[[0, 2]])
    assert not np.array_equal(changed[1], first[1])
    # a site's row does not depend on which other sites are simulated with it
    alone = facility_load_w(
        times, step_s, temp, Facilities.from_kinds(["clinic"], utc_offset_h=EASTERN_H),
        [np.random.default_rng(seeds[2])],
    )  # fmt: skip
    np.testing.assert_array_equal(alone[0], first[2])


@pytest.fixture(scope="module")
def greensboro_year() -> tuple[pd.DatetimeIndex, np.ndarray]:
    data, meta = pvlib.iotools.read_tmy3(
        str(PVLIB_DATA_DIR / "723170TYA.CSV"), coerce_year=2025, map_variables=True
    )
    assert float(meta["TZ"]) == EASTERN_H
    times = pd.DatetimeIndex(data.index - pd.Timedelta(minutes=30)).tz_convert("UTC")
    return times, data["temp_air"].to_numpy(dtype=float)[None, :]


@pytest.mark.parametrize(
    ("kind", "cbecs_2018_kwh_ft2", "cbecs_2012_quartiles_kwh_ft2", "cooling_share"),
    [
        # CBECS 2018 clinic/other outpatient mean 18.9; CBECS 2012 C14 outpatient 25th and
        # 75th percentiles 6.3 and 19.0; CBECS 2003 E4 outpatient cooling 7.0 / 55.0 kBtu/ft2
        ("clinic", 18.9, (6.3, 19.0), 7.0 / 55.0),
        # CBECS 2018 inpatient mean 28.8; CBECS 2012 C14 inpatient quartiles 20.5 and 43.9;
        # CBECS 2003 E4 inpatient cooling 13.0 / 93.7 kBtu/ft2
        ("hospital_wing", 28.8, (20.5, 43.9), 13.0 / 93.7),
    ],
)
def test_annual_intensity_in_published_range(
    greensboro_year: tuple[pd.DatetimeIndex, np.ndarray],
    kind: str,
    cbecs_2018_kwh_ft2: float,
    cbecs_2012_quartiles_kwh_ft2: tuple[float, float],
    cooling_share: float,
) -> None:
    times, temp = greensboro_year
    sites = Facilities.from_kinds([kind], utc_offset_h=EASTERN_H)
    load = facility_load_w(times, 3600.0, temp, sites, rngs_for(1, seed=1))[0]
    area_m2 = FACILITY_KINDS[kind].floor_area_m2
    intensity = load.sum() / 1000.0 / area_m2  # kWh/m2/yr (hourly means, 8760 h)
    published = kwh_per_ft2_to_kwh_per_m2(cbecs_2018_kwh_ft2)
    assert intensity == pytest.approx(published, rel=0.10)
    low, high = (kwh_per_ft2_to_kwh_per_m2(q) for q in cbecs_2012_quartiles_kwh_ft2)
    assert low < intensity < high * 1.05
    act = activity(times, 3600.0, sites)
    no_cooling = hvac_load_w(np.minimum(temp, 15.0 if kind == "clinic" else 13.0), act, sites)
    cooling = hvac_load_w(temp, act, sites)[0] - no_cooling[0]
    assert cooling.sum() / load.sum() == pytest.approx(cooling_share, abs=0.02)
    # a plausible load factor: mean over peak
    assert 0.3 < load.mean() / load.max() < 0.8


def test_net_flows_conserve_energy_and_never_both_flow() -> None:
    rng = np.random.default_rng(19)
    consumption = rng.uniform(0.0, 500.0, (20, 1440))
    generation = np.where(rng.random((20, 1440)) < 0.5, rng.uniform(0.0, 900.0, (20, 1440)), 0.0)
    delivered, received = net_flows_wh(consumption, generation)
    np.testing.assert_allclose(delivered - received, consumption - generation, atol=1e-9)
    assert (delivered >= 0).all() and (received >= 0).all()
    assert not ((delivered > 0) & (received > 0)).any()
    assert (delivered > 0).any() and (received > 0).any()
    # summed to hours, both registers can be > 0 (as the PG&E net-metering Green Button
    # sample shows), and the balance still holds
    hourly_d = delivered.reshape(20, 24, 60).sum(axis=2)
    hourly_r = received.reshape(20, 24, 60).sum(axis=2)
    net_hourly = (consumption - generation).reshape(20, 24, 60).sum(axis=2)
    np.testing.assert_allclose(hourly_d - hourly_r, net_hourly, atol=1e-6)
    assert ((hourly_d > 0) & (hourly_r > 0)).any()
    # broadcasting: one generation row for all sites
    d1, r1 = net_flows_wh(consumption, generation[:1])
    np.testing.assert_allclose(d1 - r1, consumption - generation[:1])
    with pytest.raises(ValueError, match=">= 0"):
        net_flows_wh(np.array([-1.0]), np.array([0.0]))


def test_bad_inputs_get_clear_errors() -> None:
    times = midpoints("2026-06-22", 4, 3600.0, 0.0)
    with pytest.raises(ValueError, match=r"unknown facility kind.*'dentist'.*clinic"):
        Facilities.from_kinds(["clinic", "dentist"])
    sites = Facilities.from_kinds(["clinic", "clinic"])
    with pytest.raises(ValueError, match="one Generator per site"):
        facility_load_w(times, 3600.0, np.zeros(4), sites, rngs_for(1))
    with pytest.raises(ValueError, match="temp_air must be"):
        facility_load_w(times, 3600.0, np.zeros((2, 5)), sites, rngs_for(2))
    with pytest.raises(ValueError, match="peak_load_w must be > 0"):
        Facilities.from_kinds(["clinic"], peak_load_w=0.0)
    with pytest.raises(ValueError, match="kind_index"):
        Facilities(np.array([5]), np.array([1.0]), np.array([0.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="invalid equipment spike"):
        EquipmentSpike("mri", power_w=25_000.0, duration_s=0.0, rate_per_h=1.0)
    with pytest.raises(ValueError, match="timezone-aware"):
        activity(pd.DatetimeIndex(times.tz_convert(None)), 3600.0, sites)

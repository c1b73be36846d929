"""The fleet grid and its detectors on a synthetic fleet (``fleet_data``: pvlib physics
under one sky and one wind, meter noise): the reference follows the sky for every
orientation, a clean fleet raises nothing, and each injected fault is found, where and
when it happened, with its kind."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.analyze import fleet
from pipeline.analyze.faults import (
    CLOCK_OFFSET,
    CURTAILMENT,
    DEGRADATION,
    ICING,
    INVERTER_TRIP,
    PARTIAL_SHADING,
    SOILING,
    SPIKE,
    STORM_CUTOUT,
    STUCK_METER,
    ZERO_REGISTER,
    DetectorParams,
)
from pipeline.analyze.fleet import FLEET_STEP_S, GEN, IMP, REF_NEIGHBOURS, FleetGrid, FleetView
from pipeline.analyze.pv_detectors import detect_clock_offset, detect_gradual_loss, detect_shading
from pipeline.analyze.register_detectors import (
    detect_frozen,
    detect_net_zero,
    detect_no_output,
    detect_spikes,
    spike_bound_wh,
)
from pipeline.analyze.vee import vee
from pipeline.analyze.wind_detectors import detect_wind_below_neighbours
from pipeline.process.weather import WeatherStation
from pipeline.store.sites import SiteMeta
from pipeline.store.weather import WeatherSeries
from tests.pipeline.analyze.fleet_data import (
    DAY,
    LAT,
    LON,
    STEP_S,
    T0,
    metered,
    pv_energy_wh,
    pv_sites,
    sky_index,
    wind_energy_wh,
    wind_sites,
)

P = DetectorParams()
N_DAYS = 4
STATION = WeatherStation("met-1", LAT, LON, 270.0)


def grid_of(
    sites: list[SiteMeta],
    gen: np.ndarray,
    imp: dict[str, np.ndarray] | None = None,
    wind_m_s: np.ndarray | None = None,
) -> FleetGrid:
    """A grid holding `gen` [S, T] (register values, Wh per 15 min from T0) of `sites`,
    net meters' import, and a station's wind speed per bin when given."""
    grid = FleetGrid(window_days=N_DAYS + 1)
    grid.start(T0, sites)
    t = T0 + STEP_S * np.arange(gen.shape[1], dtype=np.int64)
    for s, values in zip(sites, gen, strict=True):
        v = values.astype(np.float64)
        grid.put(s.site_id, GEN, t, STEP_S, v, v)
    for site_id, values in (imp or {}).items():
        grid.mark_net(site_id)
        v = values.astype(np.float64)
        grid.put(site_id, IMP, t, STEP_S, v, v)
    if wind_m_s is not None:
        nan = np.full(t.size, np.nan)
        obs = WeatherSeries(t, np.full(t.size, STEP_S), nan, np.full(t.size, 5.0), wind_m_s)
        grid.put_weather(STATION, obs)
    return grid


def whole(grid: FleetGrid, days: float = N_DAYS) -> FleetView:
    b0 = grid.bin_of(T0)
    return grid.view(b0, b0 + int(days * DAY))


def kinds(found: list) -> list[tuple[str, str]]:
    return sorted((d.series_id, d.kind) for d in found)


def hours(t_s: int) -> float:
    return (t_s - T0) / 3600.0


@pytest.fixture(scope="module")
def pv() -> tuple[list[SiteMeta], np.ndarray]:
    sites = pv_sites(12)
    return sites, pv_energy_wh(sites, sky_index(N_DAYS, seed=4, overcast_days=(2,)))


def test_the_reference_follows_the_sky_for_every_orientation(
    pv: tuple[list[SiteMeta], np.ndarray],
) -> None:
    """Under clear sky and under overcast, each site's expected energy (its neighbours' sky
    transposed to its plane) is within a few per cent of what it made, whatever its
    orientation: the neighbours are the reference (except where they all clip, at clear
    noons, where the clear sky is)."""
    sites, energy = pv
    view = whole(grid_of(sites, metered(energy, 1)))
    bright = view.expected_wh >= 0.2 * view.nameplate_wh[:, None]
    below_plate = bright & (view.expected_wh < 0.9 * view.nameplate_wh[:, None])
    assert np.mean(view.reference[below_plate] == REF_NEIGHBOURS) > 0.99
    ratio = view.gen[bright] / view.expected_wh[bright]
    assert np.quantile(np.abs(ratio - 1), 0.95) < 0.05
    overcast = bright & (np.arange(view.n_bins) // DAY == 2)[None, :]
    assert np.median(np.abs(view.gen[overcast] / view.expected_wh[overcast] - 1)) < 0.03


def test_a_clean_fleet_raises_nothing(pv: tuple[list[SiteMeta], np.ndarray]) -> None:
    sites, energy = pv
    turbines = wind_sites(6)
    wind = wind_energy_wh(turbines, N_DAYS, seed=2)
    grid = grid_of(sites + turbines, metered(np.vstack((energy, wind)), 2))
    view = whole(grid)
    alerts, events = detect_no_output(view, P)
    for detect in (detect_net_zero, detect_frozen, detect_wind_below_neighbours,
                   detect_gradual_loss, detect_shading):  # fmt: skip
        alerts += detect(view, P)
    assert alerts == [] and events == []
    for end in range(DAY, N_DAYS * DAY, 8):  # the clock detector's trailing windows
        assert detect_clock_offset(grid.view(grid.bin_of(T0), grid.bin_of(T0) + end), P) == []


def test_a_trip_through_the_night_is_one_detection_and_a_short_dropout_none(
    pv: tuple[list[SiteMeta], np.ndarray],
) -> None:
    sites, energy = pv
    gen = metered(energy, 3)
    trip = slice(1 * DAY + 70, 2 * DAY + 52)  # day 1 17:30 UTC to day 2 13:00 UTC
    gen[0, trip] = 0
    gen[1, 1 * DAY + 70] = 0  # one bin of nothing: a cloud can't, but 15 min is no trip
    alerts, _ = detect_no_output(whole(grid_of(sites, gen)), P)
    assert kinds(alerts) == [("pv-00", INVERTER_TRIP)]
    (d,) = alerts
    first_light = 2 * DAY + 40  # the morning after: its bins are evidence again
    assert hours(d.start_s) == 24 + 70 / 4
    assert d.end_s == T0 + STEP_S * trip.stop
    assert hours(d.detected_s) == hours(d.start_s) + 0.5  # two bins of evidence
    assert d.magnitude > 0.5 * float(energy[0, trip].sum())  # energy lost, Wh
    assert first_light < trip.stop


def test_registers_reading_zero_or_stuck_on_net_meters(
    pv: tuple[list[SiteMeta], np.ndarray],
) -> None:
    """Two net meters on clinics: one reads 0 on both registers (a zero register; the load
    never stops), one freezes at night (import stuck), found once the sun rose and the
    import had to change."""
    sites, energy = pv
    rng = np.random.default_rng(5)
    load = np.round(6_000 + 300 * rng.standard_normal((2, energy.shape[1])))  # ~24 kW
    gen = metered(energy, 4)
    export = np.maximum(gen[:2] - load, 0)
    imported = np.maximum(load - gen[:2], 0)
    zero = slice(DAY + 20, DAY + 30)  # 05:00-07:30 UTC, at night
    export[0, zero] = imported[0, zero] = 0
    frozen = slice(2 * DAY + 8, 2 * DAY + 60)  # from 02:00 UTC on
    imported[1, frozen] = imported[1, frozen.start]
    export[1, frozen] = export[1, frozen.start]
    all_gen = gen.copy()
    all_gen[:2] = export
    grid = grid_of(sites, all_gen, {"pv-00": imported[0], "pv-01": imported[1]})
    view = whole(grid)
    assert kinds(detect_net_zero(view, P)) == [("pv-00", ZERO_REGISTER)]
    stuck = [d for d in detect_frozen(view, P) if d.series_id == "pv-01"]
    assert [d.kind for d in stuck] == [STUCK_METER]
    sunrise_bin = int(np.argmax(view.expected_wh[1, 2 * DAY :] > 0.1 * view.nameplate_wh[1]))
    assert hours(stuck[0].detected_s) <= 48 + (sunrise_bin + 4) / 4  # within an hour of it
    assert hours(stuck[0].start_s) == 48 + 2.25


def test_a_frozen_register_is_stuck_but_a_clipped_plateau_is_not() -> None:
    sites = pv_sites(10, seed=7)
    energy = pv_energy_wh(sites, np.full(2 * DAY, 0.99))
    gen = metered(energy, 6)
    frozen = slice(DAY + 56, DAY + 68)  # 14:00-17:00 UTC, the morning ramp
    gen[0, frozen] = gen[0, frozen.start]
    plate = int(sites[1].nameplate_w * STEP_S / 3600)
    gen[1] = np.minimum(gen[1], plate)  # clipped, flat at the nameplate for hours
    gen[1, gen[1] == plate] = plate
    found = detect_frozen(whole(grid_of(sites, gen), 2), P)
    assert kinds(found) == [("pv-00", STUCK_METER)]
    assert found[0].start_s == T0 + STEP_S * (frozen.start + 1)


def test_thirty_equal_minutes_are_stuck_only_where_meter_noise_makes_them_improbable() -> None:
    """One-minute readings on the grid: a 5 kW array's ~18 Wh minutes repeat for half an
    hour by the register's 1-Wh resolution alone (not stuck); a turbine's ~20 kWh minutes
    differ by the meter's noise, so thirty equal ones are a stuck register (found at the
    30th, before the reference moved enough or six hours passed)."""
    small = SiteMeta("pv-small", "pv", 5000.0, LAT, LON, 270.0, 25.0, 180.0,
                     ac_nameplate_w=4200.0)  # fmt: skip
    turbines = wind_sites(4)
    grid = FleetGrid(window_days=3)
    grid.start(T0, [small, *turbines])
    t = T0 + 60 * np.arange(2 * DAY * 15, dtype=np.int64)
    minute = (t - T0) / 60.0
    # the small array: 17, then 18 Wh for 40 minutes each around 17:00 UTC, as measured
    pv_wh = np.round(np.clip(18.0 * np.sin(np.pi * ((minute % 1440) - 660) / 720), 0, None))
    # the turbines: ~20 kWh a minute with 0.1 % meter noise; wt-00's register frozen 1 h
    rng = np.random.default_rng(3)
    wind_wh = np.round(20_000.0 * (1 + 0.001 * rng.standard_normal((4, t.size))))
    stop = DAY * 15 + 15 * 60  # 15:00 UTC on day 1
    wind_wh[0, stop : stop + 60] = wind_wh[0, stop]
    grid.put(small.site_id, GEN, t, 60, pv_wh, pv_wh)
    for s, w in zip(turbines, wind_wh, strict=True):
        grid.put(s.site_id, GEN, t, 60, w, w)
    assert np.count_nonzero(pv_wh[1:] == pv_wh[:-1]) > 30  # it does repeat
    found = detect_frozen(grid.view(grid.bin_of(T0), grid.bin_of(T0) + 2 * DAY), P)
    assert kinds(found) == [("wt-00", STUCK_METER)]
    assert found[0].detected_s - found[0].start_s < 3600


def test_a_turbine_reading_zero_is_a_register_fault_unless_a_storm_blows() -> None:
    turbines = wind_sites(8)
    wind = wind_energy_wh(turbines, 2, seed=8, mean_m_s=11.0)
    gen = metered(wind, 7)
    zero = slice(40, 52)  # 10:00-13:00, a windy morning
    gen[0, zero] = 0
    storm = slice(DAY, DAY + 20)
    gen[1:, storm] = 0  # all but one cut out
    station = np.full(2 * DAY, 6.0)
    station[storm] = 20.0
    alerts, events = detect_no_output(whole(grid_of(turbines, gen, wind_m_s=station), 2), P)
    assert kinds(alerts) == [("wt-00", ZERO_REGISTER)]
    assert hours(alerts[0].start_s) == 10.0
    assert {e.kind for e in events} == {STORM_CUTOUT} and len(events) == 7


def test_curtailment_is_a_flat_cap_and_icing_a_proportional_loss() -> None:
    turbines = wind_sites(8)
    wind = wind_energy_wh(turbines, 2, seed=9, mean_m_s=11.0)
    rated = 2.3e6 * STEP_S / 3600
    window = slice(DAY, DAY + 48)
    wind[0, window] = np.minimum(wind[0, window], 0.4 * rated)
    wind[1, window] *= 0.5
    found = detect_wind_below_neighbours(whole(grid_of(turbines, metered(wind, 8)), 2), P)
    assert kinds(found) == [("wt-00", CURTAILMENT), ("wt-01", ICING)]
    cap = next(d for d in found if d.kind == CURTAILMENT)
    assert cap.magnitude == pytest.approx(0.4, abs=0.005)
    ice = next(d for d in found if d.kind == ICING)
    assert ice.magnitude == pytest.approx(0.5, abs=0.05)
    assert T0 + 86_400 <= ice.start_s < T0 + 86_400 + 4 * 3600


def test_soiling_and_degradation_are_told_apart_by_rate_and_recovery() -> None:
    sites = pv_sites(12)
    energy = pv_energy_wh(sites, np.full(N_DAYS * DAY, 0.99))
    days = (np.arange(energy.shape[1]) + 0.5) / DAY
    soiled = energy.copy()
    soiled[0] *= 1 - 0.06 * np.clip(days - 0.3, 0, None)  # 6 %/day from day 0.3
    soiled[1] *= 1 - 0.015 * np.clip(days - 0.3, 0, None)  # 1.5 %/day (550 %/yr)
    washed = np.clip(days - 0.3, 0, None) * (days < 3.0)
    soiled[2] *= 1 - 0.025 * washed  # 2.5 %/day, then cleaned on day 3
    found = detect_gradual_loss(whole(grid_of(sites, metered(soiled, 9))), P)
    assert kinds(found) == [("pv-00", SOILING), ("pv-01", DEGRADATION), ("pv-02", SOILING)]
    by_site = {d.series_id: d for d in found}
    assert "recovered" in by_site["pv-02"].message
    assert by_site["pv-02"].end_s <= T0 + 3 * 86_400
    assert by_site["pv-00"].magnitude == pytest.approx(0.06 * 3.4, abs=0.05)
    assert by_site["pv-01"].magnitude == pytest.approx(0.015 * 3.4, abs=0.02)


def test_recurring_shading_is_found_on_its_second_day(
    pv: tuple[list[SiteMeta], np.ndarray],
) -> None:
    sites, energy = pv
    shaded = energy.copy()
    of_day = np.arange(energy.shape[1]) % DAY
    shade = (of_day >= 18 * 4) & (of_day < 20 * 4)  # 18:00-20:00 UTC every day
    shaded[3, shade] *= 0.6
    grid = grid_of(sites, metered(shaded, 10))
    assert detect_shading(grid.view(grid.bin_of(T0), grid.bin_of(T0) + DAY), P) == []
    found = detect_shading(whole(grid), P)
    assert kinds(found) == [("pv-03", PARTIAL_SHADING)]
    (d,) = found
    assert d.magnitude == pytest.approx(0.4, abs=0.05)
    assert hours(d.start_s) == 18.0 and hours(d.detected_s) == 24 + 19.0
    assert "18:00 and 20:00 UTC" in d.message


def test_a_meter_clock_an_hour_ahead_is_found(pv: tuple[list[SiteMeta], np.ndarray]) -> None:
    sites, energy = pv
    gen = metered(energy, 11)
    gen[4, DAY + 4 :] = gen[4, DAY:-4]  # labels an hour late from day 1
    grid = grid_of(sites, gen)
    b0 = grid.bin_of(T0)
    found = detect_clock_offset(grid.view(b0, b0 + DAY + 80), P)
    assert kinds(found) == [("pv-04", CLOCK_OFFSET)]
    assert found[0].magnitude == 3600.0


def test_a_spike_is_more_than_the_source_can_give(pv: tuple[list[SiteMeta], np.ndarray]) -> None:
    sites, energy = pv
    gen = metered(energy, 12)
    grid = grid_of(sites, gen)
    view = whole(grid)
    t = T0 + STEP_S * np.arange(gen.shape[1], dtype=np.int64)
    raw = gen[5].copy()
    noon = DAY + 70
    raw[noon] *= 10
    result = vee(t, raw, STEP_S)
    plate = view.nameplate_wh[5]
    bound = spike_bound_wh(grid, "pv-05", t, 1, P)
    (d,) = detect_spikes("pv-05", result, 1.0, bound, plate, P)
    assert d.kind == SPIKE and d.start_s == t[noon] and d.magnitude >= 5
    clean = vee(t, gen[5], STEP_S)
    assert detect_spikes("pv-05", clean, 1.0, bound, plate, P) == []
    assert FLEET_STEP_S == STEP_S


def _neighbours_by_full_sort(
    lat: np.ndarray, lon: np.ndarray, members: np.ndarray, k: int, max_km: float,
    planes: tuple[np.ndarray, np.ndarray] | None,
) -> np.ndarray:  # fmt: skip
    """The definition: every candidate's distance, a stable sort, the first k within max_km."""
    n, cand = lat.shape[0], np.flatnonzero(members)
    out = np.full((n, k), -1, dtype=np.int64)
    for i in range(n):
        d = fleet._distance_km(lat[i], lon[i], lat[cand], lon[cand])
        if planes is not None:
            tilt, azimuth = planes
            d = d + fleet._KM_PER_DEG_AZIMUTH * np.abs(
                (azimuth[i] - azimuth[cand] + 180.0) % 360.0 - 180.0
            ) + fleet._KM_PER_DEG_TILT * np.abs(tilt[i] - tilt[cand])
        d[cand == i] = np.inf
        order = np.argsort(d, kind="stable")[:k]
        out[i, : order.size] = np.where(d[order] <= max_km, cand[order], -1)
    return out


@pytest.mark.parametrize("block_cells", [fleet._NEIGHBOUR_BLOCK_CELLS, 7])
def test_neighbours_are_the_nearest_in_order_ties_by_row(
    block_cells: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fleet, "_NEIGHBOUR_BLOCK_CELLS", block_cells)
    rng = np.random.default_rng(5)
    n = 300
    lat = 36.0 + rng.uniform(-0.5, 0.5, n)
    lon = -80.0 + rng.uniform(-0.5, 0.5, n)
    lat[50:60], lon[50:60] = lat[49], lon[49]  # a farm of equal sites: ties in distance
    tilt = rng.choice([20.0, 30.0], n)
    azimuth = rng.choice([180.0, 170.0, 190.0], n)
    for members in (np.ones(n, dtype=bool), rng.random(n) < 0.3, np.arange(n) < 3):
        for k, max_km, planes in ((8, 50.0, None), (8, 20.0, (tilt, azimuth)), (5, 1e9, None)):
            got = fleet.neighbours(lat, lon, members, k, max_km, planes)
            want = _neighbours_by_full_sort(lat, lon, members, k, max_km, planes)
            assert np.array_equal(got, want)
    # a farm's site has its farm for neighbours, the lower rows first
    assert list(fleet.neighbours(lat, lon, np.ones(n, dtype=bool))[49]) == list(range(50, 58))

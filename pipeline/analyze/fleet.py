"""The fleet as the analysis sees it: every registered PV and wind site's interval energy on
one grid of 15-minute bins over the last days (`FleetGrid`), and what each site is
compared with (`FleetGrid.view`): its neighbours under the same sky and wind, the region's
weather feed, and the clear sky.

**The grid.** After VEE, each generation-side series of a registered PV or wind site is
summed into bins of `FLEET_STEP_S` (`FleetGrid.put`): the generation channel (or a net
meter's export) into ``gen``, a net meter's import into ``imp``, NaN where a reading of the
bin is missing or was estimated (the detectors judge what the meters read). A bin is
*frozen* when every reading in it repeats the reading before it (a register that stopped:
meter noise makes real readings differ). The grid keeps `FLEET_WINDOW_DAYS` of bins and
moves forward a day at a time, so the analysis' work per call does not grow with history
(DESIGN §7). Each PV site's clear sky (`pipeline.analyze.clearsky.clear_sky_bins`) is
computed once per site and bin and kept beside it, and so is each bin's reference once
computed (recomputed only from the earliest bin new data touched).

**References**, per site and bin, each normalised by the site's capacity:

- PV: the sky's *clear-sky index on the horizontal* k (GHI over clear-sky GHI), from the
  site's neighbours (up to `NEIGHBOURS` nearest PV generation meters within
  `NEIGHBOUR_MAX_KM`: each neighbour's energy over its clear-sky energy, inverted through
  its plane's transposition to the k that gives it, and the median taken), else the
  region's met station (observed over clear-sky GHI), else 1 (clear sky). The site's
  expected energy is its plane's irradiance at k
  (`pipeline.analyze.clearsky.poa_at_index_w_m2`: Erbs split, isotropic transposition)
  times its DC nameplate and derate, clipped at its AC nameplate: what it would make
  under its neighbours' sky. A neighbour's k is the one whose irradiance on its plane
  gives the energy it made (the same model, inverted). Working on
  the horizontal index makes sites of different orientations comparable under any sky
  (under overcast an east- and a west-facing array see the same diffuse light, under
  clear skies not). This is the fleet-relative expected yield of PV monitoring (peer
  comparison, e.g. IEA PVPS Task 13, "Review of Failures of Photovoltaic Modules", 2014;
  A. Livera et al., "Advanced failure detection algorithms and performance decision
  classification for grid-connected PV systems", Renewable Energy 164:1289, 2021):
  clouds, temperature and the clear-sky model's errors are common to neighbours and
  cancel;
- wind: the median capacity factor of the site's neighbouring turbines over the same bin
  (the turbines of a region see the same wind), and the station's wind speed.

Only numpy, pvlib (through `pipeline.analyze.clearsky`) and the standard library are
imported here (DESIGN §2).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from pipeline.analyze.clearsky import (
    SiteArrays,
    clear_sky_bins,
    clear_sky_ghi_w_m2,
    poa_at_index_w_m2,
)
from pipeline.analyze.series import SECONDS_PER_DAY
from pipeline.process.weather import WeatherStation
from pipeline.store.sites import SiteMeta
from pipeline.store.weather import WeatherSeries

__all__ = [
    "FLEET_STEP_S",
    "FLEET_WINDOW_DAYS",
    "GEN",
    "IMP",
    "NEIGHBOURS",
    "NEIGHBOUR_MAX_KM",
    "REF_CLEAR_SKY",
    "REF_NEIGHBOURS",
    "REF_STATION",
    "FleetGrid",
    "FleetView",
    "bins_per_day",
    "neighbours",
]

#: Bin of the fleet grid, s: 15 minutes (the meters' upload period and a quarter of the
#: analysis period; 15 one-minute readings per bin average the meter noise down).
FLEET_STEP_S = 900
_PER_DAY = SECONDS_PER_DAY // FLEET_STEP_S
#: Days of bins the grid holds (the gradual-loss and shading detectors' look-back).
FLEET_WINDOW_DAYS = 8
#: Neighbours per site, and how far they may be, km (this project's choice: a region of a
#: few tens of km shares its weather systems; minute-scale cloud edges average out over a
#: bin and over eight sites).
NEIGHBOURS = 8
NEIGHBOUR_MAX_KM = 50.0
#: How much a degree of difference in azimuth and in tilt weighs in a PV neighbour's
#: nearness, km (this project's choice: 20 degrees of azimuth count as 10 km).
_KM_PER_DEG_AZIMUTH = 0.5
_KM_PER_DEG_TILT = 0.5
#: Site-candidate distances computed at a time by `neighbours` (8 B each: 32 MB).
_NEIGHBOUR_BLOCK_CELLS = 4_000_000
#: Fewest neighbours with a value in a bin for their median to be the reference.
MIN_NEIGHBOURS = 3
#: A neighbour's index counts when its clear-sky energy is at least this fraction of its
#: nameplate's (low sun: the model's relative error grows) and its energy below
#: `_CLIP_FRACTION` of it (clipping flattens the index).
_MIN_CS_FRACTION = 0.05
_CLIP_FRACTION = 0.95
#: Clear-sky indices the inversion tabulates (0 to 1.3 by 0.1: cloud enhancement included;
#: the plane's irradiance is smooth in the index, so linear interpolation between them is
#: good to a fraction of a per cent).
_K_GRID = np.linspace(0.0, 1.3, 14)
#: Channels of the grid.
GEN = "gen"
IMP = "imp"
#: Where a bin's PV reference came from.
REF_NEIGHBOURS, REF_STATION, REF_CLEAR_SKY = 0, 1, 2
#: Mean Earth radius, km (IUGG).
_EARTH_RADIUS_KM = 6371.0088

#: Per-site arrays of the grid [S, n_bins] and their fill values.
_SITE_ARRAYS: dict[str, float | bool] = {
    "gen": np.nan,
    "imp": np.nan,
    "gen_frozen": False,
    "imp_frozen": False,
    "clear_sky_wh": np.nan,
    "ghi_clear": np.nan,
    "zenith_deg": np.nan,
    "cos_aoi": np.nan,
    "expected_wh": np.nan,
    "sky_index": np.nan,
    "reference": -1,
}
#: Per-station arrays [stations, n_bins].
_STATION_ARRAYS = ("st_ghi", "st_temp_air", "st_wind_speed", "st_ghi_clear")


def _distance_km(
    lat: np.ndarray, lon: np.ndarray, lat2: np.ndarray, lon2: np.ndarray
) -> np.ndarray:
    """Great-circle distance (haversine), km, broadcasting."""
    p1, p2 = np.radians(lat), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2 - lon)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.asarray(2 * _EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.minimum(a, 1.0))))


def neighbours(
    lat: np.ndarray, lon: np.ndarray, members: np.ndarray, k: int = NEIGHBOURS,
    max_km: float = NEIGHBOUR_MAX_KM, planes: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:  # fmt: skip
    """For each site, the rows of its up to `k` nearest other sites among `members` (bool
    [S]) within `max_km`, nearest first (equal distances: the lower row first); int64
    [S, k], -1 where fewer. With `planes` (tilt and azimuth, deg), nearness counts the
    difference of orientation too (`_KM_PER_DEG_AZIMUTH`, `_KM_PER_DEG_TILT`): the
    transposition is a model, and its errors are smallest between like planes.

    Cost: linear in the candidates per site (a partition, not a sort), in blocks of
    `_NEIGHBOUR_BLOCK_CELLS` site-candidate pairs, so a fleet of 10,000 sites takes a
    few seconds and tens of MB."""
    n = lat.shape[0]
    out = np.full((n, k), -1, dtype=np.int64)
    cand = np.flatnonzero(members)
    if n == 0 or cand.size == 0:
        return out
    rows_per_block = max(1, _NEIGHBOUR_BLOCK_CELLS // cand.size)
    for first in range(0, n, rows_per_block):
        rows = np.arange(first, min(n, first + rows_per_block))
        d = _distance_km(lat[rows, None], lon[rows, None], lat[None, cand], lon[None, cand])
        if planes is not None:
            tilt, azimuth = planes
            d_az = np.abs((azimuth[rows, None] - azimuth[None, cand] + 180.0) % 360.0 - 180.0)
            d_tilt = np.abs(tilt[rows, None] - tilt[None, cand])
            d = d + _KM_PER_DEG_AZIMUTH * d_az + _KM_PER_DEG_TILT * d_tilt
        d[cand[None, :] == rows[:, None]] = np.inf
        order = _nearest_first(d, k)
        near = np.take_along_axis(d, order, axis=1) <= max_km
        out[rows, : order.shape[1]] = np.where(near, cand[order], -1)
    return out


def _nearest_first(d: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``min(k, C)`` smallest values of each row of `d` [R, C],
    smallest first and equal values in column order: the first columns of a stable
    argsort, found by a partition (linear per row) and a sort of the chosen few."""
    kk = min(k, d.shape[1])
    kth = np.partition(d, kk - 1, axis=1)[:, kk - 1 : kk]  # each row's kk-th smallest
    below = d < kth
    ties = d == kth
    need = kk - below.sum(axis=1, keepdims=True)  # equal values still to take, by column
    chosen = below | (ties & (np.cumsum(ties, axis=1) <= need))
    columns = np.nonzero(chosen)[1].reshape(d.shape[0], kk)  # ascending in each row
    by_value = np.argsort(np.take_along_axis(d, columns, axis=1), axis=1, kind="stable")
    return np.take_along_axis(columns, by_value, axis=1)


def _median_of_rows(values: np.ndarray, index: np.ndarray, min_count: int) -> np.ndarray:
    """Median over the rows `index` [S, k] (-1: none) of `values` [R, B], NaN skipped;
    NaN where fewer than `min_count` values. [S, B]."""
    s, _ = index.shape
    b = values.shape[1]
    if s == 0 or b == 0:
        return np.full((s, b), np.nan)
    padded = np.vstack((values, np.full((1, b), np.nan)))
    stack = np.sort(padded[np.where(index < 0, values.shape[0], index)], axis=1)  # NaN last
    count = np.count_nonzero(~np.isnan(stack), axis=1)
    lo = np.maximum(count - 1, 0) // 2
    hi = count // 2
    a = np.take_along_axis(stack, lo[:, None, :], axis=1)[:, 0, :]
    c = np.take_along_axis(stack, hi[:, None, :], axis=1)[:, 0, :]
    return np.where(count >= min_count, (a + c) / 2.0, np.nan)


@dataclass(frozen=True, eq=False)
class FleetView:
    """What the detectors and forecasts read: the grid's bins [b0, b1) with references.

    Arrays are [S, B] (sites x bins) unless noted; energies Wh per bin.

    Attributes:
        sites: the sites, in row order.
        start_s: int64 [B] bin starts, epoch s.
        is_pv, is_wind, net: bool [S]: site kind; a net meter (export and import).
        readings_per_bin: int [S]: readings of the site's meter in a bin.
        nameplate_wh: [S] the nameplate's energy over one bin.
        gen, imp: measured energy (export for a net meter; imp NaN without import).
        gen_frozen, imp_frozen: bool, the bin's readings all repeat the one before.
        clear_sky_wh: PV clear-sky AC energy before clipping (NaN for wind).
        expected_wh: PV: what the site would make under the reference sky (module
            docstring); wind: the neighbours' median capacity factor times the nameplate
            energy; NaN without a reference.
        reference: int8 PV: `REF_NEIGHBOURS`, `REF_STATION` or `REF_CLEAR_SKY`; wind: 0
            with neighbours, -1 without.
        temp_air, wind_speed: the site's station's mean air temperature (degC) and wind
            speed (m/s) in the bin, NaN without.
        station_kc: the station's clear-sky index (observed over clear-sky GHI).
    """

    sites: list[SiteMeta]
    start_s: np.ndarray
    is_pv: np.ndarray
    is_wind: np.ndarray
    net: np.ndarray
    readings_per_bin: np.ndarray
    nameplate_wh: np.ndarray
    gen: np.ndarray
    imp: np.ndarray
    gen_frozen: np.ndarray
    imp_frozen: np.ndarray
    clear_sky_wh: np.ndarray
    expected_wh: np.ndarray
    reference: np.ndarray
    temp_air: np.ndarray
    wind_speed: np.ndarray
    station_kc: np.ndarray

    @property
    def n_bins(self) -> int:
        return int(self.start_s.shape[0])


class FleetGrid:
    """The fleet's bins over the last `FLEET_WINDOW_DAYS` (module docstring).

    Args:
        window_days: days of bins held (default `FLEET_WINDOW_DAYS`).
    """

    def __init__(self, window_days: int = FLEET_WINDOW_DAYS) -> None:
        if window_days < 2:
            raise ValueError(f"window_days must be >= 2, got {window_days!r}")
        self.window_days = window_days
        self.n_bins = (window_days + 1) * _PER_DAY
        self.t0_s: int | None = None  # start of bin 0, epoch s (a UTC midnight)
        self.sites: list[SiteMeta] = []
        self.row: dict[str, int] = {}
        self.net = np.zeros(0, dtype=bool)
        #: readings per bin of each site's meter (1 for 15-minute meters, 15 for 1-minute)
        self.readings_per_bin = np.zeros(0, dtype=np.int64)
        none = (0, self.n_bins)
        #: per site and bin (module docstring; `_SITE_ARRAYS` lists them with their fill)
        self.gen = np.full(none, np.nan)
        self.imp = np.full(none, np.nan)
        self.gen_frozen = np.zeros(none, dtype=bool)
        self.imp_frozen = np.zeros(none, dtype=bool)
        self.clear_sky_wh = np.full(none, np.nan)
        self.ghi_clear = np.full(none, np.nan)
        self.zenith_deg = np.full(none, np.nan)
        self.cos_aoi = np.full(none, np.nan)
        self.expected_wh = np.full(none, np.nan)
        self.sky_index = np.full(none, np.nan)
        self.reference = np.full(none, -1, dtype=np.int8)
        self.day_of_year = np.full(self.n_bins, np.nan)
        self.stations: list[WeatherStation] = []
        self._station_rows: dict[str, int] = {}
        #: per station and bin: observed GHI, air temperature, wind speed, clear-sky GHI
        self.st_ghi = np.full(none, np.nan)
        self.st_temp_air = np.full(none, np.nan)
        self.st_wind_speed = np.full(none, np.nan)
        self.st_ghi_clear = np.full(none, np.nan)
        self.station_of = np.zeros(0, dtype=np.int64)
        self._pv_neighbours = np.zeros((0, NEIGHBOURS), dtype=np.int64)
        self._wind_neighbours = np.zeros((0, NEIGHBOURS), dtype=np.int64)
        self._dirty = 0  # references of bins from here on are to be (re)computed

    # -- sites -------------------------------------------------------------------------
    def set_sites(self, sites: Iterable[SiteMeta]) -> None:
        """Add PV and wind sites (or replace their metadata: their clear sky is
        recomputed); other kinds are ignored."""
        rows = []
        for site in sites:
            if site.kind not in ("pv", "wind"):
                continue
            row = self.row.get(site.site_id)
            if row is None:
                row = self.row[site.site_id] = len(self.sites)
                self.sites.append(site)
            else:
                self.sites[row] = site
            rows.append(row)
        grow = len(self.sites) - self.net.shape[0]
        if grow:
            for name, fill in _SITE_ARRAYS.items():
                a = getattr(self, name)
                setattr(self, name, np.vstack((a, np.full((grow, self.n_bins), fill, a.dtype))))
            self.net = np.append(self.net, np.zeros(grow, dtype=bool))
            self.readings_per_bin = np.append(self.readings_per_bin, np.ones(grow, dtype=np.int64))
        if rows:
            self._fill_clear_sky(np.array(rows))
            self._place_sites()

    def _place_sites(self, wind: bool = True) -> None:
        """Each site's neighbours (PV; wind too unless ``wind`` is False) and station."""
        lat = np.array([s.latitude_deg for s in self.sites])
        lon = np.array([s.longitude_deg for s in self.sites])
        pv = np.array([s.kind == "pv" for s in self.sites], dtype=bool)
        planes = (
            np.array([s.tilt_deg for s in self.sites]),
            np.array([s.azimuth_deg for s in self.sites]),
        )
        self._pv_neighbours = neighbours(lat, lon, pv & ~self.net, planes=planes)
        if wind:
            self._wind_neighbours = neighbours(lat, lon, ~pv)
        self._place_stations(lat, lon)

    def _place_stations(self, lat: np.ndarray, lon: np.ndarray) -> None:
        """Each site's nearest met station within twice `NEIGHBOUR_MAX_KM` (-1: none)."""
        self.station_of = np.full(len(self.sites), -1, dtype=np.int64)
        if self.stations and self.sites:
            slat = np.array([s.latitude_deg for s in self.stations])
            slon = np.array([s.longitude_deg for s in self.stations])
            d = _distance_km(lat[:, None], lon[:, None], slat[None, :], slon[None, :])
            near = d.min(axis=1) <= 2 * NEIGHBOUR_MAX_KM
            self.station_of = np.where(near, d.argmin(axis=1), -1).astype(np.int64)
        self._dirty = 0

    def mark_net(self, site_id: str) -> None:
        """The site's meter has an import channel: a net meter (export is not generation,
        so it is no PV neighbour)."""
        row = self.row.get(site_id)
        if row is not None and not self.net[row]:
            self.net[row] = True
            self._place_sites(wind=False)  # a net meter is no PV neighbour; wind unchanged

    # -- time --------------------------------------------------------------------------
    def bin_start_s(self, index: np.ndarray | int) -> np.ndarray:
        assert self.t0_s is not None
        return np.asarray(self.t0_s + FLEET_STEP_S * np.asarray(index, dtype=np.int64))

    def bin_of(self, t_s: int) -> int:
        """The bin holding epoch second `t_s` (may be outside [0, n_bins))."""
        assert self.t0_s is not None
        return (int(t_s) - self.t0_s) // FLEET_STEP_S

    def start(self, first_s: int, sites: Iterable[SiteMeta]) -> None:
        """Start the grid at the UTC midnight of `first_s` and add `sites`."""
        self.t0_s = int(first_s) // SECONDS_PER_DAY * SECONDS_PER_DAY
        self._fill_day_of_year(0)
        self.set_sites(sites)

    def advance(self, now_s: int, ahead_s: int = 0) -> None:
        """Make room for bins up to `now_s + ahead_s`, dropping whole days from the front;
        the new bins' clear sky is computed once, here."""
        assert self.t0_s is not None
        last = self.bin_of(int(now_s) + int(ahead_s))
        if last < self.n_bins:
            return
        shift = min(-(-(last - self.n_bins + 1) // _PER_DAY) * _PER_DAY, self.n_bins)
        for name, fill in _SITE_ARRAYS.items():
            self._shift(getattr(self, name), shift, fill)
        for name in _STATION_ARRAYS:
            self._shift(getattr(self, name), shift, np.nan)
        self._shift(self.day_of_year[None, :], shift, np.nan)
        self.t0_s += shift * FLEET_STEP_S
        self._fill_day_of_year(self.n_bins - shift)
        self._fill_clear_sky(np.arange(len(self.sites)), self.n_bins - shift)
        for station in self.stations:
            self._fill_station_clear_sky(station)
        self._dirty = max(0, self._dirty - shift)

    @staticmethod
    def _shift(a: np.ndarray, shift: int, fill: float | bool) -> None:
        if shift >= a.shape[1]:
            a[:] = fill
            return
        a[:, :-shift] = a[:, shift:]
        a[:, -shift:] = fill

    def _fill_day_of_year(self, first_bin: int) -> None:
        t = self.bin_start_s(np.arange(first_bin, self.n_bins))
        days = (t // SECONDS_PER_DAY).astype("datetime64[D]")
        self.day_of_year[first_bin:] = (days - days.astype("datetime64[Y]")).astype(np.int64) + 1

    # -- clear sky ---------------------------------------------------------------------
    def _fill_clear_sky(self, rows: np.ndarray, first_bin: int = 0) -> None:
        """Clear sky of the PV `rows` for bins [first_bin, n_bins) (once per site and bin:
        when a site is added, and for the bins a day's advance brings)."""
        if self.t0_s is None:
            return
        pv_rows = [int(r) for r in rows if self.sites[int(r)].kind == "pv"]
        if not pv_rows or first_bin >= self.n_bins:
            return
        bins = clear_sky_bins(
            SiteArrays.of([self.sites[r] for r in pv_rows]),
            self.bin_start_s(np.arange(first_bin, self.n_bins)),
            FLEET_STEP_S,
        )
        self.clear_sky_wh[pv_rows, first_bin:] = bins.energy_wh
        self.ghi_clear[pv_rows, first_bin:] = bins.ghi_w_m2
        self.zenith_deg[pv_rows, first_bin:] = bins.zenith_deg
        self.cos_aoi[pv_rows, first_bin:] = bins.cos_aoi

    def _fill_station_clear_sky(self, station: WeatherStation) -> None:
        k = self._station_rows[station.station_id]
        mid = self.bin_start_s(np.arange(self.n_bins)) + FLEET_STEP_S // 2
        sub = (mid[:, None] + np.array([-300, 0, 300])[None, :]).reshape(-1)
        ghi = clear_sky_ghi_w_m2(
            sub, station.latitude_deg, station.longitude_deg, station.altitude_m
        ).reshape(-1, 3)
        self.st_ghi_clear[k] = ghi.mean(axis=1)

    # -- data --------------------------------------------------------------------------
    def put(
        self,
        site_id: str,
        channel: str,
        start_s: np.ndarray,
        step_s: int,
        evidence_wh: np.ndarray,
        raw: np.ndarray,
        from_s: int | None = None,
    ) -> None:
        """Sum one series' window into the grid's bins (module docstring), the bins from
        the one holding `from_s` on (None: all; the bins before are the window's context,
        there already).

        Args:
            site_id: the registered site (its meter id); others are ignored.
            channel: `GEN` or `IMP`.
            start_s: int64 regular grid of interval starts (VEE's), epoch s.
            step_s: the grid's step; must divide `FLEET_STEP_S` (else ignored).
            evidence_wh: the validated energy with estimates NaN, Wh.
            raw: the raw register values on the same grid (NaN where none).
            from_s: epoch s of the window's first new reading.
        """
        row = self.row.get(site_id)
        n = int(start_s.shape[0])
        if row is None or self.t0_s is None or n == 0 or FLEET_STEP_S % step_s:
            return
        k = FLEET_STEP_S // step_s
        self.readings_per_bin[row] = k
        first = int(start_s[0])
        i0 = (-(first - self.t0_s)) % FLEET_STEP_S // step_s  # first slot on a bin edge
        nb = (n - i0) // k
        if nb <= 0:
            return
        b0 = self.bin_of(first + i0 * step_s)
        lo, hi = max(0, -b0), min(nb, self.n_bins - b0)
        if from_s is not None:
            lo = max(lo, self.bin_of(from_s) - b0)
        if lo >= hi:
            return
        sl = slice(i0, i0 + nb * k)
        sums = np.asarray(evidence_wh[sl], dtype=np.float64).reshape(nb, k).sum(axis=1)
        same = np.zeros(n, dtype=bool)
        same[1:] = raw[1:] == raw[:-1]
        frozen = np.asarray(same[sl].reshape(nb, k).all(axis=1))
        if i0 == 0:  # no reading before the first bin: its frozen state is unknown
            frozen[0] = False
        target, flags = (
            (self.gen, self.gen_frozen) if channel == GEN else (self.imp, self.imp_frozen)
        )
        target[row, b0 + lo : b0 + hi] = sums[lo:hi]
        flags[row, b0 + lo : b0 + hi] = frozen[lo:hi]
        self._dirty = min(self._dirty, b0 + lo)

    def put_weather(self, station: WeatherStation, obs: WeatherSeries) -> None:
        """Bin means of a station's observations: NaN where fewer than half the bin's
        readings were recorded."""
        if self.t0_s is None:
            return
        k = self._station_rows.get(station.station_id)
        if k is None:
            k = self._station_rows[station.station_id] = len(self.stations)
            self.stations.append(station)
            for name in _STATION_ARRAYS:
                a = getattr(self, name)
                setattr(self, name, np.vstack((a, np.full((1, self.n_bins), np.nan))))
            self._fill_station_clear_sky(station)
            self._place_stations(
                np.array([s.latitude_deg for s in self.sites]),
                np.array([s.longitude_deg for s in self.sites]),
            )
        if obs.n == 0:
            return
        b = (obs.start_s - self.t0_s) // FLEET_STEP_S
        ok = (b >= 0) & (b < self.n_bins)
        b = b[ok]
        if b.size == 0:
            return
        per_bin = FLEET_STEP_S / max(1, int(obs.duration_s[0]))
        touched = np.unique(b)
        for name in ("ghi", "temp_air", "wind_speed"):
            v = getattr(obs, name)[ok]
            good = np.isfinite(v)
            total = np.bincount(b[good], weights=v[good], minlength=self.n_bins)[touched]
            count = np.bincount(b[good], minlength=self.n_bins)[touched]
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = np.where(count >= 0.5 * per_bin, total / count, np.nan)
            getattr(self, f"st_{name}")[k, touched] = mean
        self._dirty = min(self._dirty, int(touched[0]))

    # -- references --------------------------------------------------------------------
    def _per_site(self, a: np.ndarray, sl: slice) -> np.ndarray:
        """A per-station array's bins `sl` for each site (its station's; NaN without)."""
        out = np.full((len(self.sites), sl.stop - sl.start), np.nan)
        has = self.station_of >= 0
        if a.shape[0] and has.any():
            out[has] = a[self.station_of[has], sl]
        return out

    def _poa(self, rows: np.ndarray, cols: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Plane-of-array irradiance of the PV cells (`rows`, `cols`: bin indices) when the
        clear-sky index is `k` ([n], or [n, K] for a table), W/m2."""
        tilt = np.array([s.tilt_deg for s in self.sites])[rows]
        albedo = np.array([s.albedo for s in self.sites])[rows]
        parts = [
            self.ghi_clear[rows, cols], self.zenith_deg[rows, cols], self.cos_aoi[rows, cols],
            self.day_of_year[cols], tilt, albedo,
        ]  # fmt: skip
        if k.ndim == 2:
            parts = [p[:, None] for p in parts]
        return poa_at_index_w_m2(k, *parts)

    def _refresh(self, upto: int) -> None:
        """Compute the references of bins [dirty, upto) (module docstring)."""
        lo, hi = self._dirty, min(upto, self.n_bins)
        if lo >= hi or not self.sites:
            self._dirty = max(self._dirty, hi)
            return
        sl = slice(lo, hi)
        is_pv = np.array([x.kind == "pv" for x in self.sites], dtype=bool)
        enp = np.array([x.nameplate_w for x in self.sites]) * FLEET_STEP_S / 3600.0
        gen, cs = self.gen[:, sl], self.clear_sky_wh[:, sl]
        k_site = np.full(gen.shape, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            usable = (
                (is_pv & ~self.net)[:, None] & np.isfinite(gen)
                & (cs >= _MIN_CS_FRACTION * enp[:, None]) & (gen < _CLIP_FRACTION * enp[:, None])
            )  # fmt: skip
            r, c = np.nonzero(usable)
            if r.size:
                curve = self._poa(r, c + lo, np.broadcast_to(_K_GRID, (r.size, _K_GRID.size)))
                k_site[r, c] = _invert(curve, gen[r, c] / self._wh_per_w_m2[r])
            self.sky_index[:, sl] = k_site
            kc_nb = _median_of_rows(k_site, self._pv_neighbours, MIN_NEIGHBOURS)
            station_kc = self._per_site(
                np.where(self.st_ghi_clear > 10.0, self.st_ghi / self.st_ghi_clear, np.nan), sl
            )
        reference = np.where(
            np.isfinite(kc_nb), REF_NEIGHBOURS,
            np.where(np.isfinite(station_kc), REF_STATION, REF_CLEAR_SKY),
        ).astype(np.int8)  # fmt: skip
        kc_ref = np.where(
            np.isfinite(kc_nb), kc_nb, np.where(np.isfinite(station_kc), station_kc, 1.0)
        )
        expected = np.full(gen.shape, np.nan)
        pv = np.flatnonzero(is_pv)
        expected[pv] = self.energy_at_index(pv, lo, hi, kc_ref[pv])
        with np.errstate(invalid="ignore", divide="ignore"):
            cf = np.where(~is_pv[:, None], gen / enp[:, None], np.nan)
        wind = np.flatnonzero(~is_pv)
        if wind.size:
            cf_nb = _median_of_rows(cf, self._wind_neighbours, MIN_NEIGHBOURS)
            expected[wind] = cf_nb[wind] * enp[wind, None]
            reference[wind] = np.where(np.isfinite(cf_nb[wind]), 0, -1)
        self.expected_wh[:, sl] = expected
        self.reference[:, sl] = reference
        self._dirty = hi

    def energy_at_index(self, rows: np.ndarray, b0: int, b1: int, k: np.ndarray) -> np.ndarray:
        """Energy of PV `rows` over bins [b0, b1) when the sky's clear-sky index on the
        horizontal is `k` [R, b1 - b0]: the plane's irradiance at `k` times DC nameplate /
        1000 W/m2 times derate (`pipeline.store.sites.SiteMeta.derate`), clipped at the
        AC nameplate (module docstring), Wh."""
        out = np.zeros(k.shape)
        r, c = np.nonzero(self.clear_sky_wh[rows, b0:b1] > 0)
        if r.size:
            with np.errstate(invalid="ignore", divide="ignore"):
                poa = self._poa(rows[r], c + b0, k[r, c])
            out[r, c] = self._wh_per_w_m2[rows[r]] * np.nan_to_num(poa)
        plate = np.array([self.sites[x].nameplate_w for x in rows]) * FLEET_STEP_S / 3600.0
        return np.minimum(out, plate[:, None])

    @property
    def _wh_per_w_m2(self) -> np.ndarray:
        """Energy per bin per W/m2 on each site's plane (DC nameplate / 1000 x derate x bin),
        Wh; 0 for wind."""
        return np.array(
            [s.capacity_w / 1000.0 * s.derate * FLEET_STEP_S / 3600.0 if s.kind == "pv" else 0.0
             for s in self.sites]
        )  # fmt: skip

    def view(self, b0: int, b1: int) -> FleetView:
        """The bins [b0, b1) with their references (see `FleetView`)."""
        b0, b1 = max(0, b0), min(self.n_bins, b1)
        self._refresh(b1)
        sl = slice(b0, b1)
        is_pv = np.array([x.kind == "pv" for x in self.sites], dtype=bool)
        with np.errstate(invalid="ignore", divide="ignore"):
            station_kc = self._per_site(
                np.where(self.st_ghi_clear > 10.0, self.st_ghi / self.st_ghi_clear, np.nan), sl
            )
        return FleetView(
            sites=list(self.sites),
            start_s=self.bin_start_s(np.arange(b0, b1)),
            is_pv=is_pv,
            is_wind=~is_pv,
            net=self.net.copy(),
            readings_per_bin=self.readings_per_bin.copy(),
            nameplate_wh=np.array([x.nameplate_w for x in self.sites]) * FLEET_STEP_S / 3600.0,
            gen=self.gen[:, sl],
            imp=self.imp[:, sl],
            gen_frozen=self.gen_frozen[:, sl],
            imp_frozen=self.imp_frozen[:, sl],
            clear_sky_wh=self.clear_sky_wh[:, sl],
            expected_wh=self.expected_wh[:, sl],
            reference=self.reference[:, sl],
            temp_air=self._per_site(self.st_temp_air, sl),
            wind_speed=self._per_site(self.st_wind_speed, sl),
            station_kc=station_kc,
        )


def _invert(curve: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """The clear-sky index at which a tabulated increasing `curve` [..., K] (over
    `_K_GRID`) reaches `ratio` [...], by linear interpolation (clamped to the grid; NaN
    where `ratio` is)."""
    above = np.count_nonzero(curve < ratio[..., None], axis=-1)
    i = np.clip(above, 1, _K_GRID.size - 1)
    lo = np.take_along_axis(curve, (i - 1)[..., None], axis=-1)[..., 0]
    hi = np.take_along_axis(curve, i[..., None], axis=-1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.clip((ratio - lo) / (hi - lo), 0.0, 1.0)
    k = _K_GRID[i - 1] + frac * (_K_GRID[1] - _K_GRID[0])
    return np.where(np.isfinite(ratio), k, np.nan)


def bins_per_day() -> int:
    """Bins of `FLEET_STEP_S` in a day."""
    return _PER_DAY

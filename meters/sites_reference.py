"""Reference sites with published measurements, configured for the twin's source models.

Each reference site pairs a measured series in ``../shared/data/measured`` (see its
``SOURCE.txt``) with the parameters that make the twin simulate the same kind of site: a
:class:`~meters.pv.PvSites` system or a windpowerlib turbine, and a
:class:`~meters.synthetic_weather.SyntheticClimate` at the site's location.
``tests/meters/test_measured.py`` compares the simulated and measured distributions.

- :data:`SERF_EAST`: the fixed-tilt SERF East PV system on NREL's campus, Golden, Colorado
  (PVDAQ system 50; 15-min AC power 2016-07-01..2016-10-13 shipped with pvanalytics).
- :data:`KELMARSH_2`: turbine 2 of the Kelmarsh wind farm, Northamptonshire, UK (Senvion
  MM92, 2050 kW; hourly capacity factor of 2019 from Cubico's open SCADA data).

Every value says where it comes from; values that are assumptions or inferences say so.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from meters.pv import PvSites
from meters.synthetic_weather import SyntheticClimate
from meters.wind import DEFAULT_ROUGHNESS_LENGTH_M, turbine_nominal_power_w


@dataclass(frozen=True)
class PvReferenceSite:
    """A measured PV system: location, array and the climate fields to replace."""

    name: str
    latitude_deg: float
    longitude_deg: float
    altitude_m: float
    #: Local standard time - UTC, h.
    utc_offset_h: float
    #: DC nameplate (PVWatts pdc0), W.
    capacity_dc_w: float
    tilt_deg: float
    #: Degrees east of north (180 = south).
    azimuth_deg: float
    dc_ac_ratio: float
    #: Per month (Jan..Dec), mean air temperature and diurnal amplitude, degC.
    temp_air_monthly_mean_c: tuple[float, ...]
    temp_air_monthly_amplitude_c: tuple[float, ...]
    source: str

    def pv_sites(self) -> PvSites:
        """One-site :class:`PvSites` of this system (PVWatts v5 defaults otherwise)."""
        return PvSites(
            capacity_dc_w=np.array([self.capacity_dc_w]),
            tilt_deg=np.array([self.tilt_deg]),
            azimuth_deg=np.array([self.azimuth_deg]),
            dc_ac_ratio=np.array([self.dc_ac_ratio]),
        )

    def climate(self, base: SyntheticClimate | None = None) -> SyntheticClimate:
        """``base`` (default :class:`SyntheticClimate`, i.e. Greensboro NC's TMY3 statistics)
        moved to this site: location, time zone and air temperature replaced; cloud, wind and
        temperature-anomaly statistics kept from ``base``."""
        base = base if base is not None else SyntheticClimate()
        return dataclasses.replace(
            base,
            latitude_deg=self.latitude_deg,
            longitude_deg=self.longitude_deg,
            altitude_m=self.altitude_m,
            utc_offset_h=self.utc_offset_h,
            temp_air_monthly_mean_c=self.temp_air_monthly_mean_c,
            temp_air_monthly_amplitude_c=self.temp_air_monthly_amplitude_c,
            name=f"{base.name}@{self.name}",
        )


@dataclass(frozen=True)
class WindReferenceSite:
    """A measured wind turbine: location, turbine and the wind climate at 10 m."""

    name: str
    latitude_deg: float
    longitude_deg: float
    altitude_m: float
    utc_offset_h: float
    #: windpowerlib oedb turbine type.
    turbine_type: str
    hub_height_m: float
    roughness_length_m: float
    #: Mean wind speed at 10 m, m/s, and Weibull shape of the 10-m speeds.
    wind_mean_m_s: float
    wind_weibull_k: float
    #: Lag-1 h autocorrelation of wind speed without its diurnal cycle.
    wind_lag1: float
    #: Relative amplitude of the diurnal cycle and hour of its maximum (local standard time).
    wind_diurnal_amplitude: float
    wind_peak_hour: float
    temp_air_monthly_mean_c: tuple[float, ...]
    temp_air_monthly_amplitude_c: tuple[float, ...]
    source: str

    @property
    def wind_weibull_c_m_s(self) -> float:
        """Weibull scale with mean ``wind_mean_m_s``: ``c = mean / Gamma(1 + 1/k)``."""
        return self.wind_mean_m_s / math.gamma(1.0 + 1.0 / self.wind_weibull_k)

    @property
    def nominal_power_w(self) -> float:
        """Rated power of the turbine type (windpowerlib oedb), W."""
        return turbine_nominal_power_w(self.turbine_type)

    def climate(self, base: SyntheticClimate | None = None) -> SyntheticClimate:
        """``base`` (default :class:`SyntheticClimate`) with this site's location, time zone,
        air temperature and 10-m wind statistics (cloud statistics kept from ``base``)."""
        return dataclasses.replace(
            base if base is not None else SyntheticClimate(),
            latitude_deg=self.latitude_deg,
            longitude_deg=self.longitude_deg,
            altitude_m=self.altitude_m,
            utc_offset_h=self.utc_offset_h,
            temp_air_monthly_mean_c=self.temp_air_monthly_mean_c,
            temp_air_monthly_amplitude_c=self.temp_air_monthly_amplitude_c,
            wind_weibull_k=self.wind_weibull_k,
            wind_weibull_c_m_s=self.wind_weibull_c_m_s,
            wind_lag1=self.wind_lag1,
            wind_diurnal_amplitude=self.wind_diurnal_amplitude,
            wind_peak_hour=self.wind_peak_hour,
            wind_height_m=10.0,
            name=f"synthetic@{self.name}",
        )


#: NREL SERF East, Golden CO (PVDAQ system 50).
#: - Location 39.742 N, -105.1727 E and the array's tilt 45 deg / azimuth 158 deg: pvanalytics
#:   (pvlib/pvanalytics, docs/examples "Infer Array Tilt/Azimuth - PVWatts Method": "ground
#:   truth metadata", and the PV Fleets power QA example: "ground truth azimuth and tilt ...
#:   158 and 45 degrees"). Altitude 1829 m: Golden CO (NREL campus); UTC-7: the file's
#:   timestamps carry a fixed -07:00 offset (MST, no daylight saving) all summer.
#: - DC capacity 6.0 kW: INFERRED, not published with the data. The median ratio of the
#:   measured 15-min peak to the twin's clear-sky peak per W on the ten smoothest days gives
#:   6.0 kW (tests/meters/test_measured.py re-derives it); pvanalytics' own tests use
#:   ``capacity = 6`` for this site (tests/quality/test_outliers.py, ``serf_east_metadata``).
#: - dc_ac_ratio 1.0 (AC nameplate 6 kW): assumption. The data show no clipping: the highest
#:   15-min value, 5.43 kW under broken clouds, exceeds the clear-day plateau (~5.0 kW).
#: - Other PVWatts parameters: the PVWatts v5 defaults of :class:`PvSites` (14.08 % losses,
#:   -0.35 %/degC, open-rack SAPM temperature model).
#: - Air temperature: approximate (+-1 degC) monthly means for the Denver area after NOAA's
#:   1991-2020 normals; amplitude ~0.45 x the mean daily range of a semi-arid high-plains
#:   station (first harmonic of the daily cycle). Energy moves only ~0.35 %/degC.
#: - Clouds: :meth:`PvReferenceSite.climate` keeps the default cloud statistics, those of
#:   Greensboro NC's TMY3 (humid subtropical): more overcast days than semi-arid Golden, so
#:   the simulated lower quartile of daily energy comes out ~12 % low, while the clear-day
#:   end (clear-sky model at the site's altitude) matches.
SERF_EAST = PvReferenceSite(
    name="serf-east",
    latitude_deg=39.742,
    longitude_deg=-105.1727,
    altitude_m=1829.0,
    utc_offset_h=-7.0,
    capacity_dc_w=6000.0,
    tilt_deg=45.0,
    azimuth_deg=158.0,
    dc_ac_ratio=1.0,
    temp_air_monthly_mean_c=(-0.5, 0.0, 4.5, 8.5, 13.5, 19.5, 23.5, 22.5, 17.5, 10.5, 4.0, -0.5),
    temp_air_monthly_amplitude_c=(6.5, 6.5, 6.5, 6.5, 6.5, 7.0, 7.0, 7.0, 7.5, 7.5, 6.5, 6.5),
    source="pvanalytics serf_east_15min_ac_power.csv (PVDAQ system 50, DOE OEDI 4568)",
)

#: Kelmarsh wind farm, turbine 2 (Northamptonshire, UK).
#: - Location 52.4006 N, -0.9471 E, 6 x 2050 kW Senvion MM92 and hub height 78.5 m for
#:   turbine 2 (78.5 m for 1, 2, 4, 5; 68.5 m for 3, 6): the farm's static file
#:   Kelmarsh_WT_static.csv (Zenodo record 5841834, Plumley 2022), as quoted by public users
#:   of that record (not read here). Altitude ~150 m: approximate (density ~1 % per 80 m).
#: - Turbine "MM92/2050" of windpowerlib's oedb library (nominal 2050 kW, curve to 2055 kW).
#: - Roughness length 0.15 m: :data:`meters.wind.DEFAULT_ROUGHNESS_LENGTH_M`, arable
#:   farmland with hedges, as around Kelmarsh.
#: - Wind at 10 m, NOT fitted to the measured turbine output:
#:   * Weibull k = 2.0: the Rayleigh value HOMER uses by default (HOMER Pro manual,
#:     "Generating Synthetic Wind Data") and the top of the 1.4-2.1 range of 40 UK stations
#:     (Earl et al. 2013, J. Climate 26(4): hourly 10-m winds 1980-2010).
#:   * Mean 4.5 m/s (8.7 kn): ASSUMPTION for open rural inland England at 10 m, above the
#:     8.1 kn (4.2 m/s) average of UK city stations in Met Office 1981-2010 data (as quoted
#:     in the press) and below exposed coastal and upland sites. The capacity factor moves
#:     by ~0.07 per 0.5 m/s (the test prints this sensitivity).
#:   * Lag-1 h autocorrelation 0.90: judgement between HOMER's generic default 0.85 and the
#:     0.96 of its "strong autocorrelation" example, toward the high side because short-lag
#:     autocorrelation is higher over uniform terrain (Brett & Tuller 1991, as reviewed in
#:     J. Appl. Meteorol. 43(8), 1213, 2004).
#:   * Diurnal amplitude 0.25 peaking at 15 h: HOMER's defaults (a 10-m value). The synthetic
#:     weather lifts it unchanged to hub height through the log profile, where the measured
#:     cycle is much weaker (capacity factor: ~6 % measured, ~45 % simulated; printed by the
#:     test, not asserted).
#: - Air temperature: approximate (+-1 degC) Central England Temperature monthly means
#:   1991-2020 (Met Office HadCET), amplitude 2-5 degC; it only enters air density.
KELMARSH_2 = WindReferenceSite(
    name="kelmarsh-2",
    latitude_deg=52.4006,
    longitude_deg=-0.9471,
    altitude_m=150.0,
    utc_offset_h=0.0,
    turbine_type="MM92/2050",
    hub_height_m=78.5,
    roughness_length_m=DEFAULT_ROUGHNESS_LENGTH_M,
    wind_mean_m_s=4.5,
    wind_weibull_k=2.0,
    wind_lag1=0.90,
    wind_diurnal_amplitude=0.25,
    wind_peak_hour=15.0,
    temp_air_monthly_mean_c=(4.8, 5.0, 6.8, 8.9, 12.1, 15.0, 17.1, 16.9, 14.4, 11.0, 7.4, 5.0),
    temp_air_monthly_amplitude_c=(2.5, 3.0, 4.0, 5.0, 5.0, 5.0, 5.0, 5.0, 4.5, 3.5, 2.5, 2.0),
    source="DrafProject/draf 2019_wind_kelmarsh2.csv (Cubico Kelmarsh SCADA 2019, CC-BY-4.0)",
)

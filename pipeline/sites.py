"""What the site analytics share: the site metadata (`SiteMeta`), an interval-energy
series on a regular grid (`Series`), a detection record (`Detection`), the detectors'
thresholds (`DetectorParams`), the detection kinds and which of them run for which kind of
site (`SITE_DETECTORS`).

`pipeline.clearsky`, `pipeline.detectors`, `pipeline.forecast` and `pipeline.analytics`
build on these; `pipeline.analytics` re-exports every public name here.

Only numpy, numba and the standard library are imported here (DESIGN §2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.vee import VeeResult

__all__ = [
    "ANOMALY",
    "CURTAILMENT",
    "INVERTER_TRIP",
    "PVWATTS_DERATE",
    "SITE_DETECTORS",
    "SOILING",
    "STUCK_METER",
    "Detection",
    "DetectorParams",
    "Series",
    "SiteMeta",
]

SOILING = "soiling"
INVERTER_TRIP = "inverter_trip"
STUCK_METER = "stuck_meter"
CURTAILMENT = "curtailment"
ANOMALY = "anomaly"

_SECONDS_PER_DAY = 86_400
#: PVWatts v5 defaults (Dobos 2014, NREL/TP-6A20-62641): 14.08 % system losses and a
#: nominal inverter efficiency of 96 %: AC = DC nameplate x POA/1000 x 0.8592 x 0.96.
PVWATTS_DERATE = (1.0 - 0.1408) * 0.96

#: Which detectors run for which kind of site.
SITE_DETECTORS: dict[str, tuple[str, ...]] = {
    "pv": (SOILING, INVERTER_TRIP, STUCK_METER),
    "wind": (CURTAILMENT, STUCK_METER),
    "load": (ANOMALY, STUCK_METER),
}


# ======================================================================================
# Site metadata and series
# ======================================================================================


@dataclass(frozen=True)
class SiteMeta:
    """What the pipeline knows of one site (from its commissioning record).

    Attributes:
        site_id: the id used in detections and messages (usually the meter id).
        kind: ``"pv"``, ``"wind"`` or ``"load"``: picks the detectors (`SITE_DETECTORS`).
        capacity_w: PV: DC nameplate at STC (PVWatts ``pdc0``), W; wind: rated power, W;
            load: the service's peak demand, W.
        latitude_deg, longitude_deg: site location, degrees north and east.
        altitude_m: site altitude above sea level, m.
        tilt_deg: PV surface tilt from horizontal, degrees.
        azimuth_deg: PV surface azimuth, degrees east of north (180 = south facing).
        ac_nameplate_w: PV inverter AC limit, W (None: no clipping, i.e. ``capacity_w``).
        linke_turbidity: Linke turbidity of the Ineichen-Perez clear sky (dimensionless;
            default 3.0, a typical rural mid-latitude value, Remund et al. 2003).
        albedo: ground reflectance (default 0.25, pvlib's default).
        derate: AC output per unit of DC nameplate x POA/1000 (default `PVWATTS_DERATE`).
    """

    site_id: str
    kind: str
    capacity_w: float
    latitude_deg: float = 0.0
    longitude_deg: float = 0.0
    altitude_m: float = 0.0
    tilt_deg: float = 0.0
    azimuth_deg: float = 180.0
    ac_nameplate_w: float | None = None
    linke_turbidity: float = 3.0
    albedo: float = 0.25
    derate: float = PVWATTS_DERATE

    def __post_init__(self) -> None:
        if self.kind not in SITE_DETECTORS:
            raise ValueError(f"kind must be one of {sorted(SITE_DETECTORS)}, got {self.kind!r}")
        if not self.capacity_w > 0:
            raise ValueError(f"capacity_w must be > 0, got {self.capacity_w!r}")
        if not -90 <= self.latitude_deg <= 90 or not -180 <= self.longitude_deg <= 360:
            raise ValueError("latitude_deg must be in [-90, 90] and longitude_deg in [-180, 360]")
        if self.ac_nameplate_w is not None and not self.ac_nameplate_w > 0:
            raise ValueError(f"ac_nameplate_w must be > 0, got {self.ac_nameplate_w!r}")

    @property
    def nameplate_w(self) -> float:
        """The output ceiling, W: the inverter AC limit for PV, the rated power otherwise."""
        if self.kind == "pv" and self.ac_nameplate_w is not None:
            return float(self.ac_nameplate_w)
        return float(self.capacity_w)


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class Series:
    """One interval-energy series on a regular grid.

    Attributes:
        series_id: the meter (or site) id.
        start_s: int64 epoch seconds of each interval start, strictly increasing by
            `interval_length_s`.
        energy_wh: float64 energy of each interval, Wh; NaN where unknown.
        interval_length_s: the grid step, s.
    """

    series_id: str
    start_s: np.ndarray
    energy_wh: np.ndarray
    interval_length_s: int

    def __post_init__(self) -> None:
        s = np.asarray(self.start_s)
        e = np.asarray(self.energy_wh)
        if s.ndim != 1 or s.shape != e.shape:
            raise ValueError(
                f"start_s and energy_wh must be 1-D of equal length, got {s.shape}, {e.shape}"
            )
        if not self.interval_length_s > 0:
            raise ValueError(f"interval_length_s must be > 0, got {self.interval_length_s!r}")
        if s.size > 1 and np.any(np.diff(s) != self.interval_length_s):
            raise ValueError("start_s must be a regular grid with step interval_length_s")

    @classmethod
    def from_vee(
        cls, series_id: str, result: VeeResult, power_of_ten_multiplier: int = 0
    ) -> Series:
        """The validated series of a VEE result, converted from register counts to Wh
        (``value * 10**power_of_ten_multiplier``, ESPI uom 72)."""
        scale = 10.0 ** int(power_of_ten_multiplier)
        return cls(series_id, result.start_s, result.value * scale, result.interval_length_s)

    @property
    def n(self) -> int:
        """Number of intervals."""
        return int(self.start_s.shape[0])


@dataclass(frozen=True)
class Detection:
    """One fault or anomaly found by a detector.

    Attributes:
        kind: ``soiling``, ``inverter_trip``, ``stuck_meter``, ``curtailment``, ``anomaly``.
        series_id: the site or meter.
        start_s: epoch seconds, estimated start of the fault.
        end_s: epoch seconds, end of the evidence (the fault may go on after it).
        detected_s: epoch seconds at which the evidence first sufficed (the end of the
            interval or day that completed it): ``detected_s - start_s`` is the detection
            delay the twin scores.
        confidence: 0..1, how sure the detector is (each detector documents its formula).
        magnitude: a kind-specific size: soiling: fractional loss of performance ratio;
            inverter_trip: energy lost, Wh; stuck_meter: the repeated value, Wh;
            curtailment: the ceiling as a fraction of rated power; anomaly: the largest
            |z|.
        message: what was found, for a person.
    """

    kind: str
    series_id: str
    start_s: int
    end_s: int
    detected_s: int
    confidence: float
    magnitude: float
    message: str


@dataclass(frozen=True)
class DetectorParams:
    """Thresholds of the detectors (project choices, each stated with its reason).

    Attributes:
        trip_min_expected_fraction: an interval counts for the trip detector when the
            clear-sky expectation is at least this fraction of the nameplate (0.2).
        trip_max_ratio: ... and the reading is at most this fraction of the expectation
            (0.02: heavy overcast still gives 5-30 % of clear sky).
        trip_min_duration_s: shortest trip reported, s of such daylight intervals (1800).
        stuck_min_duration_s: shortest run of identical non-zero readings reported as a
            stuck meter, s (7200, as `pipeline.vee.VeeLimits.stuck_max_duration_s`).
        stuck_min_readings: ... with at least this many readings (4).
        stuck_exempt_fraction: runs at or above this fraction of the nameplate energy are
            flat tops (clipping, rated wind), not stuck (0.97).
        curtail_tolerance_fraction: relative closeness to a ceiling, and between visit
            levels (0.01: four standard deviations of an IEC 62053 class 1 meter's reading
            error, so meter noise does not break a plateau).
        curtail_window_s: span of the centred rolling maximum that defines the local
            ceiling, s (6 h).
        curtail_min_level_fraction, curtail_max_level_fraction: plateau levels considered,
            fractions of rated (0.05 and 0.95: below is calm, above is rated output).
        curtail_min_visit_s: shortest visit to a ceiling, s (1800: natural output near a
            wind-speed peak does not stay within 1 % for half an hour).
        curtail_min_visits: fewest separate visits to one ceiling for a curtailment (2).
        curtail_max_gap_s: visits further apart than this are separate episodes, s (24 h:
            a curtailment order outlasts a calm night).
        curtail_min_duration_s: shortest total time at the ceiling in an episode, s (7200).
        soiling_window_days: trailing windows of the soiling trend, days ((14, 30, 60): at
            the twin's default 0.15 %/day, pvlib's Kimber default, a 5 % loss needs five
            weeks of evidence; at 1 %/day two weeks tell).
        soiling_min_loss: smallest performance-ratio loss over the window reported (0.05).
        soiling_min_confidence: smallest fraction of negative pairwise slopes (0.75).
        soiling_min_clear_days: fewest clear days in a window (5).
        clear_max_dispersion: a clear day has (q90 - q10) / q50 of its interval ratios at
            most this (0.15: clouds make the ratio fluctuate within the day).
        clear_min_fraction: ... and a median ratio at least this fraction of the best of
            the last `clear_reference_days` (0.7: overcast days are uniform but dark).
        clear_reference_days: look-back of that best, days (30).
        daylight_min_fraction: intervals whose expectation is at least this fraction of
            the day's largest expectation enter the daily ratios (0.3: low sun is where
            the clear-sky model and the orientation matter most).
        anomaly_reference_days: days whose median profile is removed before scoring
            anomalies (3: one odd day cannot move a median of three).
        anomaly_window: trailing window of the anomaly detector, intervals (61).
        anomaly_threshold: |modified z| above which a reading is anomalous (8.0, as
            `pipeline.analyze.RobustZScoreDetector`).
        anomaly_mad_floor_fraction: smallest MAD as a fraction of the nameplate energy of
            one interval (0.02).
    """

    trip_min_expected_fraction: float = 0.2
    trip_max_ratio: float = 0.02
    trip_min_duration_s: float = 1800.0
    stuck_min_duration_s: float = 7200.0
    stuck_min_readings: int = 4
    stuck_exempt_fraction: float = 0.97
    curtail_tolerance_fraction: float = 0.01
    curtail_window_s: float = 6 * 3600.0
    curtail_min_level_fraction: float = 0.05
    curtail_max_level_fraction: float = 0.95
    curtail_min_visit_s: float = 1800.0
    curtail_min_visits: int = 2
    curtail_max_gap_s: float = 24 * 3600.0
    curtail_min_duration_s: float = 7200.0
    soiling_window_days: tuple[int, ...] = (14, 30, 60)
    soiling_min_loss: float = 0.05
    soiling_min_confidence: float = 0.75
    soiling_min_clear_days: int = 5
    clear_max_dispersion: float = 0.15
    clear_min_fraction: float = 0.7
    clear_reference_days: int = 30
    daylight_min_fraction: float = 0.3
    anomaly_reference_days: int = 3
    anomaly_window: int = 61
    anomaly_threshold: float = 8.0
    anomaly_mad_floor_fraction: float = 0.02

    def __post_init__(self) -> None:
        if (
            not self.soiling_window_days
            or min(self.soiling_window_days) < 3
            or self.soiling_min_clear_days < 3
        ):
            raise ValueError("soiling_window_days and soiling_min_clear_days must be >= 3")
        if self.curtail_min_visits < 1 or not self.curtail_window_s > 0:
            raise ValueError("curtail_min_visits must be >= 1 and curtail_window_s > 0")
        if self.anomaly_window < 3:
            raise ValueError("anomaly_window must be >= 3")

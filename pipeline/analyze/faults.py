"""The faults the detectors report (kinds), which detectors run for which kind of site
(`SITE_DETECTORS`), and the detectors' thresholds (`DetectorParams`).

Only numpy, numba and the standard library are imported here (DESIGN §2).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ANOMALY",
    "CURTAILMENT",
    "INVERTER_TRIP",
    "SITE_DETECTORS",
    "SOILING",
    "STUCK_METER",
    "DetectorParams",
]

SOILING = "soiling"
INVERTER_TRIP = "inverter_trip"
STUCK_METER = "stuck_meter"
CURTAILMENT = "curtailment"
ANOMALY = "anomaly"

#: Which detectors run for which kind of site (`pipeline.store.sites.SITE_KINDS`).
SITE_DETECTORS: dict[str, tuple[str, ...]] = {
    "pv": (SOILING, INVERTER_TRIP, STUCK_METER),
    "wind": (CURTAILMENT, STUCK_METER),
    "load": (ANOMALY, STUCK_METER),
}


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
            stuck meter, s (7200, as `pipeline.analyze.vee.VeeLimits.stuck_max_duration_s`).
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
        anomaly_threshold: |modified z| above which a reading is anomalous (8.0, well above
            Iglewicz & Hoaglin's 3.5 for single outliers: interval energy of PV and wind is
            heavy-tailed, clouds and gusts, and a false alert costs a site visit).
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

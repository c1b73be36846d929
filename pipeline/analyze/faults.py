"""What the detectors report: the kinds of fault (`FAULT_KINDS`), the kinds of normal event
(`EVENT_KINDS`, reported but never alerted), which kinds explain one observation so that
the first classification of a fault stands (`FAMILIES`), and the detectors' thresholds
(`DetectorParams`).

Only the standard library is imported here (DESIGN §2).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ANOMALY",
    "CLOCK_OFFSET",
    "CURTAILMENT",
    "DEGRADATION",
    "EVENT_KINDS",
    "FAMILIES",
    "FAULT_KINDS",
    "ICING",
    "INVERTER_TRIP",
    "PARTIAL_SHADING",
    "SOILING",
    "SPIKE",
    "STORM_CUTOUT",
    "STUCK_METER",
    "ZERO_REGISTER",
    "DetectorParams",
]

INVERTER_TRIP = "inverter_trip"
ZERO_REGISTER = "zero_register"
STUCK_METER = "stuck_meter"
SPIKE = "spike"
SOILING = "soiling"
DEGRADATION = "degradation"
PARTIAL_SHADING = "partial_shading"
CURTAILMENT = "curtailment"
ICING = "icing"
CLOCK_OFFSET = "clock_offset"
ANOMALY = "anomaly"
#: A turbine stopped by its controller in high wind: normal behaviour, an event.
STORM_CUTOUT = "storm_cutout"

FAULT_KINDS: tuple[str, ...] = (
    INVERTER_TRIP, ZERO_REGISTER, STUCK_METER, SPIKE, SOILING, DEGRADATION, PARTIAL_SHADING,
    CURTAILMENT, ICING, CLOCK_OFFSET, ANOMALY,
)  # fmt: skip
EVENT_KINDS: tuple[str, ...] = (STORM_CUTOUT,)

#: Kinds that are readings of one observation: no output (a tripped inverter or a register
#: reading zero), a gradual loss (soiling or degradation), a turbine below its neighbours
#: (iced or curtailed). While an alert of one is open, a detection of another kind of its
#: family on the same meter and time extends that alert instead of raising a second one.
FAMILIES: tuple[frozenset[str], ...] = (
    frozenset({INVERTER_TRIP, ZERO_REGISTER}),
    frozenset({SOILING, DEGRADATION}),
    frozenset({CURTAILMENT, ICING}),
)


@dataclass(frozen=True)
class DetectorParams:
    """Thresholds of the detectors (project choices, each with its reason; the README's
    "Detectability limits" states what they imply).

    Attributes:
        min_confidence: detections below this confidence are not raised (0.5).
        bright_fraction: a PV bin is evidence for the no-output detector when its
            expected energy is at least this fraction of the nameplate's (0.05: below,
            dawn, dusk and heavy overcast, a meter reading 0 is no news).
        trip_max_ratio: ... and it reads at most this fraction of the expectation (0.02).
        no_output_min_s: shortest run of such bins reported, s (1800: two bins).
        wind_min_expected_fraction: a wind bin is evidence when the neighbours' median
            capacity factor is at least this (0.1, well above cut-in).
        storm_wind_m_s: the station's 10-m wind speed at which turbines may cut out, m/s
            (13: with a logarithmic profile, roughness 0.15 m, about 20 m/s at 100 m hub
            height in the mean, with gusts to the 25 m/s cut-out of common 2-3 MW types);
        strong_wind_m_s: ... and from which a turbine that stops from full output has
            cut out (9: about 14 m/s at hub height, rated wind; the station stands away
            from the turbines, whose local wind may be a third stronger);
        storm_hold_s: a storm lasts while the wind is strong this long around its last
            sign, s (3 h: a front's passage).
        storm_fleet_fraction: without the station, a bin is stormy when at least this
            fraction of the region's turbines read 0 while their neighbours' median
            capacity factor is over 0.5 (0.25).
        stuck_min_duration_s: shortest run of identical readings the VEE stuck check and
            the per-series detector report, s (7200).
        frozen_min_s: shortest frozen run on the fleet grid reported, s (1800: two bins);
        frozen_min_readings: ... on a generation channel, without the reference moving,
            when it holds this many readings (30: half an hour of one-minute readings; a
            15-minute meter needs 7.5 h) ...
        frozen_min_reading_wh: ... of at least this many Wh each (300: the scatter of a
            class 0.5S meter's readings, about 0.13 % of the reading within its IEC
            62053-22 limit of 0.5 %, is then 0.4 count, and thirty equal readings in a
            row have odds of about 1e-5 by noise alone; a 5 kW array's 18 Wh minutes
            repeat by the register's 1-Wh resolution for half an hour);
        stuck_reference_change: ... when the reference's expected energy changed by at
            least this fraction of the nameplate's during it (0.1: the output had to move,
            by more than the reference's own error under local clouds; on a net meter's
            import, the load minus that change had to);
        stuck_long_s: ... or when it lasted this long whatever the reference did, s
            (21600: a facility's night load can hold one register value for hours, see
            `pipeline.analyze.channels.LOAD_STUCK_MIN_DURATION_S`).
        stuck_exempt_fraction: frozen runs at or above this fraction of the nameplate are
            flat tops (inverter clipping, a turbine at rated output), not stuck (0.97);
        frozen_min_level: ... and generation runs below this fraction of it are too (0.02:
            dawn, or a turbine just past cut-in, can repeat a small reading).
        spike_clear_sky_factor: a PV reading over this many times its clear-sky energy
            (or over its nameplate) is a spike (1.5: cloud enhancement lifts one-minute
            irradiance to 1.3-1.4 times the clear sky at most, e.g. Gueymard, "Cloud and
            albedo enhancement impacts on solar irradiance", Solar Energy 153:755, 2017);
        spike_local_factor: ... and at least this many times the median of the readings
            around it (3: a register error multiplies, the physics does not jump);
        import_spike_factor: ... on a net meter's import, at least this many times its
            neighbouring readings, whose median must be at least 2 % of the nameplate's
            energy (20: a facility's load has real spikes of ten times its base for a
            minute, a chiller or compressor starting, and a passing cloud makes import out
            of nothing).
        wind_below: a turbine bin counts as below its neighbours when its capacity factor
            is at least this much under their median (0.1).
        curtail_tolerance: capped bins lie within this fraction of the cap (0.005: a cap
            is a set-point, and the mean of 15 readings of a class 0.5S meter at it varies
            by about 0.1 %; bins of free output land that close to each other by chance
            only rarely).
        curtail_min_bins: fewest capped bins (4: an hour).
        curtail_max_level: caps above this capacity factor are rated output (0.9).
        icing_max_ratio: a turbine bin counts as iced when its output is at most this
            fraction of its neighbours' (0.75: the README's icing limit is a 30 % loss),
            and lower still where the fleet's turbines scatter around their neighbours
            (`pipeline.analyze.wind_detectors`);
        icing_min_bins: fewest such bins in a run (24: six hours; under local wind
            fields a healthy turbine's lull can take half its output for three).
        gradual_min_loss: smallest gradual loss reported (0.04).
        gradual_min_f: smallest F statistic of the ramp against a flat ratio (40).
        soiling_min_rate_per_day: a gradual loss faster than this per day is soiling
            (0.03); slower, without a recovery, degradation (see
            `pipeline.analyze.pv_detectors.detect_gradual_loss`).
        shading_min_dip: the ratio's dip in the shaded bins of each day (0.2).
        shading_min_bins: fewest consecutive shaded bins (4: an hour).
        shading_min_days: days showing the dip at the same times (2).
        clock_window_bins: trailing bins the clock detector compares (32: 8 h).
        clock_max_lag_bins: largest offset tried, bins (8: 2 h).
        clock_max_error_ratio: the best offset's squared error over the unshifted one's
            (0.3), each with its best scale (a loss in level is no offset);
        clock_min_lag_bins: smallest offset reported, bins (2: 30 min).
    """

    min_confidence: float = 0.5
    bright_fraction: float = 0.05
    trip_max_ratio: float = 0.02
    no_output_min_s: float = 1800.0
    wind_min_expected_fraction: float = 0.1
    storm_wind_m_s: float = 13.0
    strong_wind_m_s: float = 9.0
    storm_hold_s: float = 3 * 3600.0
    storm_fleet_fraction: float = 0.25
    stuck_min_duration_s: float = 7200.0
    frozen_min_s: float = 1800.0
    frozen_min_readings: int = 30
    frozen_min_reading_wh: float = 300.0
    stuck_reference_change: float = 0.1
    stuck_long_s: float = 21600.0
    stuck_exempt_fraction: float = 0.97
    frozen_min_level: float = 0.02
    spike_clear_sky_factor: float = 1.5
    spike_local_factor: float = 3.0
    import_spike_factor: float = 20.0
    wind_below: float = 0.1
    curtail_tolerance: float = 0.005
    curtail_min_bins: int = 4
    curtail_max_level: float = 0.9
    icing_max_ratio: float = 0.75
    icing_min_bins: int = 24
    gradual_min_loss: float = 0.04
    gradual_min_f: float = 40.0
    soiling_min_rate_per_day: float = 0.03
    shading_min_dip: float = 0.2
    shading_min_bins: int = 4
    shading_min_days: int = 2
    clock_window_bins: int = 32
    clock_max_lag_bins: int = 8
    clock_max_error_ratio: float = 0.3
    clock_min_lag_bins: int = 2
    # the per-series detectors of channels without a registered PV or wind site
    stuck_min_readings: int = 4
    anomaly_reference_days: int = 3
    anomaly_window: int = 61
    anomaly_threshold: float = 8.0
    anomaly_mad_floor_fraction: float = 0.02

    def __post_init__(self) -> None:
        if not 0 < self.min_confidence <= 1:
            raise ValueError(f"min_confidence must be in (0, 1], got {self.min_confidence!r}")
        if self.anomaly_window < 3:
            raise ValueError("anomaly_window must be >= 3")
        if self.shading_min_days < 2 or self.curtail_min_bins < 2 or self.icing_min_bins < 2:
            raise ValueError("shading_min_days, curtail_min_bins, icing_min_bins must be >= 2")

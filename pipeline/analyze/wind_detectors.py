"""Detectors of a turbine making less than its neighbours (`pipeline.analyze.fleet`): a flat
cap below what the wind allows (curtailment) and a proportional loss (icing).

Method: over the bins in which the neighbouring turbines' median capacity factor is at
least 0.15 (wind well above cut-in), a turbine's bin is *below* when its capacity factor
is `DetectorParams.wind_below` under that median. Turbines of one region in one wind agree
to within the spread of their hub heights and sites (the basis of SCADA-based power
performance monitoring with neighbouring turbines as the reference: e.g. IEC 61400-12-1's
site calibration idea, and the peer-comparison approach of M. Schlechtingen & I. F.
Santos, "Comparative analysis of neural network and regression based condition monitoring
approaches for wind turbine fault detection", Mech. Syst. Signal Process. 25:1849, 2011).

- ``curtailment``: the below bins cluster on one level (within
  `DetectorParams.curtail_tolerance`) for at least `curtail_min_bins`, that level at most
  `curtail_max_level`, and the turbine never exceeds it between the first and last capped
  bin: a set-point, not the wind. The level is the cap (magnitude: fraction of rated).
- ``icing``: at least `icing_min_bins` bins (skipping bins without evidence and a
  storm's) whose output is at most `icing_max_ratio` of the neighbours' and five robust
  standard deviations of the fleet's scatter below them (`_scatter`), at any wind speed
  with evidence and not a cap: a blade that lost part of its lift, the signature of rotor
  icing (IEA Wind TCP Task 19,
  "Available Technologies for Wind Energy in Cold Climates", 2018, §3: power curve
  deviation as the production-loss method of ice detection). The station's air
  temperature is quoted: ice forms at about +2 degC and below; warmer, the message says
  the cause is another (pitch, blade damage). Magnitude: the fraction lost.

A step to a lower ratio is icing; a loss that grows by per cent per day is degradation,
which these 36-hour windows do not see (see the README's detectability limits).

Only numpy and the standard library are imported here (DESIGN §2).
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.analyze.detectors import hours_text, utc_text
from pipeline.analyze.faults import CURTAILMENT, ICING, DetectorParams
from pipeline.analyze.fleet import FLEET_STEP_S, FleetView
from pipeline.analyze.kernels import runs_across_skips
from pipeline.analyze.register_detectors import bin_detection, storm_bins
from pipeline.store.alerts import Detection

__all__ = ["detect_wind_below_neighbours"]

#: Neighbours' median capacity factor above which a bin is evidence.
_MIN_REFERENCE_CF = 0.15
#: Ice forms on blades at about this air temperature and below, degC (IEA Wind Task 19).
_ICING_MAX_TEMP_C = 2.0
#: An iced turbine's output lies this many robust standard deviations of the fleet's
#: scatter below its neighbours' (five: under local wind fields a healthy turbine in a
#: lull can sit four below them for three hours; with one wind for the region the scatter
#: is a few per cent and `DetectorParams.icing_max_ratio` decides).
_ICING_SIGMAS = 5.0


def _scatter(ratio: np.ndarray, evidence: np.ndarray) -> float:
    """How far a turbine's output scatters around its neighbours' where the wind blows:
    the median over turbines of the robust standard deviation (1.4826 MAD) of the log of
    the ratio, per hour. Turbines of one region in one wind (a shared sky, as file weather
    is) agree within a few per cent; with local wind fields, within tens."""
    s, b = ratio.shape
    h = b // 4
    r = np.where(evidence, ratio, np.nan)[:, : h * 4].reshape(s, h, 4)
    count = np.count_nonzero(np.isfinite(r), axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        hourly = np.log(np.where(count >= 2, np.nansum(r, axis=2) / np.maximum(count, 1), np.nan))
    spread = []
    for row in hourly:  # turbines, not readings
        x = row[np.isfinite(row)]
        if x.size >= 6:
            spread.append(1.4826 * float(np.median(np.abs(x - np.median(x)))))
    return float(np.median(spread)) if spread else 0.0


def detect_wind_below_neighbours(view: FleetView, params: DetectorParams) -> list[Detection]:
    """Curtailment and icing (module docstring), one detection per episode."""
    enp = view.nameplate_wh[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        cf = view.gen / enp
        ref = view.expected_wh / enp
        evidence = (
            view.is_wind[:, None] & np.isfinite(cf) & np.isfinite(ref) & (ref >= _MIN_REFERENCE_CF)
            & (view.gen > 0) & ~view.gen_frozen
        )  # fmt: skip
        below = evidence & (cf <= ref - params.wind_below)
    out: list[Detection] = []
    capped_rows: set[int] = set()
    for row in np.flatnonzero(below.sum(axis=1) >= params.curtail_min_bins).tolist():
        idx = np.flatnonzero(below[row])
        level = float(np.median(cf[row, idx]))
        capped = idx[np.abs(cf[row, idx] - level) <= params.curtail_tolerance * level]
        if capped.size < params.curtail_min_bins or level > params.curtail_max_level:
            continue
        if capped.size < 0.5 * idx.size:
            continue
        first, last = int(capped[0]), int(capped[-1])
        between = cf[row, first : last + 1]
        if np.nanmax(between) > level * (1.0 + 1.5 * params.curtail_tolerance):
            continue
        capped_rows.add(row)
        site = view.sites[row]
        hours = capped.size * FLEET_STEP_S
        out.append(bin_detection(
            view, row, CURTAILMENT, first, last, int(capped[params.curtail_min_bins - 1]),
            1.0 - 0.5 ** (capped.size / params.curtail_min_bins), level,
            f"output of {site.site_id} held at {level:.0%} of rated for {hours_text(hours)} "
            f"between {utc_text(view.start_s[first])} and "
            f"{utc_text(view.start_s[last] + FLEET_STEP_S)} while its neighbours made more: "
            "curtailment",
        ))  # fmt: skip
    storm = storm_bins(view, params)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = cf / ref
        limit = min(
            params.icing_max_ratio, math.exp(-_ICING_SIGMAS * _scatter(ratio, evidence & ~storm))
        )
        hit = evidence & ~storm & (ratio <= limit)  # a ratio: icing at low wind too
    hit[list(capped_rows)] = False
    runs, cols = runs_across_skips(hit, evidence & ~hit)
    for i in np.flatnonzero(runs.hits >= params.icing_min_bins).tolist():
        row, first, last = int(runs.row[i]), int(runs.first[i]), int(runs.last[i])
        idx = cols[runs.first_hit[i] : runs.first_hit[i] + runs.hits[i]]
        loss = 1.0 - float(np.median(ratio[row, idx]))
        temp = (
            float(np.nanmean(view.temp_air[row, idx]))
            if np.isfinite(view.temp_air[row, idx]).any()
            else math.nan
        )
        cold = not math.isfinite(temp) or temp <= _ICING_MAX_TEMP_C
        duration_s = float(runs.hits[i] * FLEET_STEP_S)
        air = (
            f"air at {temp:.0f} degC"
            if math.isfinite(temp)
            else "no air temperature from the station"
        )
        cause = "rotor icing" if cold else "rotor icing unlikely this warm: check pitch and blades"
        out.append(bin_detection(
            view, row, ICING, first, last, int(cols[runs.first_hit[i] + params.icing_min_bins - 1]),
            (1.0 - math.exp(-duration_s / 7200.0)) * (1.0 if cold else 0.8), loss,
            f"turbine {view.sites[row].site_id} made {loss:.0%} less than its neighbours for "
            f"{hours_text(duration_s)} from {utc_text(view.start_s[first])} at every wind "
            f"speed ({air}): {cause}",
        ))  # fmt: skip
    return out

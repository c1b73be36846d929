"""Detectors of sudden faults on the fleet grid (`pipeline.analyze.fleet.FleetView`): no
output while the reference says there should be some, a register that stopped, a spike;
and the storm cut-outs that look like no output but are a turbine's normal behaviour.

Methods (each compares a site with its reference: neighbours, station, clear sky):

- `detect_no_output`: runs of bins with (almost) no energy while the reference expects
  some, counted over evidence bins only (dark bins, calm bins and missing readings are
  skipped, so a trip that lasts through the night is one run), at least
  `DetectorParams.no_output_min_s` long: the "zero output with irradiance" rule of PV
  monitoring (IEC 61724-1:2021 availability, and the fault-detection tests of
  Livera et al. 2021 cited in `pipeline.analyze.fleet`). On a PV generation meter it is
  an ``inverter_trip`` (a register reading 0 looks the same on a meter with only an energy
  channel: the message says so); on a turbine, whose neighbours turn, a ``zero_register``
  unless the wind is a storm's (`storm_bins`): then the turbine has cut out, a
  ``storm_cutout`` event, not an alert;
- `detect_net_zero`: a net meter whose import and export both read 0 (the facility's
  load never stops): ``zero_register``;
- `detect_frozen`: runs of frozen bins (every reading repeats the last: meter noise makes
  real readings differ) of at least `DetectorParams.frozen_min_s` through which the
  reference's expected energy changed by `DetectorParams.stuck_reference_change` of the
  nameplate (the output had to move), or on a generation channel that hold
  `DetectorParams.frozen_min_readings` readings of at least
  `DetectorParams.frozen_min_reading_wh` each (a class 0.5S meter's noise is a count or
  more there, so a source's output does not repeat to the Wh thirty times; smaller
  readings, a small array's minutes, can repeat by the register's resolution alone), or
  that last
  `DetectorParams.stuck_long_s` (a facility's load can hold a night): the
  "consecutive identical values" check of utility VEE (CPUC 1999, cited in
  `pipeline.analyze.vee`) with a physical reason to expect change instead of a fixed
  duration alone. Flat tops at the nameplate (clipping,
  rated wind) are exempt;
- `detect_spikes`: readings more than the source can physically give (the nameplate, or
  for PV half again the clear sky: minute-scale cloud enhancement stays below that), the
  range check of utility VEE against the physics instead of a statistical score (under
  broken clouds a PV minute may be ten times the ones around it, and real); on a net
  meter's import, VEE's spike findings (`pipeline.analyze.vee`, Hampel filter) at
  `DetectorParams.import_spike_factor` times a substantial load.

Only numpy and the standard library are imported here (DESIGN §2).
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.analyze.detectors import hours_text, utc_text
from pipeline.analyze.faults import (
    INVERTER_TRIP,
    SPIKE,
    STORM_CUTOUT,
    STUCK_METER,
    ZERO_REGISTER,
    DetectorParams,
)
from pipeline.analyze.fleet import FLEET_STEP_S, FleetGrid, FleetView
from pipeline.analyze.kernels import runs_across_skips, true_runs
from pipeline.analyze.vee import VeeResult
from pipeline.store.alerts import Detection

__all__ = [
    "bin_detection",
    "detect_frozen",
    "detect_net_zero",
    "detect_no_output",
    "detect_spikes",
    "spike_bound_wh",
    "storm_bins",
]


def bin_detection(
    view: FleetView,
    row: int,
    kind: str,
    first: int,
    last: int,
    detected: int,
    confidence: float,
    magnitude: float,
    message: str,
) -> Detection:
    """A detection over bins [first, last] of a view's row, evident at the end of bin
    `detected`."""
    return Detection(
        kind=kind,
        series_id=view.sites[row].site_id,
        start_s=int(view.start_s[first]),
        end_s=int(view.start_s[last]) + FLEET_STEP_S,
        detected_s=int(view.start_s[detected]) + FLEET_STEP_S,
        confidence=float(confidence),
        magnitude=float(magnitude),
        message=message,
    )


def storm_bins(view: FleetView, params: DetectorParams) -> np.ndarray:
    """Bins [S, B] of a storm, in which a turbine may be cut out by the wind. A storm is
    on where its station's 10-m wind speed is at least `DetectorParams.storm_wind_m_s`, or
    at least `DetectorParams.storm_fleet_fraction` of the region's turbines read 0 while
    their neighbours' median capacity factor is over 0.5, or a turbine stops from 85 % of
    rated or more while the station's wind is at least `DetectorParams.strong_wind_m_s`
    (the controller's stop at full output, not the meter's); and it lasts while the
    station's wind stays that strong within `DetectorParams.storm_hold_s` of such a sign
    (turbines cut out and restart, each on its own local gusts, while the storm passes).
    Without a station, the signs alone. One bin either side counts too (the controller
    restarts only when the 10-minute mean has fallen, IEC 61400-1)."""
    wind = view.is_wind
    enp = view.nameplate_wh[:, None]
    with np.errstate(invalid="ignore"):
        stopped = (view.gen == 0) & (view.expected_wh > 0.5 * enp)
        by_station = view.wind_speed >= params.storm_wind_m_s
        strong = view.wind_speed >= params.strong_wind_m_s
        was_full = np.zeros_like(by_station)
        was_full[:, 1:] = view.gen[:, :-1] >= 0.85 * enp
        cut_from_full = (view.gen == 0) & was_full & strong
    n_wind = max(1, int(np.count_nonzero(wind)))
    fleet = (
        np.count_nonzero(stopped & wind[:, None], axis=0) >= params.storm_fleet_fraction * n_wind
    )
    sign = (by_station | cut_from_full).any(axis=0) | fleet  # [B], region-wide
    hold = max(1, round(params.storm_hold_s / FLEET_STEP_S))
    near = np.convolve(sign.astype(np.int64), np.ones(2 * hold + 1, dtype=np.int64), "same") > 0
    storm = sign[None, :] | (near[None, :] & (strong | np.isnan(view.wind_speed)))
    widened = storm.copy()
    widened[:, 1:] |= storm[:, :-1]
    widened[:, :-1] |= storm[:, 1:]
    return widened


def detect_no_output(
    view: FleetView, params: DetectorParams
) -> tuple[list[Detection], list[Detection]]:
    """No output while the reference expects some (module docstring): (alerts, events)."""
    enp = view.nameplate_wh[:, None]
    e, x = view.gen, view.expected_wh
    with np.errstate(invalid="ignore"):
        pv = (view.is_pv & ~view.net)[:, None]
        pv_evidence = pv & np.isfinite(e) & (x >= params.bright_fraction * enp)
        pv_hit = pv_evidence & (e <= params.trip_max_ratio * x)
        wind = view.is_wind[:, None]
        storm = storm_bins(view, params) & wind
        wind_evidence = (
            wind & np.isfinite(e) & ((x >= params.wind_min_expected_fraction * enp) | storm)
        )
        wind_hit = wind_evidence & (e == 0)
    hit = pv_hit | wind_hit
    miss = (pv_evidence | wind_evidence) & ~hit
    runs, cols = runs_across_skips(hit, miss)
    k_min = max(1, math.ceil(params.no_output_min_s / FLEET_STEP_S))
    alerts: list[Detection] = []
    events: list[Detection] = []
    for i in np.flatnonzero(runs.hits >= k_min).tolist():
        row, first, last = int(runs.row[i]), int(runs.first[i]), int(runs.last[i])
        idx = cols[runs.first_hit[i] : runs.first_hit[i] + runs.hits[i]]
        detected = int(cols[runs.first_hit[i] + k_min - 1])
        duration_s = float(runs.hits[i] * FLEET_STEP_S)
        lost_wh = float(np.nansum(x[row, idx] - e[row, idx]))  # NaN reference: unknown
        confidence = 1.0 - math.exp(-duration_s / params.no_output_min_s)
        site = view.sites[row].site_id
        span = (
            f"from {utc_text(view.start_s[first])} to {utc_text(view.start_s[last] + FLEET_STEP_S)}"
        )
        if view.is_pv[row]:
            alerts.append(bin_detection(
                view, row, INVERTER_TRIP, first, last, detected, confidence, lost_wh,
                f"no output at site {site} {span} ({hours_text(duration_s)} while its "
                f"neighbours' sky allowed {lost_wh / 1000.0:.1f} kWh): inverter trip (or the "
                "meter's register reading 0: a site with only an energy channel cannot tell)",
            ))  # fmt: skip
        elif storm[row, first : last + 1].any():
            events.append(bin_detection(
                view, row, STORM_CUTOUT, first, last, detected, 1.0, lost_wh,
                f"turbine {site} stopped {span} in storm winds: high-wind cut-out "
                "(normal protection, no action)",
            ))  # fmt: skip
        else:
            alerts.append(bin_detection(
                view, row, ZERO_REGISTER, first, last, detected, confidence, lost_wh,
                f"meter {site} read 0 {span} ({hours_text(duration_s)}) while the "
                f"neighbouring turbines made {lost_wh / 1000.0:.0f} kWh of its share and no "
                "storm blew: the register reads zero (or the turbine stopped)",
            ))  # fmt: skip
    return alerts, events


def detect_net_zero(view: FleetView, params: DetectorParams) -> list[Detection]:
    """A net meter whose import and export both read 0 (module docstring)."""
    net = view.net[:, None]
    with np.errstate(invalid="ignore"):
        known = net & np.isfinite(view.gen) & np.isfinite(view.imp)
        hit = known & (view.gen == 0) & (view.imp == 0)
    runs, cols = runs_across_skips(hit, known & ~hit)
    k_min = max(1, math.ceil(params.no_output_min_s / FLEET_STEP_S))
    out = []
    for i in np.flatnonzero(runs.hits >= k_min).tolist():
        row, first, last = int(runs.row[i]), int(runs.first[i]), int(runs.last[i])
        duration_s = float(runs.hits[i] * FLEET_STEP_S)
        out.append(bin_detection(
            view, row, ZERO_REGISTER, first, last, int(cols[runs.first_hit[i] + k_min - 1]),
            1.0 - math.exp(-duration_s / params.no_output_min_s), duration_s,
            f"net meter {view.sites[row].site_id} read 0 on import and export from "
            f"{utc_text(view.start_s[first])} ({hours_text(duration_s)}): its register reads "
            "zero (the facility's load never does)",
        ))  # fmt: skip
    return out


def detect_frozen(view: FleetView, params: DetectorParams) -> list[Detection]:
    """Registers that stopped (module docstring): one detection per frozen run."""
    enp = view.nameplate_wh[:, None]
    k_min = max(2, math.ceil(params.frozen_min_s / FLEET_STEP_S))
    k_long = max(k_min, math.ceil(params.stuck_long_s / FLEET_STEP_S))
    change = params.stuck_reference_change * view.nameplate_wh
    out = []
    for name, values, frozen in (
        ("generation", view.gen, view.gen_frozen),
        ("import", view.imp, view.imp_frozen),
    ):
        with np.errstate(invalid="ignore"):
            level_ok = values > 0
            if name == "generation":
                level_ok &= values < params.stuck_exempt_fraction * enp
                level_ok &= values >= params.frozen_min_level * enp
            hit = frozen & level_ok
        runs, _ = runs_across_skips(hit, ~hit)
        for i in np.flatnonzero(runs.hits >= k_min).tolist():
            row, first, last = int(runs.row[i]), int(runs.first[i]), int(runs.last[i])
            ref = view.expected_wh[row, first : last + 1]
            moved = np.fmax.accumulate(np.nan_to_num(ref, nan=-np.inf)) - np.fmin.accumulate(
                np.nan_to_num(ref, nan=np.inf)
            )
            n = np.arange(1, last - first + 2)
            per_reading_wh = float(values[row, first]) / view.readings_per_bin[row]
            many = (
                name == "generation"
                and per_reading_wh >= params.frozen_min_reading_wh
                and view.readings_per_bin[row] * n >= params.frozen_min_readings
            )
            ok = (n >= k_min) & ((moved >= change[row]) | (n >= k_long) | many)
            if not ok.any():
                continue
            detected = first + int(np.argmax(ok))
            duration_s = float((last - first + 1) * FLEET_STEP_S)
            # confidence by the reason: the physics said it had to move (0.99), a source's
            # readings repeated to the Wh many times (0.95), or only a long flat run
            if moved[detected - first] >= change[row]:
                why, confidence = "while its reference moved", 0.99
            elif detected - first + 1 >= k_long:
                why = f"for over {hours_text(params.stuck_long_s)}"
                confidence = 1.0 - 0.5 ** (duration_s / 7200.0)
            else:
                repeats = view.readings_per_bin[row] * (detected - first + 1)
                why, confidence = f"{repeats} times in a row", 0.95
            level = float(values[row, first]) / (FLEET_STEP_S / 60.0)
            out.append(bin_detection(
                view, row, STUCK_METER, first, last, detected, confidence, level,
                f"meter {view.sites[row].site_id} repeated one {name} reading "
                f"({hours_text(duration_s)} from {utc_text(view.start_s[first])}) {why}: "
                "register stuck",
            ))  # fmt: skip
    return out


def detect_spikes(
    site_id: str,
    result: VeeResult,
    scale: float,
    bound_wh: np.ndarray | None,
    nameplate_wh_per_slot: float,
    params: DetectorParams,
) -> list[Detection]:
    """Spikes on one fleet channel (module docstring): readings above `bound_wh` (Wh per
    slot of `result`'s grid: what the source can physically give there, see
    `spike_bound_wh`) and `DetectorParams.spike_local_factor` times their neighbouring
    readings, or, for a net meter's import (`bound_wh` None), VEE spike findings
    `DetectorParams.import_spike_factor` times their neighbouring readings, whose median is
    at least 2 % of the nameplate's energy. `scale` is the channel's Wh per register count.
    One detection per run of such readings; magnitude: the reading over its neighbours'
    median (or over the bound when they read 0)."""
    raw = result.raw_value * scale
    step = result.interval_length_s
    if bound_wh is not None:
        with np.errstate(invalid="ignore"):
            over = raw > bound_wh
        starts, stops = true_runs(over)
        runs = list(zip(starts.tolist(), stops.tolist(), strict=True))
    else:
        runs = [(f.first, f.stop) for f in result.findings if f.kind == "spike"]
    out = []
    for first, stop in runs:
        lo, hi = max(0, first - 4), min(raw.shape[0], stop + 4)
        around = np.concatenate((raw[lo:first], raw[stop:hi]))
        local = float(np.nanmedian(around)) if np.isfinite(around).any() else 0.0
        peak = float(np.nanmax(raw[first:stop]))
        if bound_wh is None and not (
            local >= 0.02 * nameplate_wh_per_slot and peak >= params.import_spike_factor * local
        ):
            continue
        if bound_wh is not None and not peak >= params.spike_local_factor * local:
            continue
        ref = (
            local
            if local > 0
            else float(np.nanmax(bound_wh[first:stop]))
            if bound_wh is not None
            else peak
        )
        factor = peak / ref if ref > 0 else 1.0
        start = int(result.start_s[first])
        end = int(result.start_s[stop - 1]) + step
        out.append(Detection(
            kind=SPIKE, series_id=site_id, start_s=start, end_s=end, detected_s=end,
            confidence=min(1.0, 0.5 + 0.5 * (1.0 - 1.0 / max(factor, 1.0))) if factor > 1 else 0.5,
            magnitude=factor,
            message=(
                f"meter {site_id} read {peak:.0f} Wh at {utc_text(start)} ({factor:.0f}x its "
                "neighbouring readings, more than the source can give): a spike (a corrupted "
                "register or a decimal-point error)"
            ),
        ))  # fmt: skip
    return out


def spike_bound_wh(
    grid: FleetGrid, site_id: str, start_s: np.ndarray, per_slot: int, params: DetectorParams
) -> np.ndarray:
    """The most a generation channel of a site on the grid can read in each slot of a grid
    (`start_s`, `per_slot` slots per bin), Wh: for PV the smaller of its nameplate and
    `DetectorParams.spike_clear_sky_factor` times its clear-sky energy (cloud enhancement
    lifts minutes over the clear sky, not by half) but no less than 20 % of the nameplate
    (at low sun the clear-sky model's timing and the diffuse light of twilight make the
    clear sky a poor bound), for wind its nameplate; plus 10 % (VEE's range margin). NaN
    where the slot is outside the grid."""
    row = grid.row[site_id]
    site = grid.sites[row]
    b = (np.asarray(start_s) - grid.bin_start_s(0)) // FLEET_STEP_S
    ok = (b >= 0) & (b < grid.n_bins)
    plate = site.nameplate_w * FLEET_STEP_S / 3600.0 / per_slot
    out = np.full(b.shape, np.nan)
    if site.kind == "pv":
        cs = grid.clear_sky_wh[row, b[ok]] / per_slot
        out[ok] = np.fmax(np.fmin(plate, params.spike_clear_sky_factor * cs), 0.2 * plate) * 1.1
    else:
        out[ok] = plate * 1.1
    return out

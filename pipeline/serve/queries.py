"""The read side of the MDC service: what the dashboard and the JSON API ask of the store,
through read-only connections (`ReadPool`) that never block the writer (WAL), each query
bounded (`QueryError`, a 400 naming the bound, beyond it).

Energy flows: an interval-energy series (uom Wh, interval data, not a register) with
flowDirection 19 (received from the site) is *generation*, with 1 (delivered to the site)
*consumption*; on a net meter these are its export and import. Values are the raw
readings (``raw_value x 10^powerOfTenMultiplier`` Wh), as they came in.

Only numpy and the pipeline's own modules are imported here (DESIGN §2).
"""

from __future__ import annotations

import contextlib
import math
import queue
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.analyze.batch import BatchAnalysis
from pipeline.analyze.forecast import ForecastRecord
from pipeline.analyze.recommendations import RECOMMENDERS
from pipeline.espi.codes import FLOW_DELIVERED, FLOW_RECEIVED, REGISTER_ACCUMULATIONS, UOM_WH
from pipeline.espi.reading_type import ReadingType
from pipeline.serve.forecasts import ForecastBook
from pipeline.store.readings import LatestReading
from pipeline.store.store import Store

__all__ = [
    "MAX_ALERTS",
    "MAX_PERIOD_S",
    "MAX_POINTS",
    "MAX_READINGS",
    "MAX_SITES",
    "QueryError",
    "ReadPool",
    "alerts",
    "data_clock_s",
    "forecasts",
    "meters",
    "parse_time_s",
    "readings",
    "series",
    "sites",
]

#: Longest period one query may span, s: 31 days.
MAX_PERIOD_S = 31 * 86_400
#: Most points (time buckets) of one series answer.
MAX_POINTS = 5_000
#: Most stored readings one query may read (estimated from the period and each series'
#: interval length before reading): about a second of reading on a small server.
MAX_READINGS = 2_000_000
#: Most alerts and sites in one answer.
MAX_ALERTS = 500
MAX_SITES = 5_000
#: A site whose latest reading ended this long before the data clock is ``silent``, s: four
#: missed 15-minute uploads (this project's choice).
SILENT_AFTER_S = 3_600
#: Forecasts of one site in an answer (the book keeps `ForecastBook.keep` per series).
MAX_FORECASTS = 48

_FLOWS = {FLOW_RECEIVED: "generation", FLOW_DELIVERED: "consumption"}


class QueryError(ValueError):
    """A query the API refuses (answered 400 with this message)."""


class ReadPool:
    """`n` read-only stores (`pipeline.store.store.Store` with ``read_only=True``) on the
    service's database, lent to one thread at a time (`borrow`)."""

    def __init__(self, db_path: str | Path, n: int) -> None:
        self._free: queue.SimpleQueue[Store] = queue.SimpleQueue()
        self._all = [Store(db_path, read_only=True) for _ in range(n)]
        for store in self._all:
            self._free.put(store)

    @contextlib.contextmanager
    def borrow(self) -> Iterator[Store]:
        """A store for this thread until the block ends (waits while all are lent)."""
        store = self._free.get()
        try:
            yield store
        finally:
            self._free.put(store)

    def close(self) -> None:
        for store in self._all:
            store.close()


# -- parameters ------------------------------------------------------------------------
def parse_time_s(text: str | None, name: str) -> int | None:
    """A time parameter: epoch seconds or ISO 8601 with a zone (``2026-06-21T12:00:00Z``);
    None when absent."""
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise QueryError(f"{name}={text!r:.40}: expected epoch seconds or ISO 8601") from None
    if moment.tzinfo is None:
        raise QueryError(f"{name}={text!r:.40}: give a time zone (e.g. Z for UTC)")
    return int(moment.timestamp())


def _bounded_int(value: int | None, name: str, default: int, lo: int, hi: int) -> int:
    value = default if value is None else value
    if not lo <= value <= hi:
        raise QueryError(f"{name}={value}: expected {lo}..{hi}")
    return value


def _iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- energy series -----------------------------------------------------------------------
def _is_energy(rt: ReadingType) -> bool:
    """Interval energy in Wh (not a register) with a generation or consumption flow."""
    return (
        rt.uom == UOM_WH
        and rt.accumulation_behaviour not in REGISTER_ACCUMULATIONS
        and rt.flow_direction in _FLOWS
    )


def _power_w(r: LatestReading) -> float:
    """Average power over the latest reading's interval, W."""
    wh = r.raw_value * 10.0**r.reading_type.power_of_ten_multiplier
    return wh * 3600.0 / r.duration_s


def data_clock_s(latest: list[LatestReading]) -> int | None:
    """The end of the latest reading stored, epoch s (None: nothing stored): the service's
    clock for analysis and for what is recent (a service fed by a simulated fleet runs in
    the fleet's time)."""
    return max((r.start_s + r.duration_s for r in latest), default=None)


# -- endpoints ---------------------------------------------------------------------------
def sites(store: Store, limit: int | None = None, offset: int | None = None) -> dict[str, Any]:
    """Every site (the registry, and meters with readings that are not in it): kind,
    capacity, latest generation and consumption (average power over the latest interval,
    W), the end of its latest reading, its open alerts and its state: ``alert`` (an open
    alert), ``silent`` (no reading for `SILENT_AFTER_S` before the data clock), ``no_data``
    or ``ok``."""
    limit = _bounded_int(limit, "limit", 1000, 1, MAX_SITES)
    offset = _bounded_int(offset, "offset", 0, 0, 10**9)
    registry = store.sites.all()
    latest = store.readings.latest()
    now = data_clock_s(latest)
    by_site: dict[str, dict[str, Any]] = {}
    for site_id in sorted(set(registry) | {r.meter_id for r in latest}):
        meta = registry.get(site_id)
        by_site[site_id] = {
            "site_id": site_id,
            "kind": None if meta is None else meta.kind,
            "capacity_w": None if meta is None else meta.capacity_w,
            "latest_s": None,
            "generation_w": None,
            "consumption_w": None,
            "open_alerts": 0,
        }
    for r in latest:
        row = by_site[r.meter_id]
        end_s = r.start_s + r.duration_s
        row["latest_s"] = max(row["latest_s"] or end_s, end_s)
        if _is_energy(r.reading_type):
            row[f"{_FLOWS[r.reading_type.flow_direction]}_w"] = _power_w(r)
    if now is not None:
        for d in BatchAnalysis(store).open_detections(now):
            if d.series_id in by_site:
                by_site[d.series_id]["open_alerts"] += 1
    for row in by_site.values():
        if row["latest_s"] is None:
            row["state"] = "no_data"
        elif row["open_alerts"]:
            row["state"] = "alert"
        elif now is not None and row["latest_s"] < now - SILENT_AFTER_S:
            row["state"] = "silent"
        else:
            row["state"] = "ok"
    rows = list(by_site.values())
    return {
        "now_s": now,
        "now": None if now is None else _iso(now),
        "total": len(rows),
        "sites": rows[offset : offset + limit],
    }


def _energy_series(
    store: Store, site: str | None, fleet: str | None
) -> tuple[list[tuple[str, ReadingType]], int]:
    """The energy series of one site, or of every site of a fleet kind (``all``: every
    meter), and how many sites they belong to."""
    if (site is None) == (fleet is None):
        raise QueryError("give one of site=ID or fleet=KIND (pv, wind, load or all)")
    chosen = [(m, rt) for m, rt in store.readings.series() if _is_energy(rt)]
    if site is not None:
        chosen = [(m, rt) for m, rt in chosen if m == site]
        return chosen, 1
    if fleet != "all":
        kinds = {s.site_id: s.kind for s in store.sites.all().values()}
        if fleet not in set(kinds.values()):
            raise QueryError(f"fleet={fleet!r:.40}: no registered site of that kind")
        chosen = [(m, rt) for m, rt in chosen if kinds.get(m) == fleet]
    return chosen, len({m for m, _ in chosen})


def _period(
    store: Store, start_s: int | None, end_s: int | None, default_s: int
) -> tuple[int, int]:
    if end_s is None:
        end_s = data_clock_s(store.readings.latest()) or 0
    if start_s is None:
        start_s = end_s - default_s
    if end_s <= start_s:
        raise QueryError(f"end ({end_s}) must be after start ({start_s})")
    if end_s - start_s > MAX_PERIOD_S:
        raise QueryError(
            f"the period spans {(end_s - start_s) / 86400:.1f} days, more than the "
            f"{MAX_PERIOD_S // 86400} days one query may"
        )
    return start_s, end_s


def series(
    store: Store,
    *,
    site: str | None = None,
    fleet: str | None = None,
    start_s: int | None = None,
    end_s: int | None = None,
    step_s: int | None = None,
) -> dict[str, Any]:
    """Generation and consumption of one site or a fleet over [start_s, end_s) (default: the
    last day to the data clock), summed over its sites per bucket of `step_s` (default:
    about 300 buckets, a multiple of a minute): energy in Wh and average power in W per
    bucket, null where no reading fell in it.

    Raises:
        QueryError: no or both of site and fleet, a period over `MAX_PERIOD_S`, more
            than `MAX_POINTS` buckets, or more than `MAX_READINGS` readings to read.
    """
    chosen, n_sites = _energy_series(store, site, fleet)
    start_s, end_s = _period(store, start_s, end_s, 86_400)
    span = end_s - start_s
    if step_s is None:
        step_s = max(60, math.ceil(span / 300 / 60) * 60)
    if step_s < 1:
        raise QueryError(f"step={step_s}: expected seconds >= 1")
    n = math.ceil(span / step_s)
    if n > MAX_POINTS:
        raise QueryError(f"{n} points of step {step_s} s, more than {MAX_POINTS}: a larger step")
    estimate = sum(span // rt.interval_length_s + 1 for _, rt in chosen)
    if estimate > MAX_READINGS:
        raise QueryError(
            f"about {estimate} readings to read, more than {MAX_READINGS}: a shorter period "
            "or one site"
        )
    energy = {flow: np.zeros(n) for flow in _FLOWS.values()}
    counts = {flow: np.zeros(n, dtype=np.int64) for flow in _FLOWS.values()}
    for meter_id, rt in chosen:
        rows = store.readings.read_series(meter_id, rt, start_s, end_s - 1)
        bucket = (rows.start_s - start_s) // step_s
        flow = _FLOWS[rt.flow_direction]
        wh = rows.raw_value * 10.0**rt.power_of_ten_multiplier
        energy[flow] += np.bincount(bucket, weights=wh, minlength=n)[:n]
        counts[flow] += np.bincount(bucket, minlength=n)[:n]
    out: dict[str, Any] = {
        "site": site,
        "fleet": fleet,
        "sites": n_sites,
        "start_s": start_s,
        "end_s": end_s,
        "step_s": step_s,
        "t_s": (start_s + step_s * np.arange(n)).tolist(),
    }
    for flow in _FLOWS.values():
        seen = counts[flow] > 0
        wh = np.where(seen, energy[flow], np.nan)
        out[f"{flow}_wh"] = _nan_to_none(wh)
        out[f"{flow}_w"] = _nan_to_none(wh * 3600.0 / step_s)
    return out


def _nan_to_none(values: np.ndarray) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values.tolist()]


def alerts(store: Store, *, status: str = "all", limit: int | None = None) -> dict[str, Any]:
    """The stored alerts, latest detection first: kind, site, evidence span, when detected,
    confidence, magnitude, message, the urgency and action recommended for a person and the
    status (``open``: still actionable at the data clock, `BatchAnalysis.open_detections`;
    else ``closed``); and the recommendations of the open ones
    (`pipeline.analyze.recommendations.Recommendation` as JSON), most urgent first.

    Raises:
        QueryError: a status other than all, open or closed, or a limit over `MAX_ALERTS`.
    """
    if status not in ("all", "open", "closed"):
        raise QueryError(f"status={status!r:.20}: expected all, open or closed")
    limit = _bounded_int(limit, "limit", 100, 1, MAX_ALERTS)
    now = data_clock_s(store.readings.latest())
    analysis = BatchAnalysis(store)
    stored = store.alerts.detections()
    is_open = set() if now is None else set(map(_alert_key, analysis.open_detections(now)))
    rows = []
    for d in sorted(stored, key=lambda d: (-d.detected_s, d.series_id, d.kind)):
        state = "open" if _alert_key(d) in is_open else "closed"
        if status not in ("all", state):
            continue
        recommend = RECOMMENDERS.get(d.kind)
        rows.append(
            {
                "kind": d.kind,
                "site_id": d.series_id,
                "start_s": d.start_s,
                "end_s": d.end_s,
                "detected_s": d.detected_s,
                "start": _iso(d.start_s),
                "detected": _iso(d.detected_s),
                "confidence": d.confidence,
                "magnitude": d.magnitude,
                "message": d.message,
                "urgency": None if recommend is None else recommend(d)[0],
                "recommendation": None if recommend is None else recommend(d)[1],
                "status": state,
            }
        )
        if len(rows) == limit:
            break
    return {
        "now_s": now,
        "total": len(stored),
        "alerts": rows,
        "recommendations": (
            [] if now is None else [r.to_json() for r in analysis.recommendations(now)]
        ),
    }


def _alert_key(d: Any) -> tuple[str, str, int]:
    return (d.kind, d.series_id, d.start_s)


def forecasts(
    store: Store, book: ForecastBook, *, site: str | None = None, limit: int | None = None
) -> dict[str, Any]:
    """Without a site: the latest forecast of every series (its method and reference, the
    next hour's energy). With one: its last `limit` issued forecasts and the hourly energy
    that came in over their span, Wh per hour (null where an hour is incomplete), and each
    forecast set against it (`_against_metered`): the service holds what was metered, not
    what the sites truly produced, so this is the error against the meters so far.

    Raises:
        QueryError: a limit over `MAX_FORECASTS` (with a site) or `MAX_SITES`.
    """
    if site is None:
        limit = _bounded_int(limit, "limit", 1000, 1, MAX_SITES)
        return {
            "forecasts": [
                {
                    "site_id": f.series_id,
                    "flow_direction": f.flow_direction,
                    "method": f.method,
                    "reference_method": f.reference_method,
                    "issued_s": f.issued_s,
                    "next_hour_wh": f.forecast_wh[0] if f.forecast_wh else None,
                }
                for f in book.latest()[:limit]
            ]
        }
    limit = _bounded_int(limit, "limit", 24, 1, MAX_FORECASTS)
    issued = book.of_site(site)[-limit:]
    out: dict[str, Any] = {"site": site, "forecasts": [], "actual": None}
    if not issued:
        return out
    step = issued[0].interval_length_s
    first = min(f.issued_s for f in issued)
    last = max(f.issued_s + f.interval_length_s * f.horizon_steps for f in issued)
    last = min(last, first + MAX_PERIOD_S)
    actual = {
        flow: _hourly_actual(store, site, flow, first, last, step)
        for flow in sorted({f.flow_direction for f in issued})
    }
    out["actual"] = {str(flow): a for flow, a in actual.items()}
    out["forecasts"] = [
        {
            "flow_direction": f.flow_direction,
            "method": f.method,
            "issued_s": f.issued_s,
            "step_s": f.interval_length_s,
            "forecast_wh": _nan_to_none(np.asarray(f.forecast_wh, dtype=float)),
            "reference_method": f.reference_method,
            "reference_wh": _nan_to_none(np.asarray(f.reference_wh, dtype=float)),
        }
        | _against_metered(f, actual[f.flow_direction], first)
        for f in issued
    ]
    return out


def _against_metered(f: ForecastRecord, actual: dict[str, Any], first_s: int) -> dict[str, Any]:
    """A forecast beside the energy metered over its steps: ``metered_wh`` per step (null
    where not complete yet), the steps complete (``steps_metered``), the mean absolute error
    of the forecast and of its reference over them, Wh (null without any), and the skill
    1 - RMSE / RMSE of the reference over them (null where the reference was exact), the
    skill score of Murphy (1988, Mon. Wea. Rev. 116, 2417) as the twin scores forecasts."""
    step = f.interval_length_s
    k0 = (f.issued_s - first_s) // step
    came = np.array([np.nan if v is None else v for v in actual["energy_wh"]], dtype=float)
    idx = k0 + np.arange(f.horizon_steps)
    metered = np.full(f.horizon_steps, np.nan)
    inside = (idx >= 0) & (idx < len(came))
    metered[inside] = came[idx[inside]]
    ok = np.isfinite(metered)
    forecast = np.asarray(f.forecast_wh, dtype=float)
    reference = np.asarray(f.reference_wh, dtype=float)
    err = forecast[ok] - metered[ok]
    mae = float(np.mean(np.abs(err))) if ok.any() else None
    mae_ref = skill = None
    if ok.any() and len(reference) == f.horizon_steps:
        err_ref = reference[ok] - metered[ok]
        mae_ref = float(np.mean(np.abs(err_ref)))
        rmse_ref = float(np.sqrt(np.mean(err_ref**2)))
        if rmse_ref > 0:
            skill = 1.0 - float(np.sqrt(np.mean(err**2))) / rmse_ref
    return {
        "metered_wh": _nan_to_none(metered),
        "steps_metered": int(ok.sum()),
        "mae_wh": mae,
        "reference_mae_wh": mae_ref,
        "skill": skill,
    }


def _hourly_actual(
    store: Store, site: str, flow: int, start_s: int, end_s: int, step_s: int
) -> dict[str, Any]:
    """Energy that came in per `step_s` over [start_s, end_s), Wh (null where a step is not
    complete)."""
    n = max(0, (end_s - start_s) // step_s)
    energy = np.zeros(n)
    covered = np.zeros(n)
    for meter_id, rt in store.readings.series():
        if meter_id != site or rt.flow_direction != flow or not _is_energy(rt):
            continue
        rows = store.readings.read_series(meter_id, rt, start_s, start_s + n * step_s - 1)
        bucket = (rows.start_s - start_s) // step_s
        energy += np.bincount(
            bucket, weights=rows.raw_value * 10.0**rt.power_of_ten_multiplier, minlength=n
        )[:n]
        covered += np.bincount(bucket, weights=rows.duration_s.astype(float), minlength=n)[:n]
    complete = covered >= step_s
    return {
        "t_s": (start_s + step_s * np.arange(n)).tolist(),
        "energy_wh": _nan_to_none(np.where(complete, energy, np.nan)),
    }


def readings(store: Store, meter_id: str, start_s: int | None, end_s: int | None) -> dict[str, Any]:
    """The interval starts of one meter's stored readings in [start_s, end_s], per series
    (its ReadingType fields and the starts, epoch s): what a client checks its deliveries
    against.

    Raises:
        QueryError: missing bounds, a period over `MAX_PERIOD_S`, or more than
            `MAX_READINGS` readings.
    """
    if start_s is None or end_s is None:
        raise QueryError("give start and end")
    if end_s < start_s or end_s - start_s > MAX_PERIOD_S:
        raise QueryError(f"start..end must be a period of at most {MAX_PERIOD_S // 86400} days")
    out = []
    total = 0
    for rt in store.readings.reading_types_of(meter_id):
        rows = store.readings.read_series(meter_id, rt, start_s, end_s)
        total += rows.start_s.shape[0]
        if total > MAX_READINGS:
            raise QueryError(f"more than {MAX_READINGS} readings: a shorter period")
        out.append(
            {
                "uom": rt.uom,
                "flow_direction": rt.flow_direction,
                "interval_length_s": rt.interval_length_s,
                "start_s": rows.start_s.tolist(),
            }
        )
    return {"meter_id": meter_id, "series": out}


def meters(store: Store) -> dict[str, Any]:
    """Rows stored per meter (a scan of the readings: for reconciliation, not polling)."""
    per_meter = store.readings.rows_per_meter()
    return {"rows": per_meter, "total": sum(per_meter.values())}

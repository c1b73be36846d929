"""One live run (``twin run SCENARIO --live URL|spawn``, :func:`run_live`): the services set
up (spawned, or a running one checked), the world driven against them
(:mod:`twin.sil.live`) with their batch analysis (:class:`LiveServiceTime`), the ledger
checked against their stores, the results assembled as an in-process run's; and the files
a service is provisioned with (:func:`write_keyring`, :func:`write_sites`, also ``twin
keys``).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from pipeline import AnalysisOutcome, Pipeline, SiteMeta
from pipeline.serve.wire import analysis_from_json
from twin.accounting.ledger import LedgerError
from twin.accounting.records import ServiceTimeRecord
from twin.accounting.results import Results
from twin.errors import ScenarioError
from twin.runner import (
    STORE_NAME,
    assemble_results,
    fresh_store_path,
    seeded,
    site_records,
    upload_keys,
)
from twin.scenario.loader import Scenario
from twin.sil.live import LiveDelivery, LiveOptions, LiveReport, Target
from twin.sil.live_http import HttpBridge, ServiceProcess
from twin.sil.service_time import CostModel, ServiceTime
from twin.world.fleet import FleetData, build_fleets
from twin.world.world import World

__all__ = ["LiveServiceTime", "run_live", "write_keyring", "write_sites"]

#: Wall seconds one batch analysis may take (the first one compiles the detectors).
ANALYSIS_TIMEOUT_S = 900.0


class LiveServiceTime(ServiceTime):
    """The batch analysis of a live run: each service's own (``POST /v1/analyze`` at the
    simulated time), its detections and forecasts merged; its cost is the wall time the
    requests took. Uploads never come here (they go through :class:`LiveDelivery`)."""

    def __init__(self, delivery: LiveDelivery) -> None:
        super().__init__(CostModel({}, {}), mode="live")
        self.delivery = delivery

    def upload(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("a live run sends its uploads over HTTP (LiveDelivery)")

    def analysis(
        self, pipeline: Pipeline | None, now_epoch_s: int
    ) -> tuple[AnalysisOutcome, float]:
        merged = AnalysisOutcome(now_s=now_epoch_s)
        total_s = 0.0
        for target in self.delivery.distinct_targets():
            if not target.alive:
                continue
            try:
                status, body, latency_s = self.delivery.bridge.call(
                    "POST",
                    f"{target.url}/v1/analyze",
                    {"now": now_epoch_s},
                    timeout_s=ANALYSIS_TIMEOUT_S,
                )
            except httpx.HTTPError:
                continue  # the service is down: no analysis from it this time
            total_s += latency_s
            if status != 200 or body is None or not body.get("analysed"):
                continue
            part = analysis_from_json(body)
            merged = replace(
                merged,
                detections=merged.detections + part.detections,
                forecasts=merged.forecasts + part.forecasts,
                series_analysed=merged.series_analysed + part.series_analysed,
                points_analysed=merged.points_analysed + part.points_analysed,
                alerts_stored=merged.alerts_stored + part.alerts_stored,
            )
        return merged, total_s


def write_keyring(path: Path, keys: dict[str, bytes]) -> None:
    """The keyring file ``python -m pipeline serve --keyring`` reads: JSON ``{"keys":
    {meter id: hex key}}``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"keys": {meter_id: key.hex() for meter_id, key in keys.items()}}
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


def write_sites(path: Path, sites: list[SiteMeta]) -> None:
    """The site registry file ``python -m pipeline serve --sites`` reads: JSON ``{"sites":
    [SiteMeta fields, ...]}``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"sites": [asdict(site) for site in sites]}
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


def _running_service(
    options: LiveOptions, scenario: Scenario, bridge: HttpBridge
) -> tuple[list[Target], Scenario]:
    """The running service at ``options.target``, checked: it answers, its store is empty
    (the ledger is checked against it), and the token fits. Every MDC of the scenario
    acknowledges as it does."""
    url = options.target.rstrip("/")
    try:
        status, health, _ = bridge.call("GET", f"{url}/healthz", timeout_s=10.0)
        meters_status, meters, _ = bridge.call("GET", f"{url}/api/meters", timeout_s=60.0)
    except httpx.HTTPError as exc:
        raise ScenarioError("--live", url, f"a running MDC service ({exc})") from None
    if status != 200 or health is None or "ack" not in health:
        raise ScenarioError("--live", url, f"an MDC service (GET /healthz answered {status})")
    if meters_status == 401:
        raise ScenarioError("--token", options.token, "the service's bearer token")
    if meters_status != 200 or meters is None:
        raise ScenarioError("--live", url, f"an MDC service (GET /api/meters: {meters_status})")
    if meters["total"]:
        raise ScenarioError(
            "--live",
            url,
            f"a service on a new store (it holds {meters['total']} readings already, and the "
            "ledger is checked against it: start it on a new --db)",
        )
    ack = str(health["ack"])
    scenario = replace(scenario, mdcs=tuple(replace(m, ack=ack) for m in scenario.mdcs))
    return [Target("service", url, ack)], scenario


def _spawned_services(
    options: LiveOptions,
    scenario: Scenario,
    fleets: list[FleetData],
    keys: dict[str, bytes],
    folder: Path,
    bridge: HttpBridge,
) -> tuple[list[Target], list[Path]]:
    """One service per MDC of the scenario, started on a free loopback port with its own
    store in ``folder`` (``store.sqlite`` for a single MDC, else ``store-NAME.sqlite``),
    the scenario's keys, sites and the MDC's ack mode; the batch analysis on request."""
    keyring, sites = folder / "keyring.json", folder / "sites.json"
    write_keyring(keyring, keys)
    write_sites(sites, site_records(fleets))
    targets, stores = [], []
    single = len(scenario.mdcs) == 1
    for spec in scenario.mdcs:
        store = fresh_store_path(folder, STORE_NAME if single else f"store-{spec.name}.sqlite")
        args = ["--db", str(store), "--keyring", str(keyring), "--sites", str(sites)]
        args += ["--ack", spec.ack, "--analyze-every", "off"]
        if options.commit_wait_s is not None:
            args += ["--commit-wait", f"{options.commit_wait_s}s"]
        process = ServiceProcess(spec.name, args, folder / f"service-{spec.name}.log")
        targets.append(Target(spec.name, "", spec.ack, process))  # started below
        stores.append(store)
    for target in targets:
        assert target.process is not None
        target.url = target.process.start(bridge)
    return targets, stores


def _check_rows(world: World, rows: dict[str, int]) -> None:
    """Every meter's rows in the services' stores are its readings the ledger counts as
    stored, times its channels (and no other meter has any)."""
    expected = world.n_channels * world.ledger.stored_per_meter()
    wrong = {
        meter_id: (rows.get(meter_id, 0), int(expected[i]))
        for i, meter_id in enumerate(world.meter_ids)
        if rows.get(meter_id, 0) != int(expected[i])
    }
    wrong.update({m: (n, 0) for m, n in rows.items() if m not in world.index})
    if wrong:
        sample = ", ".join(
            f"{m}: {got} rows, ledger {want}" for m, (got, want) in list(wrong.items())[:5]
        )
        raise LedgerError(
            f"the services' stores and the ledger disagree on {len(wrong)} meters ({sample})"
        )


def run_live(
    scenario: Scenario,
    options: LiveOptions,
    seed: int | None = None,
    *,
    store_dir: str | Path | None = None,
    progress: Callable[[float], None] | None = None,
    audit_every_s: float | None = None,
) -> tuple[Results, LiveReport]:
    """Simulate ``scenario`` with its uploads delivered to real services (see
    :mod:`twin.sil.live`); the results, checked against the services' stores, and what the
    run saw of the services. Spawned services keep their stores (and logs, keyring and
    site registry) in ``store_dir`` (else a temporary folder) and are stopped at the end.

    Raises:
        ScenarioError: options or a scenario a live run cannot take (a bad target, an
            unauthenticated fleet, a kill fault without spawned services).
        LedgerError: the ledger and the services' stores disagree.
    """
    options.check()
    scenario, seed = seeded(scenario, seed)
    if not scenario.pipeline.authenticate:
        raise ScenarioError(
            "pipeline.authenticate", False, "true: the live service takes sealed uploads only"
        )
    t0 = time.perf_counter()
    fleets = build_fleets(scenario)
    keys = upload_keys(scenario, fleets)
    bridge = HttpBridge(options.concurrency, options.timeout_s, options.token)
    targets: list[Target] = []
    try:
        with tempfile.TemporaryDirectory(prefix="twin-live-") as tmp:
            folder = Path(store_dir) if store_dir is not None else Path(tmp)
            folder.mkdir(parents=True, exist_ok=True)
            stores: list[Path] = []
            if options.target == "spawn":
                targets, stores = _spawned_services(options, scenario, fleets, keys, folder, bridge)
                mdc_target = list(range(len(targets)))
            else:
                targets, scenario = _running_service(options, scenario, bridge)
                mdc_target = [0] * len(scenario.mdcs)
            delivery = LiveDelivery(options, targets, mdc_target, bridge)
            service_time = LiveServiceTime(delivery)
            world = World(
                scenario, seed, fleets, None, service_time, progress, audit_every_s, keys,
                live=delivery,
            )  # fmt: skip
            if options.target != "spawn" and any(m.power_losses for m in world.mdcs):
                raise ScenarioError(
                    "--live",
                    options.target,
                    "spawn: an mdc_power_loss fault kills the service, so the run must start it",
                )
            world.run()
            rows = delivery.rows_per_meter()
            _check_rows(world, rows)
            recommendations = delivery.recommendations()
            for target in targets:
                if target.process is not None:
                    target.process.stop()
    finally:
        for target in targets:
            if target.process is not None:
                with contextlib.suppress(Exception):
                    target.process.kill()
        bridge.close()
    record = ServiceTimeRecord(
        mode="live",
        cost_model="none (live service)",
        calibrated_on={},
        pipeline_sample_rate=1.0,
        uploads_run=sum(delivery.answers.values()),
        uploads_modelled=0,
        rows_modelled=0,
    )
    results = assemble_results(
        world,
        fleets,
        stored_rows=int(np.sum(list(rows.values()))),
        recommendations=recommendations,
        service_time=record,
        store_path=str(stores[0]) if store_dir is not None and len(stores) == 1 else None,
        t0=t0,
    )
    return results, delivery.report()

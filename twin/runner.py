"""``run(scenario, seed) -> Results``: one simulation, start to finish.

A run is a pure call (DESIGN.md §10): everything it reports is in the returned
:class:`~twin.accounting.results.Results`, which pickles, so sweeps and executors can run it
in other processes. Its one output on disk is the pipeline's own SQLite store, which the
real pipeline writes as the run goes: ``store_dir`` keeps it (``store.sqlite``, replacing
one there), otherwise it lives in a temporary folder removed at the end. Writing the
other files is the caller's (:mod:`twin.outputs.files`).
"""

from __future__ import annotations

import dataclasses
import platform
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np

from pipeline import Keyring, Pipeline, Recommendation, SiteMeta
from twin.accounting.forecasts import score_forecasts_by_kind
from twin.accounting.kpi_names import check_slos
from twin.accounting.kpis import assemble_kpis
from twin.accounting.ledger import LedgerError
from twin.accounting.records import LedgerRecord, ServiceTimeRecord
from twin.accounting.results import Results
from twin.accounting.scoring import daylight_start, score_analytics
from twin.accounting.series import LatencyDistribution, RunSeries, timeseries_table
from twin.rng import component_rng
from twin.scenario.loader import Scenario
from twin.sil.pipeline_worker import PipelineWorker
from twin.sil.service_time import SERVICE_TIME_MODES, load_cost_model
from twin.world.fleet import FleetData, build_fleets
from twin.world.weather_feed import station_keys
from twin.world.world import World

STORE_NAME = "store.sqlite"


def software_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for dist in ("imdc-twin", "simpy", "numpy", "numba", "lxml", "pvlib", "windpowerlib"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "unknown"
    return versions


def site_records(fleets: list[FleetData]) -> list[SiteMeta]:
    """The commissioning record of every site, as the MDC's asset registry holds it."""
    sites = []
    for f in fleets:
        for i, meter_id in enumerate(f.meter_ids):
            pv = f.spec.kind == "pv"
            sites.append(
                SiteMeta(
                    site_id=meter_id,
                    kind=f.spec.kind,
                    capacity_w=float(
                        f.params["capacity_kw"][i] * 1000.0 if pv else f.nominal_power_w[i]
                    ),
                    latitude_deg=float(f.latitude_deg[i]),
                    longitude_deg=float(f.longitude_deg[i]),
                    altitude_m=f.altitude_m,
                    tilt_deg=float(f.params["tilt_deg"][i]) if pv else 0.0,
                    azimuth_deg=float(f.params["azimuth_deg"][i]) if pv else 180.0,
                    ac_nameplate_w=float(f.nominal_power_w[i]) if pv else None,
                )
            )
    return sites


def meter_keys(scenario: Scenario, fleets: list[FleetData]) -> dict[str, bytes]:
    """Each meter's 32-byte HMAC-SHA256 key (RFC 2104: a key as long as the hash output),
    drawn from the meter's own stream: the keyring the MDC is provisioned with."""
    return {
        m: component_rng(scenario.seed, f"meter/{m}/hmac-key").bytes(32)
        for f in fleets
        for m in f.meter_ids
    }


def upload_keys(scenario: Scenario, fleets: list[FleetData]) -> dict[str, bytes]:
    """The key of everything that uploads to the MDC: the meters' (:func:`meter_keys`) and
    the met stations' (:func:`twin.world.weather_feed.station_keys`)."""
    return meter_keys(scenario, fleets) | station_keys(scenario)


def _fresh_store(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def seeded(scenario: Scenario, seed: int | None) -> tuple[Scenario, int]:
    """The scenario with ``seed`` (default: the scenario's; an integer >= 0) as its seed."""
    seed = scenario.seed if seed is None else seed
    if seed < 0:
        raise ValueError(f"seed = {seed}: expected an integer >= 0")
    if seed != scenario.seed:
        scenario = dataclasses.replace(scenario, seed=seed)
    return scenario, seed


def fresh_store_path(folder: Path, name: str = STORE_NAME) -> Path:
    """``folder/name`` (the folder made if missing), with any store there removed."""
    folder.mkdir(parents=True, exist_ok=True)
    store_path = folder / name
    _fresh_store(store_path)
    return store_path


def run(
    scenario: Scenario,
    seed: int | None = None,
    *,
    store_dir: str | Path | None = None,
    progress: Callable[[float], None] | None = None,
    audit_every_s: float | None = None,
    pipeline_workers: int = 0,
) -> Results:
    """Simulate ``scenario`` with ``seed`` (default: the scenario's; an integer >= 0). The
    pipeline's store goes to ``store_dir`` (module docstring); ``progress`` is called with
    the simulated time now and then; ``audit_every_s`` re-checks the ledger's balance during
    the run (a :class:`~twin.accounting.ledger.LedgerError` if it fails).
    ``pipeline_workers``: 1 runs the pipeline in a worker process beside the simulation
    (:mod:`twin.sil.pipeline_worker`) in ``calibrated`` and ``model`` mode, the same
    results; 0 (and ``measured`` mode, which times the calls) in this process. More
    workers than 1 would share the store's one SQLite writer: refused."""
    if pipeline_workers not in (0, 1):
        raise ValueError(f"pipeline_workers = {pipeline_workers!r}: expected 0 or 1")
    scenario, seed = seeded(scenario, seed)
    check_slos(scenario.slo, "slo")
    t0 = time.perf_counter()
    cost_model = load_cost_model(scenario.pipeline.cost_model)
    service_time = SERVICE_TIME_MODES[scenario.pipeline.service_time](
        cost_model,
        scenario.pipeline.pipeline_sample_rate,
        component_rng(seed, "pipeline/sample"),
    )
    fleets = build_fleets(scenario)
    with tempfile.TemporaryDirectory(prefix="twin-") as tmp:
        store_path = fresh_store_path(Path(store_dir) if store_dir is not None else Path(tmp))
        keys = upload_keys(scenario, fleets) if scenario.pipeline.authenticate else None
        end_s = int(scenario.start.timestamp()) + int(scenario.duration_s)
        if pipeline_workers and service_time.costs_by_model:
            with PipelineWorker(store_path, keys, site_records(fleets)) as worker:
                world = World(
                    scenario, seed, fleets, worker, service_time, progress, audit_every_s, keys
                )
                world.run()
                stored_rows, recommendations = worker.finish(end_s)
        else:
            with Pipeline(store_path, keyring=None if keys is None else Keyring(keys)) as pipeline:
                for site in site_records(fleets):
                    pipeline.register_site(site)
                world = World(
                    scenario, seed, fleets, pipeline, service_time, progress, audit_every_s, keys
                )
                world.run()
                stored_rows = pipeline.store.readings.count()
                recommendations = pipeline.recommendations(end_s)
    ledger, counters = world.ledger, world.counters
    # the database also holds readings whose (simulated) commit ends after the horizon: the
    # ledger counts those as in flight, but they are in its STORED state already
    expected_rows = int(np.dot(world.n_channels, ledger.stored_per_meter()))
    modelled = counters.rows_modelled  # model mode: counted as stored, never written
    if not stored_rows <= expected_rows <= stored_rows + modelled or (
        not modelled and stored_rows != expected_rows
    ):
        raise LedgerError(
            f"store holds {stored_rows} rows, the ledger says {ledger.stored} readings "
            f"({expected_rows} rows over their channels, {modelled} of them modelled)"
        )
    record = ServiceTimeRecord(
        mode=scenario.pipeline.service_time,
        cost_model=scenario.pipeline.cost_model,
        calibrated_on=cost_model.machine,
        pipeline_sample_rate=scenario.pipeline.pipeline_sample_rate,
        uploads_run=service_time.uploads_run,
        uploads_modelled=service_time.uploads_modelled,
        rows_modelled=modelled,
    )
    return assemble_results(
        world,
        fleets,
        stored_rows=stored_rows,
        recommendations=recommendations,
        service_time=record,
        store_path=str(store_path) if store_dir is not None else None,
        t0=t0,
    )


def assemble_results(
    world: World,
    fleets: list[FleetData],
    *,
    stored_rows: int,
    recommendations: list[Recommendation],
    service_time: ServiceTimeRecord,
    store_path: str | None,
    t0: float,
) -> Results:
    """The :class:`Results` of a finished ``world`` (its rows already checked against the
    store, ``stored_rows``); ``t0`` is the run's ``time.perf_counter()`` at its start."""
    scenario, seed = world.scenario, world.seed
    horizon_s = scenario.duration_s
    ledger, counters = world.ledger, world.counters
    snapshot = ledger.audit(horizon_s)
    wall_time_s = time.perf_counter() - t0
    fleet_series = tuple(f.series() for f in fleets)
    consumed = {f.spec.name: f.energy_consumed_kwh() for f in fleets}
    kpis = assemble_kpis(
        snapshot,
        ledger,
        counters,
        world.net.all_cells(),
        [m.pool for m in world.mdcs],
        world.net.hops,
        len(world.detections),
        {f.spec.name: f.energy_generated_kwh() for f in fleets},
        {name: kwh for name, kwh in consumed.items() if kwh is not None},
        horizon_s,
    )
    ground_truth = [r for f in fleets for r in f.ground_truth]
    hops = world.net.hops
    return Results(
        scenario=scenario,
        seed=seed,
        kpis=kpis,
        ledger=LedgerRecord(
            balanced=snapshot.balanced,
            generated=snapshot.generated,
            stored=snapshot.stored,
            lost=snapshot.lost,
            in_flight=snapshot.in_flight,
            duplicates=snapshot.duplicates,
            store_rows=stored_rows,
            committing_at_end=ledger.stored - snapshot.stored,
        ),
        rejections=counters.rejections,
        faults=world.fault_log,
        mdcs=[m.report(horizon_s) for m in world.mdcs],
        network=world.net.stats(counters),
        service_time=service_time,
        software=software_versions(),
        wall_time_s=wall_time_s,
        store_path=store_path,
        series=RunSeries(
            fleet_series,
            timeseries_table(
                fleet_series, ledger, world.samples, world.sample_columns(), horizon_s
            ),
            LatencyDistribution.of(ledger.latencies_s()),
            {hop: LatencyDistribution.of(hops.values(hop)) for hop in hops.hops},
        ),
        ground_truth=ground_truth,
        detections=world.detections,
        analytics=score_analytics(
            ground_truth,
            world.detections,
            world.events,
            daylight_start(
                {
                    m: (float(f.latitude_deg[i]), float(f.longitude_deg[i]), f.spec.kind)
                    for f in fleets
                    for i, m in enumerate(f.meter_ids)
                },
                world.epoch_s,
            ),
        ),
        events=world.events,
        recommendations=recommendations,
        recommendations_issued=world.recommendations,
        digests=world.digests,
        forecasts=score_forecasts_by_kind(
            world.forecasts,
            {m: p for f in fleets for m, p in f.site_power().items()},
            world.epoch_s,
            {m: f.spec.kind for f in fleets for m in f.meter_ids},
        ),
        weather_feed=[f.record for f in world.feeds],
    )

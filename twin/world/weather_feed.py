"""Each region's weather feed in the run: its met station (:mod:`meters.weather_station`,
from the scenario's weather at the region's centre) uploads its observations every
``[weather.feed] upload`` and each issue of the forecast product when issued, sealed with
the station's own key, through the region's first cell, the home MDC's gateway and tunnel
(the backbone when the router fails over) to a core of the MDC, where the real pipeline
stores them (``docs/upload-format.md`` §6), as a meter's uploads go
(:mod:`twin.world.journey`). In a live run the MDC's real service stores them: past the
gateway the upload is POSTed to it as a meter's is
(:meth:`twin.sil.live.LiveDelivery.serve_station`), and the service's keyring holds the
stations' keys.

The station's uploads are accounted apart from the meters' ledger (:class:`FeedRecord`):
they share the cell, the tunnel and the MDC's cores with the meters (so they take their
share of radio access, bytes and CPU), but they are not readings of a meter. A failed
upload is kept and re-sent with the next one (store and forward; the station's memory
holds the run).
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy

from hw_models.server import JobLost, Server, ServiceDemand
from meters.weather import clearsky_ghi, epoch_s_to_index
from meters.weather_station import (
    ForecastIssue,
    StationObservations,
    StationSpec,
    encode_forecast,
    encode_observations,
    forecast_product,
    station_observations,
)
from network.cellular import AttemptResult, upload_with_retries
from pipeline import UploadOutcome, seal
from twin.rng import component_rng
from twin.scenario.loader import Scenario
from twin.sil.pipeline_worker import Expected, PipelineWorker
from twin.sil.service_time import PipelineCalls, ServiceTime
from twin.world.fleet import load_weather
from twin.world.mdc import Mdc
from twin.world.network import WorldNetwork

if TYPE_CHECKING:
    from twin.sil.live import LiveDelivery

__all__ = ["FeedRecord", "StationUplink", "station_ids", "station_keys"]


def station_ids(scenario: Scenario) -> list[str]:
    """The id of each region's met station (``met-{region}``), none without the feed."""
    if not scenario.weather.feed.enabled:
        return []
    return [f"met-{region}" for region in scenario.regions]


def station_keys(scenario: Scenario) -> dict[str, bytes]:
    """Each station's 32-byte HMAC key, drawn from its own stream (as the meters')."""
    return {
        s: component_rng(scenario.seed, f"station/{s}/hmac-key").bytes(32)
        for s in station_ids(scenario)
    }


@dataclass
class FeedRecord:
    """What one station's feed did over the run: observations recorded and lost to the
    station's outages, forecast issues made; uploads started, acknowledged (stored by the
    MDC), failed (re-sent later) and rejected; values the MDC stored and took as
    duplicates; the station's outage windows (s after the start)."""

    station_id: str
    region: str
    observations: int = 0
    observations_missing: int = 0
    forecast_issues: int = 0
    uploads_started: int = 0
    uploads_acknowledged: int = 0
    uploads_failed: int = 0
    uploads_rejected: int = 0
    values_stored: int = 0
    values_duplicate: int = 0
    outages: list[tuple[float, float]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class StationUpload:
    """One upload of a station: its bytes (sealed with the station's key when the run
    authenticates), its sequence number and the values it carries (intervals of its
    observations, or steps of its forecast issue: what the pipeline counts as read)."""

    body: bytes
    sequence_no: int
    n_values: int


def _hourly(x: np.ndarray, per_hour: int) -> np.ndarray:
    n = len(x) // per_hour
    return np.asarray(x[: n * per_hour].reshape(n, per_hour).mean(axis=1))


class StationUplink:
    """One region's met station, its forecast product and its uploads (module docstring)."""

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        region: str,
        centre: tuple[float, float],
        net: WorldNetwork,
        mdcs: list[Mdc],
        pipeline: PipelineCalls | None,
        service_time: ServiceTime,
        key: bytes | None,
        live: LiveDelivery | None = None,
    ) -> None:
        feed = scenario.weather.feed
        self.env = env
        self.net = net
        self.mdcs = mdcs
        self.pipeline = pipeline
        self.live = live
        self.service_time = service_time
        #: The pipeline when it runs in a worker that need not be waited for on an upload
        #: whose outcome is known (:meth:`_predictable`), and the newest sequence number
        #: handed to the pipeline.
        self.worker = pipeline if isinstance(pipeline, PipelineWorker) else None
        self.newest_handed = -1
        self.key = key
        self.epoch_s = int(scenario.start.timestamp())
        self.upload_s = feed.upload_s
        station_id = f"met-{region}"
        lat, lon = centre
        weather = load_weather(
            scenario, feed.sample_s, [station_id], np.array([lat]), np.array([lon])
        )
        self.spec = StationSpec(
            station_id,
            lat,
            lon,
            weather.altitude_m,
            weather.wind_height_m,
            feed.sample_s,
            feed.outage_mtbf_s,
            feed.outage_mttr_s,
        )

        def rng_for(key: str) -> np.random.Generator:
            return component_rng(scenario.seed, key)

        ghi, temp_air, wind_speed = (
            np.atleast_2d(getattr(weather, q))[0] for q in ("ghi", "temp_air", "wind_speed")
        )
        self.obs: StationObservations = station_observations(
            self.spec, ghi, temp_air, wind_speed, rng_for
        )
        self.record = FeedRecord(station_id, region)
        missing = np.isnan(self.obs.ghi)
        self.record.observations = int(np.count_nonzero(~missing))
        self.record.observations_missing = int(np.count_nonzero(missing))
        self.record.outages = _runs_s(missing, feed.sample_s)
        self.issues: list[ForecastIssue] = []
        per_hour = round(3600.0 / feed.sample_s)
        if feed.forecast and len(ghi) >= per_hour:
            fine = self.epoch_s + (np.arange(len(ghi)) + 0.5) * feed.sample_s
            clear, _ = clearsky_ghi(epoch_s_to_index(fine), lat, lon, weather.altitude_m)
            self.issues = forecast_product(
                self.spec,
                _hourly(ghi, per_hour),
                _hourly(clear, per_hour),
                _hourly(temp_air, per_hour),
                _hourly(wind_speed, per_hour),
                0.0,
                rng_for(f"station/{station_id}/forecast"),
            )
        self.record.forecast_issues = len(self.issues)
        self.cell = net.cells[region][0]
        self.home = next((m.name for m in mdcs if m.region == region), mdcs[0].name)
        self.rng = rng_for(f"station/{station_id}/network")
        self.sequence_no = 0
        self.sent_upto = 0  # observations [0, sent_upto) are stored at the MDC

    # -- processes -------------------------------------------------------------------------
    def run(self) -> Generator[simpy.Event, Any, None]:
        """Upload the observations every ``upload_s`` and each forecast issue when issued."""
        issues = list(self.issues)
        pending: list[StationUpload] = []
        t = 0.0
        while True:
            due = [i for i in issues if i.issued_s <= t]
            issues = issues[len(due) :]
            for issue in due:
                self.sequence_no += 1
                body = encode_forecast(self.spec, self.sequence_no, issue, self.epoch_s)
                n_steps = int(np.count_nonzero(issue.reached))
                pending.append(StationUpload(self._sealed(body), self.sequence_no, n_steps))
            if t > 0:
                hi = min(round(t / self.spec.sample_s), len(self.obs.ghi))
                if hi > self.sent_upto:
                    ok = yield from self._send(self._observations(self.sent_upto, hi))
                    if ok:
                        self.sent_upto = hi
            while pending:
                if not (yield from self._send(pending[0])):
                    break
                pending.pop(0)
            t += self.upload_s
            while t <= self.env.now:  # an upload that retried past its next turn
                t += self.upload_s
            yield self.env.timeout(t - self.env.now)

    def _observations(self, lo: int, hi: int) -> StationUpload:
        self.sequence_no += 1
        obs = self.obs
        body = encode_observations(
            self.spec,
            self.sequence_no,
            self.epoch_s + round(lo * obs.sample_s),
            round(obs.sample_s),
            {"ghi": obs.ghi[lo:hi], "temp_air": obs.temp_air[lo:hi],
             "wind_speed": obs.wind_speed[lo:hi]},
            self.epoch_s + round(self.env.now),
        )  # fmt: skip
        return StationUpload(self._sealed(body), self.sequence_no, hi - lo)

    def _sealed(self, body: bytes) -> bytes:
        if self.key is None:
            return body
        return seal(self.spec.station_id, self.sequence_no, body, self.key)

    def _send(self, upload: StationUpload) -> Generator[simpy.Event, Any, bool]:
        """One upload with the cell's retries; True when the MDC stored it and the station
        got the acknowledgement."""
        self.record.uploads_started += 1
        result = yield from upload_with_retries(
            self.cell, len(upload.body), self.rng, 0, _StationHooks(self, upload)
        )
        if result.acknowledged:
            self.record.uploads_acknowledged += 1
        else:
            self.record.uploads_failed += 1
        return result.acknowledged

    def deliver(self, upload: StationUpload) -> Generator[simpy.Event, Any, bool]:
        """The upload crossed the cell: gateway, tunnel, backbone and a core of the MDC,
        where the real pipeline stores it; then the acknowledgement back."""
        env, net = self.env, self.net
        body = upload.body
        name, backbone_s = net.router.route(self.home, env.now)
        if name is None:
            return False
        k = net.index[name]
        delivery = net.gateways[k].send(env.now, len(body))
        if not delivery.accepted or math.isinf(delivery.arrival_s):
            return False
        yield env.timeout(delivery.arrival_s - env.now + backbone_s)
        mdc = self.mdcs[k]
        if not mdc.is_up(env.now):
            return False
        if self.live is not None:  # the MDC's real service stores it (twin.sil.live)
            outcome = yield from self.live.serve_station(body, k)
            if outcome is None:
                return False
            self._count(outcome)
            yield env.timeout(backbone_s + self.cell.ack_latency_s(self.rng, 0))
            return outcome.accepted
        pipeline = self.pipeline
        assert pipeline is not None  # an in-process run has its pipeline
        stored: list[bool] = []

        def work(server: Server) -> ServiceDemand:
            if self.worker is not None and self._predictable(upload):
                # accepted with the values it carries, at the cost model's time for them
                # (what the in-process run gives it); its rows come back with its outcome
                service_s = self.service_time.known_upload(len(body), upload.n_values)
                expected = Expected(self.spec.station_id, upload.sequence_no, upload.n_values, None)
                self.worker.submit(body, expected, self._count)
                stored.append(True)
            else:
                outcome, service_s = self.service_time.upload(pipeline, body, force=True)
                stored.append(outcome.accepted)
                self._count(outcome)
            self.newest_handed = max(self.newest_handed, upload.sequence_no)
            return ServiceDemand({"pipeline": service_s})

        try:
            yield from mdc.serve(work, len(body), ("station", self.spec.station_id))
        except JobLost:
            return False
        yield env.timeout(backbone_s + self.cell.ack_latency_s(self.rng, 0))
        return bool(stored and stored[0])

    def _predictable(self, upload: StationUpload) -> bool:
        """Whether the pipeline is known to accept ``upload``, reading its values: a genuine
        station upload (no fault acts on the stations' uploads) that carries values, newer
        than any the pipeline was handed (so no replay), and of a size always admitted
        (:meth:`pipeline.Limits.size_always_admitted`); as a meter's upload in
        :mod:`twin.sil.pipeline_worker`."""
        assert self.worker is not None
        return (
            upload.n_values > 0
            and upload.sequence_no > self.newest_handed
            and self.worker.limits.size_always_admitted(len(upload.body))
        )

    def _count(self, outcome: UploadOutcome) -> None:
        self.record.values_stored += outcome.inserted
        self.record.values_duplicate += outcome.duplicates
        if not outcome.accepted:
            self.record.uploads_rejected += 1


def _runs_s(mask: np.ndarray, step_s: float) -> list[tuple[float, float]]:
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.diff(padded)
    return [
        (float(a * step_s), float(b * step_s))
        for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True)
    ]


class _StationHooks:
    """Retry hooks of a station upload (:class:`network.cellular.RetryHooks`): the station
    is always powered and resumes its TLS session; a delivered attempt goes on to the
    MDC (:meth:`StationUplink.deliver`)."""

    __slots__ = ("uplink", "upload")

    def __init__(self, uplink: StationUplink, upload: StationUpload) -> None:
        self.uplink = uplink
        self.upload = upload

    def powered(self) -> bool:
        return True

    def handshake(self) -> str | None:
        uplink = self.uplink
        name, _ = uplink.net.router.route(uplink.home, uplink.env.now)
        return None if name is None else "resume"

    def failed(self, result: AttemptResult) -> None:
        return None

    def delivered(self, result: AttemptResult) -> Generator[simpy.Event, Any, bool]:
        if result.ack_lost:
            yield from self.uplink.deliver(self.upload)
            yield self.uplink.env.timeout(self.uplink.cell.profile.ack_timeout_s)
            return False
        return (yield from self.uplink.deliver(self.upload))

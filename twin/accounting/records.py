"""Flat typed records of one run, each with ``to_json()`` (its part of ``results.json``):
the ledger, each world fault and what became of it, each detection of the MDC's analytics,
the service-time mode, the network and each VPN tunnel. Times are s after the scenario's
start unless a name says otherwise; units are in the names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline import Recommendation


@dataclass(frozen=True)
class LedgerRecord:
    """The ledger at the end of the run, in readings (DESIGN.md §3). ``balanced``:
    ``generated == stored + sum(lost) + in_flight``; ``store_rows``: rows in the pipeline's
    store (readings x channels); ``committing_at_end``: readings the pipeline had written
    whose commit ends after the horizon (counted in flight)."""

    balanced: bool
    generated: int
    stored: int
    lost: dict[str, int]  # cause -> readings
    in_flight: int
    duplicates: int
    store_rows: int
    committing_at_end: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class HostileSend:
    """What became of an upload fault: the ``payload`` it sent, when it went out
    (``sent_at_s``, None if never) and whether it reached an MDC (``delivered``)."""

    payload: str
    sent_at_s: float | None = None
    delivered: bool = False


@dataclass(frozen=True, slots=True)
class DrainRecord:
    """How the backlog of a fault that cut meters off drained (bounds, see
    :meth:`twin.accounting.ledger.Ledger.drain_s`): ``meters_affected``; ``drain_s`` from the
    fault's end to the last commit of their readings up to it (None: none after it);
    ``pending``: those readings neither stored nor lost at the end; and for outages the peak
    of random-access attempts per second after it (``reconnect_peak_per_s``, None
    otherwise)."""

    meters_affected: int
    drain_s: float | None
    pending: int
    reconnect_peak_per_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.reconnect_peak_per_s is None:
            del data["reconnect_peak_per_s"]
        return data


@dataclass(slots=True)
class FaultRecord:
    """One world fault (:data:`twin.world.faults.WORLD_FAULTS`) and what became of it:
    ``index`` in the scenario's faults, ``kind``, ``at_s``, ``duration_s`` (None: the kind
    has none), its target (``region`` and ``cell``, ``mdc`` or ``meter_id``; None where the
    kind has none), what its effect reports (``effect``: degraded coverage's parameters, the
    outages a flapping cell drew), an upload fault's :class:`HostileSend`, the drain of a
    fault that cut meters off, and ``lost``: the readings this fault lost, each loss of the
    run counted for at most the one fault that caused it (:mod:`twin.accounting.attribution`;
    None until the run has ended). ``to_json`` leaves out what does not apply to the
    kind."""

    index: int
    kind: str
    at_s: float
    duration_s: float | None = None
    region: str | None = None
    cell: int | None = None
    mdc: str | None = None
    meter_id: str | None = None
    effect: dict[str, float] = field(default_factory=dict)
    hostile: HostileSend | None = None
    drain: DrainRecord | None = None
    lost: int | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"index": self.index, "kind": self.kind, "at_s": self.at_s}
        for name in ("duration_s", "region", "cell", "mdc", "meter_id", "lost"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        data |= self.effect
        if self.hostile is not None:
            data |= asdict(self.hostile)
        if self.drain is not None:
            data |= self.drain.to_json()
        return data


@dataclass(frozen=True, slots=True)
class DetectionRecord:
    """A fault or anomaly the MDC's batch analytics reported on series ``series_id``: the
    window ``[start_s, end_s]`` it covers, when the evidence sufficed (``detected_s``),
    when the analysis that found it ended on its core (``reported_s``), its ``confidence``
    (0..1) and ``message``."""

    kind: str
    series_id: str
    start_s: float
    end_s: float
    detected_s: float
    reported_s: float
    confidence: float
    message: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class IssuedRecommendation:
    """A recommendation the MDC's analytics issued with a new alert
    (:class:`pipeline.Recommendation`), and when the analysis that issued it ended on its
    core (``reported_s``, s after the start)."""

    reported_s: float
    recommendation: Recommendation

    def to_json(self) -> dict[str, Any]:
        return self.recommendation.to_json() | {"reported_s": self.reported_s}


@dataclass(frozen=True)
class ServiceTimeRecord:
    """How the pipeline's service time was obtained (DESIGN.md §4): the ``mode``, the
    ``cost_model`` named and the machine it was fitted on (``calibrated_on``), the
    ``pipeline_sample_rate``, uploads the real pipeline ran and uploads only costed by the
    model, and the rows counted as stored for those (``rows_modelled``)."""

    mode: str
    cost_model: str
    calibrated_on: dict[str, Any]
    pipeline_sample_rate: float
    uploads_run: int
    uploads_modelled: int
    rows_modelled: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TunnelRecord:
    """One MDC gateway's VPN tunnel over the run: time down (s), rekeys and drops, uploads
    its buffer held while the tunnel was down, the buffer's peak (bytes), uploads lost to
    its overflow and bytes sent on the wire."""

    mdc: str
    down_s: float
    rekeys: int
    drops: int
    buffered_uploads: int
    buffer_peak_bytes: int
    overflowed_uploads: int
    wire_bytes: int


@dataclass(frozen=True)
class NetworkRecord:
    """Counts of the network over the run: cells, meters per coverage class, preamble
    collisions, random-access failures, full and resumed handshakes, failovers to another
    MDC, routings that found no healthy MDC, uploads pushed back into a gateway by a full
    MDC memory (and lost to its overflow), uploads a gateway kept for its dark MDC, one
    :class:`TunnelRecord` per MDC; the largest upload (bytes), attempts that found no MDC
    to take them and uploads lost in an MDC's memory."""

    cells: int
    coverage_meters: dict[str, int]
    preamble_collisions: int
    ra_failures: int
    full_handshakes: int
    resumed_handshakes: int
    failovers: int
    no_healthy_mdc: int
    pushed_back_uploads: int
    pushback_overflows: int
    held_for_mdc_uploads: int
    vpn: list[TunnelRecord]
    upload_bytes_max: int
    attempts_unroutable: int
    uploads_lost_at_mdc: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

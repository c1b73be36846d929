"""Cellular cells carrying meter uploads: LTE-M and NB-IoT profiles, a simple cell and a
shared cell with contention.

Per-packet detail is folded into closed-form times so that an upload attempt costs a
handful of SimPy events whatever its size.

``Cell`` (the walking skeleton's model, kept unchanged for its callers): access latency +
payload / uplink rate, attempt loss, outages, degraded-coverage windows. One event.

``SharedCell`` (same interface, extra keyword arguments): the cell is shared by all its
meters. An attempt is

1. wake-up (power-saving mode and coverage class, ``network.radio``);
2. random access on the PRACH of the meter's coverage class, slotted ALOHA with preamble
   retries after the backoff indicator (``network.contention.PrachChannel``): one event per
   preamble try; failure after ``max_preamble_tx`` tries;
3. RRC connection set-up (log-normal, scaled by the class) and the transport handshake
   (TCP + TLS full or resumed + MQTT CONNECT, ``network.transport``): round trips of the
   class plus the downlink handshake bytes; one event;
4. the uplink bytes (handshake, request, headers and retransmitted segments) on the
   cell's shared uplink, first come first served over its channels in closed form
   (``network.contention.SharedUplink``), plus one RTO stall per lost segment and half a
   round trip to the core; one event.

So an attempt costs three events without collisions. Upload latency grows with the load
through PRACH collisions and the uplink queue. Random draws come from the generator of the
meter making the attempt.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import numpy as np
import simpy

from network.backoff import BACKOFF_JITTER, backoff_s, envelope_s
from network.contention import PrachChannel, SharedUplink
from network.distributions import LogNormal, LogNormalPlusUniform
from network.faults import (
    RECONNECT_SPREAD,
    Degradation,
    LinkCondition,
    OutageSchedule,
    condition_at,
    reconnect_delay_s,
)
from network.hops import GrowableArray
from network.radio import (
    LTE_M_COVERAGE,
    LTE_M_PRACH,
    NB_IOT_COVERAGE,
    NB_IOT_PRACH,
    POWER_SAVING_MODES,
    CoverageClass,
    PrachConfig,
)
from network.transport import (
    HANDSHAKE_KINDS,
    TRANSPORTS,
    Exchange,
    TransportProfile,
    retransmission_pmf,
    retransmissions,
    rto_s,
)


@dataclass(frozen=True)
class CellularProfile:
    """Parameters of a cellular network as one meter sees it.

    Defaults (``lte-m``): LTE-M (Cat-M1) half-duplex FDD peak uplink is about 375 kbit/s
    (3GPP TS 36.306 Rel-13 UE category M1; GSMA "LTE-M Deployment Guide" 2019); we take a
    sustained application rate of half of that, and 150 kbit/s downlink (half the HD-FDD
    peak of about 300 kbit/s, same sources). The RRC/NAS set-up after random access
    (RRC connection set-up complete, security, data bearer; TS 36.331 §5.3.3, TS 23.401
    §5.3.4) is log-normal with median 0.18 s and sigma 0.5: with the normal class's random
    access it makes the idle-to-connected promotion about 0.26 s, the figure measured on a
    commercial LTE network by Huang et al. (MobiSys 2012; LTE-M in normal coverage runs
    the same procedure); the coverage classes scale it (``network.radio``).

    Shared-cell fields (used by ``SharedCell``): ``coverage`` and ``prach`` per coverage
    class (``network.radio``, sources there); ``uplink_channels``: parallel uplink
    channels of the cell (LTE-M: narrowbands of 6 PRB, a 10 MHz carrier has 8 (TS 36.211
    §5.2.4), half of them assumed available to meters; NB-IoT: the 12 tones of one 180 kHz
    carrier); ``power_saving``: ``network.radio.POWER_SAVING_MODES``; ``transport``:
    ``network.transport``; ``segment_loss_probability``: residual IP packet loss after
    HARQ/RLC, folded into the transfer time (assumed 0.5 %); retries use capped exponential
    backoff with ``backoff_jitter`` (``network.backoff``); after an outage meters reconnect
    spread by ``reconnect_spread`` over ``reconnect_window_s`` (``network.faults``).
    """

    name: str = "lte-m"
    access_latency_median_s: float = 0.18
    access_latency_sigma: float = 0.5
    uplink_rate_bps: float = 187_500.0
    loss_probability: float = 0.01
    ack_loss_probability: float = 0.002
    ack_timeout_s: float = 30.0
    max_attempts: int = 5
    backoff_base_s: float = 2.0
    backoff_cap_s: float = 120.0
    downlink_rate_bps: float = 150_000.0
    coverage: tuple[CoverageClass, ...] = LTE_M_COVERAGE
    prach: tuple[PrachConfig, ...] = LTE_M_PRACH
    uplink_channels: int = 4
    power_saving: str = "psm"
    transport: TransportProfile = TRANSPORTS["mqtt"]
    segment_loss_probability: float = 0.005
    backoff_jitter: str = "full"
    reconnect_spread: str = "uniform"
    reconnect_window_s: float = 60.0

    def __post_init__(self) -> None:
        if len(self.coverage) != len(self.prach) or not self.coverage:
            raise ValueError(
                f"{self.name}: one PRACH config per coverage class needed, got "
                f"{len(self.coverage)} classes and {len(self.prach)} PRACH configs"
            )
        for key, value, registry in (
            ("power_saving", self.power_saving, POWER_SAVING_MODES),
            ("backoff_jitter", self.backoff_jitter, BACKOFF_JITTER),
            ("reconnect_spread", self.reconnect_spread, RECONNECT_SPREAD),
        ):
            if value not in registry:
                raise ValueError(f"{self.name}: {key} must be one of {sorted(registry)}")

    @cached_property
    def access_latency(self) -> LogNormal:
        """The RRC/NAS set-up time after random access in the normal class, s."""
        return LogNormal(self.access_latency_median_s, self.access_latency_sigma)

    @cached_property
    def rrc_latency(self) -> tuple[LogNormal, ...]:
        """:attr:`access_latency` scaled for each coverage class (its ``rrc_factor``), s."""
        return tuple(self.access_latency.scaled(c.rrc_factor) for c in self.coverage)

    def transfer_s(self, size_bytes: int, access_latency_s: float) -> float:
        """Time to move ``size_bytes`` once the radio link is up, plus access latency, s."""
        return access_latency_s + 8.0 * size_bytes / self.uplink_rate_bps

    def backoff_s(
        self,
        failed_attempts: int,
        rng: np.random.Generator | None = None,
        previous_s: float = 0.0,
    ) -> float:
        """Wait before the next attempt after ``failed_attempts`` failures, s.

        Without a generator: the capped exponential envelope min(cap, base * 2**(k-1))
        (no jitter). With one: ``backoff_jitter`` applied to it (``network.backoff``).
        The exponent is bounded before it is taken, so any attempt count is safe."""
        if rng is None:
            return envelope_s(failed_attempts, self.backoff_base_s, self.backoff_cap_s)
        return backoff_s(
            failed_attempts,
            self.backoff_base_s,
            self.backoff_cap_s,
            self.backoff_jitter,
            rng,
            previous_s,
        )

    def reconnect_delay_s(self, rng: np.random.Generator) -> float:
        """Delay between the cell coming back and this meter's reconnection, s."""
        return reconnect_delay_s(rng, self.reconnect_spread, self.reconnect_window_s)

    def uplink_bps(self, ce_level: int = 0) -> float:
        return self.uplink_rate_bps * self.coverage[ce_level].uplink_rate_factor

    def downlink_bps(self, ce_level: int = 0) -> float:
        return self.downlink_rate_bps * self.coverage[ce_level].downlink_rate_factor

    def idle_latency_model(
        self,
        size_bytes: int,
        ce_level: int = 0,
        handshake: str = "resume",
        power_saving: str | None = None,
    ) -> UploadLatencyModel:
        """Distribution of a successful attempt's duration on an idle ``SharedCell`` (no
        other meter, no degradation): the model ``SharedCell.attempt`` implements.

        duration = c + W + R + K (8 MTU / uplink + RTO), with W ~ Uniform(0, PRACH period)
        (the wait for the next opportunity from a random phase), R the scaled log-normal
        RRC set-up, K ~ NB(data segments, 1 - segment loss) retransmissions, and c the
        wake-up, PRACH outcome delay, handshake round trips and downlink bytes, uplink
        bytes at the class's rate and half a round trip to the core.
        """
        cls, prach = self.coverage[ce_level], self.prach[ce_level]
        mode = POWER_SAVING_MODES[power_saving or self.power_saving]
        ex = self.transport.exchange(size_bytes, handshake)
        ul, dl, rtt = self.uplink_bps(ce_level), self.downlink_bps(ce_level), cls.rtt_s
        shift = (
            mode.wake_s(cls)
            + ex.rtts * rtt
            + 8.0 * ex.down_bytes / dl
            + 8.0 * ex.up_bytes / ul
            + 0.5 * rtt
        )
        per_retx_s = 8.0 * self.transport.mtu_bytes / ul + rto_s(rtt, ex.rtt_samples)
        pmf = retransmission_pmf(ex.data_segments, self.segment_loss_probability)
        if not mode.random_access:
            return UploadLatencyModel(None, shift + per_retx_s * np.arange(pmf.size), pmf)
        base = LogNormalPlusUniform(
            prach.outcome_delay_s, self.rrc_latency[ce_level], prach.period_s
        )
        return UploadLatencyModel(base, shift + per_retx_s * np.arange(pmf.size), pmf)


@dataclass(frozen=True)
class UploadLatencyModel:
    """A mixture sum_k w_k (shift_k + base): the latency of an uncontended upload, s."""

    base: LogNormalPlusUniform | None
    shifts_s: np.ndarray
    weights: np.ndarray

    @property
    def mean(self) -> float:
        base_mean = self.base.mean if self.base is not None else 0.0
        return float(np.dot(self.weights, self.shifts_s) / self.weights.sum() + base_mean)

    def cdf(self, x_s: np.ndarray | float) -> np.ndarray:
        x = np.atleast_1d(np.asarray(x_s, dtype=np.float64))
        total = np.zeros_like(x)
        for w, shift in zip(self.weights, self.shifts_s, strict=True):
            part = (
                self.base.cdf(x - shift)
                if self.base is not None
                else (x >= shift).astype(np.float64)
            )
            total += w * part
        return total / self.weights.sum()


#: Registry of named profiles; scenario keys override individual fields.
CELLULAR_PROFILES: dict[str, CellularProfile] = {
    "lte-m": CellularProfile(),
    # NB-IoT (Cat-NB1, Rel-13): peak 62.5 kbit/s uplink multi-tone and about 26 kbit/s
    # downlink (TS 36.306); sustained about 20 kbit/s each way ("a factor of ten below
    # the peak", Anritsu application note on NB-IoT data rates). RRC/NAS set-up after
    # random access median 0.15 s (sigma 0.6): with the normal class's wake-up and NPRACH
    # it reproduces the 0.55 s mean that D. Robinson (MEng thesis, Stellenbosch 2019)
    # measured for a 128-byte datagram in ECL 0 on a commercial network (Vodacom, Huawei
    # RAN). One carrier of 12 tones.
    "nb-iot": CellularProfile(
        name="nb-iot",
        access_latency_median_s=0.15,
        access_latency_sigma=0.6,
        uplink_rate_bps=20_000.0,
        downlink_rate_bps=20_000.0,
        coverage=NB_IOT_COVERAGE,
        prach=NB_IOT_PRACH,
        uplink_channels=12,
        ack_timeout_s=60.0,
    ),
}


@dataclass(slots=True)
class AttemptResult:
    """What one upload attempt achieved.

    The first three fields are the simple cell's; the shared cell also fills the rest:
    ``cause`` (None when delivered; ``cell_down``, ``lost`` or ``ra_failure``), the parts
    of the duration (s): ``wake_s``, ``access_s`` (PRACH and RRC set-up), ``handshake_s``,
    ``queue_s`` (waiting for the shared uplink), ``transfer_s`` (air time, retransmission
    stalls and half a round trip to the core); ``preamble_tries``, the ``handshake`` used
    and the number of ``retransmissions`` (segments). A plain slotted record, made once
    per attempt on the hot path (a frozen dataclass is several times dearer to build);
    nothing changes it after.
    """

    delivered: bool  # the payload reached the core network (and goes on to the VPN)
    ack_lost: bool  # delivered, but the meter will never see the acknowledgement
    duration_s: float  # time the attempt took until delivery or failure detection
    cause: str | None = None
    wake_s: float = 0.0
    access_s: float = 0.0
    handshake_s: float = 0.0
    queue_s: float = 0.0
    transfer_s: float = 0.0
    preamble_tries: int = 0
    handshake: str = "none"
    retransmissions: int = 0


@dataclass
class Cell:
    """One cell of a region. Outage windows make every attempt that starts in them fail;
    degraded-coverage windows add loss and latency and scale the rate.

    Random draws come from the generator of the meter making the attempt, so that one
    meter's network outcomes do not depend on how many other meters share the cell."""

    env: simpy.Environment
    profile: CellularProfile
    outages: list[tuple[float, float]] = field(default_factory=list)
    attempts: int = 0
    failed_attempts: int = 0
    degradations: list[Degradation] = field(default_factory=list)
    _schedule: OutageSchedule = field(default_factory=OutageSchedule, init=False, repr=False)
    _scheduled: int = field(default=0, init=False, repr=False)

    def add_outage(self, start_s: float, end_s: float) -> None:
        self.outages.append((start_s, end_s))  # merged and sorted by ``schedule``

    def add_degradation(self, degradation: Degradation) -> None:
        self.degradations.append(degradation)

    @property
    def schedule(self) -> OutageSchedule:
        """The outage windows, merged (rebuilt when ``outages`` changed)."""
        if self._scheduled != len(self.outages):
            self._schedule = OutageSchedule(self.outages)
            self._scheduled = len(self.outages)
        return self._schedule

    def is_up(self, t_s: float) -> bool:
        return self.schedule.is_up(t_s)

    def next_up_s(self, t_s: float) -> float:
        """``t_s`` if the cell is up then, else when the outage containing it ends, s."""
        return self.schedule.next_up_s(t_s)

    def condition_at(self, t_s: float) -> LinkCondition:
        return condition_at(self.degradations, t_s)

    def ack_latency_s(self, rng: np.random.Generator, ce_level: int = 0) -> float:
        """Time for the acknowledgement to cross the cell back to the meter, s."""
        return (
            self.profile.access_latency.sample(rng)
            + self.condition_at(self.env.now).extra_latency_s
        )

    def attempt(
        self, size_bytes: int, rng: np.random.Generator
    ) -> Generator[simpy.Event, Any, AttemptResult]:
        """One attempt: on success returns when the payload has crossed the air interface.

        A failed attempt (cell down, or the transfer lost) is detected only when the
        meter's acknowledgement timer runs out, so it takes ``ack_timeout_s``.
        """
        self.attempts += 1
        p = self.profile
        latency_s = p.access_latency.sample(rng)
        u = rng.random(2)
        cond = self.condition_at(self.env.now) if self.degradations else None
        loss = p.loss_probability + (cond.extra_loss_probability if cond else 0.0)
        if not self.is_up(self.env.now) or u[0] < loss:
            self.failed_attempts += 1
            yield self.env.timeout(p.ack_timeout_s)
            return AttemptResult(False, False, p.ack_timeout_s)
        if cond is None:
            duration_s = p.transfer_s(size_bytes, latency_s)
        else:
            duration_s = (
                latency_s
                + cond.extra_latency_s
                + 8.0 * size_bytes / (p.uplink_rate_bps * cond.rate_factor)
            )
        yield self.env.timeout(duration_s)
        return AttemptResult(True, bool(u[1] < p.ack_loss_probability), duration_s)


@dataclass
class SharedCell(Cell):
    """A cell whose PRACH and uplink are shared by all its meters (module docstring).

    Same interface as ``Cell``; ``attempt`` takes the meter's coverage class, the
    handshake it needs (``network.transport.SessionTable`` tells) and optionally its
    power-saving mode. ``record_access`` keeps the time of every preamble attempt in
    ``access_log`` (for reconnect-storm peaks).
    """

    record_access: bool = False
    ra_failures: int = 0
    access_log: GrowableArray | None = field(default=None, init=False, repr=False)
    prach: list[PrachChannel] = field(default_factory=list, init=False, repr=False)
    uplink: SharedUplink = field(init=False, repr=False)
    _exchanges: dict[tuple[int, str], Exchange] = field(
        default_factory=dict, init=False, repr=False
    )

    def __post_init__(self) -> None:
        self.prach = [PrachChannel(c) for c in self.profile.prach]
        self.uplink = SharedUplink(self.profile.uplink_channels)
        if self.record_access:
            self.access_log = GrowableArray()

    def _exchange(self, size_bytes: int, handshake: str) -> Exchange:
        key = (size_bytes, handshake)
        ex = self._exchanges.get(key)
        if ex is None:
            if len(self._exchanges) > 4096:
                self._exchanges.clear()
            ex = self._exchanges[key] = self.profile.transport.exchange(size_bytes, handshake)
        return ex

    def ack_latency_s(self, rng: np.random.Generator, ce_level: int = 0) -> float:
        """Half a round trip plus the acknowledgement's bytes on the downlink, s."""
        p, cls = self.profile, self.profile.coverage[ce_level]
        cond = self.condition_at(self.env.now)
        response = self._exchange(0, "none").response_bytes
        return 0.5 * (cls.rtt_s + cond.extra_latency_s) + 8.0 * response / (
            p.downlink_bps(ce_level) * cond.rate_factor
        )

    def attempt(
        self,
        size_bytes: int,
        rng: np.random.Generator,
        ce_level: int = 0,
        handshake: str = "resume",
        power_saving: str | None = None,
    ) -> Generator[simpy.Event, Any, AttemptResult]:
        """One attempt of an upload of ``size_bytes`` by a meter of class ``ce_level``
        needing ``handshake`` (``none``, ``resume`` or ``full``). Failures: ``cell_down``
        (detected at the acknowledgement timeout), ``lost`` (likewise) and ``ra_failure``
        (known when the last preamble try fails)."""
        env, p = self.env, self.profile
        if handshake not in HANDSHAKE_KINDS:
            raise ValueError(f"handshake must be one of {HANDSHAKE_KINDS}, got {handshake!r}")
        self.attempts += 1
        t0 = env.now
        if not self.is_up(t0):
            self.failed_attempts += 1
            yield env.timeout(p.ack_timeout_s)
            return AttemptResult(False, False, p.ack_timeout_s, cause="cell_down")
        cls = p.coverage[ce_level]
        mode = POWER_SAVING_MODES[power_saving or p.power_saving]
        cond = self.condition_at(t0)
        u = rng.random(2)
        lost = bool(u[0] < p.loss_probability + cond.extra_loss_probability)
        ack_lost = bool(u[1] < p.ack_loss_probability)
        wake_s = mode.wake_s(cls)
        tries = 0
        rrc_s = 0.0
        if mode.random_access:
            channel = self.prach[ce_level]
            t = t0 + wake_s
            while True:
                tries += 1
                key, known_s = channel.register(t, rng, env.now)
                if self.access_log is not None:
                    self.access_log.append(t)
                yield env.timeout(known_s - env.now)
                if channel.alone(key):
                    break
                if tries >= channel.config.max_preamble_tx:
                    self.failed_attempts += 1
                    self.ra_failures += 1
                    elapsed = env.now - t0
                    return AttemptResult(
                        False, False, elapsed, "ra_failure", wake_s, elapsed - wake_s,
                        preamble_tries=tries, handshake=handshake,
                    )  # fmt: skip
                t = env.now + channel.config.backoff_indicator_s * float(rng.random())
            rrc_s = p.rrc_latency[ce_level].sample(rng)
        access_s = env.now - t0 - wake_s + rrc_s if mode.random_access else 0.0
        ex = self._exchange(size_bytes, handshake)
        rtt_s = cls.rtt_s + cond.extra_latency_s
        ul_bps = p.uplink_bps(ce_level) * cond.rate_factor
        dl_bps = p.downlink_bps(ce_level) * cond.rate_factor
        k = retransmissions(ex.data_segments, p.segment_loss_probability, rng)
        handshake_s = ex.rtts * rtt_s + 8.0 * ex.down_bytes / dl_bps
        yield env.timeout(rrc_s + handshake_s)
        if lost:
            self.failed_attempts += 1
            if env.now < t0 + p.ack_timeout_s:
                yield env.timeout(t0 + p.ack_timeout_s - env.now)
            return AttemptResult(
                False, False, env.now - t0, "lost", wake_s, access_s, handshake_s,
                preamble_tries=tries, handshake=handshake,
            )  # fmt: skip
        now = env.now
        service_s = 8.0 * (ex.up_bytes + k * p.transport.mtu_bytes) / ul_bps
        start, finish = self.uplink.reserve(now, service_s, cls.uplink_channels_used)
        done = finish + k * rto_s(rtt_s, ex.rtt_samples) + 0.5 * rtt_s
        if self.schedule.down_between(t0, done):  # the cell went down under the upload
            self.failed_attempts += 1
            end = max(done, t0 + p.ack_timeout_s)
            yield env.timeout(end - now)
            return AttemptResult(
                False, False, end - t0, "cell_down", wake_s, access_s, handshake_s,
                preamble_tries=tries, handshake=handshake,
            )  # fmt: skip
        yield env.timeout(done - now)
        return AttemptResult(
            True, ack_lost, done - t0, None, wake_s, access_s, handshake_s, start - now,
            done - start, tries, handshake, k,
        )  # fmt: skip

    def stats(self) -> dict[str, float]:
        """Counters of the run so far (flat record)."""
        horizon = self.env.now
        return {
            "attempts": float(self.attempts),
            "failed_attempts": float(self.failed_attempts),
            "ra_failures": float(self.ra_failures),
            "preamble_attempts": float(sum(c.attempts for c in self.prach)),
            "preamble_collisions": float(sum(c.collisions for c in self.prach)),
            "uplink_reservations": float(self.uplink.reservations),
            "uplink_utilisation": self.uplink.utilisation(horizon),
            "uplink_mean_wait_s": self.uplink.wait_s_total / max(1, self.uplink.reservations),
        }


@dataclass(slots=True)
class UploadResult:
    """Outcome of an upload with retries: ``acknowledged`` (False: the retry budget was
    spent or the modem went off; the meter keeps its data), ``attempts`` made, total
    ``duration_s`` including backoffs, and the ``last`` cell attempt's result (None when no
    attempt reached the cell). A record made once per upload, like :class:`AttemptResult`."""

    acknowledged: bool
    attempts: int
    duration_s: float
    last: AttemptResult | None


class RetryHooks(Protocol):
    """What the sender of an upload does around each attempt of :func:`upload_with_retries`."""

    def powered(self) -> bool:
        """Whether the modem is still on; False ends the upload before its next attempt."""
        ...

    def handshake(self) -> str | None:
        """The handshake the next attempt needs (``network.transport.HANDSHAKE_KINDS``), or
        None when nothing would answer it: the attempt then fails at the acknowledgement
        timeout without using the cell."""
        ...

    def failed(self, result: AttemptResult) -> None:
        """An attempt did not cross the cell."""
        ...

    def delivered(self, result: AttemptResult) -> Generator[simpy.Event, Any, bool]:
        """An attempt crossed the cell: what follows until the meter's acknowledgement, and
        whether it came (True ends the upload)."""
        ...


class PlainUpload:
    """Retry hooks of an upload whose only obstacle is the cell: the modem stays on, the
    first attempt needs ``handshake`` and every attempt after a failed one
    ``handshake_after_failure``, and a payload that crossed the cell is acknowledged."""

    __slots__ = ("_after_failure", "_next")

    def __init__(self, handshake: str = "resume", handshake_after_failure: str = "full") -> None:
        self._next = handshake
        self._after_failure = handshake_after_failure

    def powered(self) -> bool:
        return True

    def handshake(self) -> str | None:
        return self._next

    def failed(self, result: AttemptResult) -> None:
        self._next = self._after_failure

    def delivered(self, result: AttemptResult) -> Generator[simpy.Event, Any, bool]:
        yield from ()
        return True


def upload_with_retries(
    cell: SharedCell,
    size_bytes: int,
    rng: np.random.Generator,
    ce_level: int = 0,
    hooks: RetryHooks | None = None,
) -> Generator[simpy.Event, Any, UploadResult]:
    """Up to ``profile.max_attempts`` attempts of an upload of ``size_bytes`` by a meter of
    class ``ce_level`` until one is acknowledged, separated by the profile's jittered capped
    exponential backoff. A retry that would start while the cell is down waits for the cell
    to come back plus the profile's reconnect spread instead (no point retrying into an
    outage; this is the reconnect storm's trigger).

    ``hooks`` (default :class:`PlainUpload`) are asked before each attempt whether the modem
    is on and which handshake it needs, and told of each failed and each delivered attempt
    (the delivered one says whether the acknowledgement came). Random draws come from
    ``rng``: per attempt the attempt's own, then the backoff's, then the reconnect delay's."""
    hooks = PlainUpload() if hooks is None else hooks
    env, p = cell.env, cell.profile
    t0 = env.now
    previous_s = 0.0
    last: AttemptResult | None = None
    attempts = 0
    for k in range(1, p.max_attempts + 1):
        if not hooks.powered():
            break
        attempts = k
        handshake = hooks.handshake()
        if handshake is None:
            yield env.timeout(p.ack_timeout_s)
        else:
            last = yield from cell.attempt(size_bytes, rng, ce_level, handshake)
            if not last.delivered:
                hooks.failed(last)
            elif (yield from hooks.delivered(last)):
                return UploadResult(True, k, env.now - t0, last)
        if k < p.max_attempts:
            previous_s = p.backoff_s(k, rng, previous_s)
            wait_s = previous_s
            if not cell.is_up(env.now + wait_s):
                wait_s = cell.next_up_s(env.now + wait_s) - env.now + p.reconnect_delay_s(rng)
            yield env.timeout(wait_s)
    return UploadResult(False, attempts, env.now - t0, last)

"""The shared cell against its closed forms: one meter's latency distribution (KS test),
random access against slotted ALOHA, the shared uplink against M/D/1, coverage classes,
failures and degraded coverage. Nothing here compares with a pinned seeded number."""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import scipy.stats
import simpy

from network.cellular import (
    CELLULAR_PROFILES,
    AttemptResult,
    CellularProfile,
    SharedCell,
    UploadResult,
    upload_with_retries,
)
from network.contention import (
    aloha_success_probability,
    aloha_throughput,
    md1_mean_wait_s,
    prach_load_with_retries,
)
from network.faults import Degradation
from network.radio import LTE_M_COVERAGE, assign_coverage, ce_level_from_mcl
from network.transport import HANDSHAKE_KINDS, TRANSPORTS

SIZE_BYTES = 4700  # a 15-reading ESPI upload (DESIGN.md §7)


def _single_meter(
    profile: CellularProfile, n: int, ce: int, handshake: str, seed: int
) -> np.ndarray:
    """Durations of ``n`` successful attempts of one meter on an idle cell, attempts
    separated by exponential gaps (so the phase against the PRACH grid is uniform)."""
    env = simpy.Environment()
    cell = SharedCell(env, profile)
    rng = np.random.default_rng(seed)
    out: list[float] = []

    def meter() -> Generator[simpy.Event, Any, None]:
        for _ in range(n):
            yield env.timeout(rng.exponential(120.0))
            r = yield from cell.attempt(SIZE_BYTES, rng, ce_level=ce, handshake=handshake)
            assert r.delivered
            out.append(r.duration_s)

    env.process(meter())
    env.run()
    return np.array(out)


@pytest.mark.parametrize(
    ("profile_name", "ce", "handshake", "segment_loss"),
    [
        ("lte-m", 0, "resume", 0.0),
        ("lte-m", 1, "full", 0.05),  # retransmissions folded: a mixture over K
        ("nb-iot", 0, "none", 0.02),
        ("nb-iot", 2, "resume", 0.0),
    ],
)
def test_single_meter_latency_follows_the_model(
    profile_name: str, ce: int, handshake: str, segment_loss: float
) -> None:
    profile = replace(
        CELLULAR_PROFILES[profile_name],
        loss_probability=0.0,
        segment_loss_probability=segment_loss,
    )
    samples = _single_meter(profile, 1500, ce, handshake, seed=11)
    model = profile.idle_latency_model(SIZE_BYTES, ce, handshake)
    p_value = scipy.stats.kstest(samples, model.cdf).pvalue
    assert p_value > 1e-3, f"KS p = {p_value:.2g}"
    # the test has power: the model without the PRACH wait (or with the wrong RRC spread)
    # is rejected on the same samples
    wrong = replace(
        profile, access_latency_sigma=profile.access_latency_sigma * 1.3
    ).idle_latency_model(SIZE_BYTES, ce, handshake)
    assert scipy.stats.kstest(samples, wrong.cdf).pvalue < 1e-3
    assert abs(samples.mean() - model.mean) < 4 * samples.std() / math.sqrt(samples.size)


def _access_profile(max_tx: int = 1, channels: int = 10_000) -> CellularProfile:
    base = CELLULAR_PROFILES["lte-m"]
    prach = (replace(base.prach[0], max_preamble_tx=max_tx), *base.prach[1:])
    return replace(base, prach=prach, uplink_channels=channels, loss_probability=0.0)


@pytest.mark.parametrize("offered_load", [0.25, 0.5, 1.0, 2.0])
def test_random_access_is_slotted_aloha(offered_load: float) -> None:
    """Poisson access attempts, one preamble try each: P(success) = e^{-G} and throughput
    S = G e^{-G} per preamble per opportunity, within 4 binomial standard errors."""
    profile = _access_profile()
    config = profile.prach[0]
    rate_per_s = offered_load * config.n_preambles / config.period_s
    env = simpy.Environment()
    cell = SharedCell(env, profile)
    rng = np.random.default_rng(5)
    n = 12_000

    def arrivals() -> Generator[simpy.Event, Any, None]:
        for _ in range(n):
            yield env.timeout(rng.exponential(1.0 / rate_per_s))
            env.process(cell.attempt(0, rng, handshake="none"))

    env.process(arrivals())
    env.run()
    channel = cell.prach[0]
    assert channel.attempts == n
    success = 1.0 - cell.ra_failures / n
    expected = float(aloha_success_probability(offered_load))
    se = math.sqrt(expected * (1 - expected) / n)
    assert abs(success - expected) < 4 * se + 1e-3
    opportunities = (n / rate_per_s) / config.period_s
    throughput = (n - cell.ra_failures) / (opportunities * config.n_preambles)
    assert throughput == pytest.approx(float(aloha_throughput(offered_load)), rel=0.06)


def test_access_load_with_retries_closed_form() -> None:
    g, fail = prach_load_with_retries(0.3, 1)
    assert g == pytest.approx(0.3) and fail == pytest.approx(1 - math.exp(-0.3))
    g10, fail10 = prach_load_with_retries(0.3, 10)
    q = 1 - math.exp(-g10)  # the fixed point: G = G_new (1 - q^K) / (1 - q)
    assert g10 == pytest.approx(0.3 * (1 - q**10) / (1 - q), rel=1e-9)
    assert fail10 == pytest.approx(q**10) and g10 > 0.3 and fail10 < fail


def _batch_means_ci(x: np.ndarray, batches: int = 20) -> tuple[float, float]:
    means = np.array([b.mean() for b in np.array_split(x, batches)])
    return float(means.mean()), float(means.std(ddof=1) / math.sqrt(batches))


def _poisson_uploads(
    profile: CellularProfile, rate_per_s: float, n: int, seed: int
) -> list[AttemptResult]:
    """``n`` single-attempt uploads arriving as a Poisson process at one ``SharedCell``."""
    env = simpy.Environment()
    cell = SharedCell(env, profile)
    rng = np.random.default_rng(seed)
    results: list[AttemptResult] = []

    def upload() -> Generator[simpy.Event, Any, None]:
        results.append((yield from cell.attempt(SIZE_BYTES, rng, handshake="none")))

    def arrivals() -> Generator[simpy.Event, Any, None]:
        for _ in range(n):
            yield env.timeout(rng.exponential(1.0 / rate_per_s))
            env.process(upload())

    env.process(arrivals())
    env.run()
    return results


def test_shared_uplink_is_md1_and_latency_grows_with_load() -> None:
    """Poisson uploads of one size through one uplink channel: the mean wait for the
    uplink matches Pollaczek-Khinchine's M/D/1 within 4 batch-means standard errors (and
    10 %), at three loads; the mean upload latency grows with the load."""
    base = CELLULAR_PROFILES["lte-m"]
    prach = (replace(base.prach[0], n_preambles=1_000_000), *base.prach[1:])
    profile = replace(
        base, prach=prach, uplink_channels=1, loss_probability=0.0, segment_loss_probability=0.0
    )
    up_bytes = profile.transport.exchange(SIZE_BYTES, "none").up_bytes
    service_s = 8.0 * up_bytes / profile.uplink_bps(0)
    latencies = []
    for rho in (0.3, 0.6, 0.8):
        results = _poisson_uploads(profile, rho / service_s, 30_000, seed=17)
        mean, se = _batch_means_ci(np.array([r.queue_s for r in results[1000:]]))
        theory = md1_mean_wait_s(rho / service_s, service_s)
        assert abs(mean - theory) < max(4 * se, 0.02 * theory), (rho, mean, theory, se)
        assert abs(mean - theory) < 0.10 * theory
        latencies.append(float(np.mean([r.duration_s for r in results])))
    assert latencies[0] < latencies[1] < latencies[2]


def test_coverage_classes_slow_uploads_by_their_rate() -> None:
    p = CELLULAR_PROFILES["lte-m"]
    air = [8.0 * 10_000 / p.uplink_bps(ce) for ce in range(3)]
    assert air[1] / air[0] == pytest.approx(8.0)  # CE mode A, 8 repetitions
    # CE mode B: no slower than the 250 bit/s the LTE-M coverage white paper gives at the
    # 164 dB edge of the class, slower than CE mode A
    assert 250.0 <= p.uplink_bps(2) < p.uplink_bps(1)
    means = [p.idle_latency_model(SIZE_BYTES, ce, "resume").mean for ce in range(3)]
    assert means[0] < means[1] < means[2]
    levels = ce_level_from_mcl(np.array([120.0, 140.7, 150.0, 160.0, 170.0]), LTE_M_COVERAGE)
    assert levels.tolist() == [0, 0, 1, 2, -1]
    drawn = assign_coverage(100_000, LTE_M_COVERAGE, np.random.default_rng(3))
    shares = np.bincount(drawn, minlength=3) / drawn.size
    np.testing.assert_allclose(shares, [c.share for c in LTE_M_COVERAGE], atol=0.005)


def test_handshakes_cost_their_round_trips() -> None:
    p = replace(CELLULAR_PROFILES["lte-m"], segment_loss_probability=0.0)
    rtt = p.coverage[0].rtt_s
    # TCP (1) + TLS 1.3 full or PSK resumption (1, RFC 8446 §2) + MQTT CONNECT (1)
    assert [p.transport.exchange(SIZE_BYTES, h).rtts for h in ("none", "resume", "full")] == [
        0,
        3,
        3,
    ]
    tls12 = replace(p, transport=replace(p.transport, tls_version="1.2"))
    # TLS 1.2: full handshake 2 round trips (RFC 5246), ticket resumption 1 (RFC 5077)
    assert [tls12.transport.exchange(SIZE_BYTES, h).rtts for h in ("resume", "full")] == [3, 4]
    for prof in (p, tls12):
        means = {h: prof.idle_latency_model(SIZE_BYTES, 0, h).mean for h in HANDSHAKE_KINDS}
        for h in ("resume", "full"):
            ex, live = (
                prof.transport.exchange(SIZE_BYTES, h),
                prof.transport.exchange(SIZE_BYTES, "none"),
            )
            extra = (
                ex.rtts * rtt
                + 8 * ex.down_bytes / prof.downlink_bps(0)
                + 8 * (ex.up_bytes - live.up_bytes) / prof.uplink_bps(0)
            )
            assert means[h] - means["none"] == pytest.approx(extra, rel=1e-9)
        assert means["none"] < means["resume"] < means["full"]
    https = replace(p, transport=TRANSPORTS["https"])
    # no MQTT CONNECT round trip over HTTPS
    assert https.transport.exchange(SIZE_BYTES, "resume").rtts == 2


def _run_one(cell: SharedCell, rng: np.random.Generator, **kw: Any) -> AttemptResult:
    out: list[AttemptResult] = []

    def go() -> Generator[simpy.Event, Any, None]:
        out.append((yield from cell.attempt(SIZE_BYTES, rng, **kw)))

    cell.env.process(go())
    cell.env.run()
    return out[0]


def test_failures_and_their_causes() -> None:
    p = CELLULAR_PROFILES["lte-m"]
    rng = np.random.default_rng(1)
    down = SharedCell(simpy.Environment(), p)
    down.add_outage(0.0, 100.0)
    r = _run_one(down, rng)
    assert (r.delivered, r.cause, r.duration_s) == (False, "cell_down", p.ack_timeout_s)
    assert down.next_up_s(10.0) == 100.0 and down.is_up(100.0)
    lost = SharedCell(simpy.Environment(), replace(p, loss_probability=1.0))
    r = _run_one(lost, rng)
    assert (r.delivered, r.cause, r.duration_s) == (False, "lost", p.ack_timeout_s)
    # an outage that starts under the upload fails it too
    late = SharedCell(simpy.Environment(), replace(p, loss_probability=0.0))
    late.add_outage(0.1, 50.0)
    r = _run_one(late, rng)
    assert (r.delivered, r.cause) == (False, "cell_down")
    # two meters on one preamble with one try: both fail random access
    one = (replace(p.prach[0], n_preambles=1, max_preamble_tx=1), *p.prach[1:])
    crowded = SharedCell(simpy.Environment(), replace(p, prach=one))
    results: list[AttemptResult] = []

    def meter(seed: int) -> Generator[simpy.Event, Any, None]:
        g = np.random.default_rng(seed)
        results.append((yield from crowded.attempt(SIZE_BYTES, g)))

    crowded.env.process(meter(1))
    crowded.env.process(meter(2))
    crowded.env.run()
    assert [r.cause for r in results] == ["ra_failure", "ra_failure"]
    assert crowded.ra_failures == 2 and crowded.failed_attempts == 2


def _spaced_attempts(cell: SharedCell, n: int, seed: int) -> list[AttemptResult]:
    """``n`` attempts of one meter separated by exponential gaps of mean 60 s."""
    rng = np.random.default_rng(seed)
    res: list[AttemptResult] = []

    def go() -> Generator[simpy.Event, Any, None]:
        for _ in range(n):
            yield cell.env.timeout(rng.exponential(60.0))
            res.append((yield from cell.attempt(SIZE_BYTES, rng, handshake="resume")))

    cell.env.process(go())
    cell.env.run()
    return res


def test_degraded_coverage_adds_loss_and_latency() -> None:
    p = replace(CELLULAR_PROFILES["lte-m"], loss_probability=0.0, segment_loss_probability=0.0)
    n = 3000
    nominal = _spaced_attempts(SharedCell(simpy.Environment(), p), n, seed=9)
    cell = SharedCell(simpy.Environment(), p)
    cell.add_degradation(Degradation(0.0, 1e12, 0.2, 0.5, 0.5))
    degraded = _spaced_attempts(cell, n, seed=9)
    ok_nominal = [r.duration_s for r in nominal if r.delivered]
    ok = [r.duration_s for r in degraded if r.delivered]
    loss = 1 - len(ok) / n
    assert abs(loss - 0.2) < 4 * math.sqrt(0.2 * 0.8 / n)
    assert len(ok_nominal) == n
    # 3 handshake round trips + half a round trip, each 0.5 s longer; bytes at half the rate
    ex = p.transport.exchange(SIZE_BYTES, "resume")
    extra = 3.5 * 0.5 + 8 * ex.up_bytes / p.uplink_bps(0) + 8 * ex.down_bytes / p.downlink_bps(0)
    assert float(np.mean(ok) - np.mean(ok_nominal)) == pytest.approx(extra, rel=0.1)


def test_upload_with_retries_spends_its_budget_then_gives_up() -> None:
    p = replace(CELLULAR_PROFILES["lte-m"], max_attempts=4, backoff_jitter="none")
    env = simpy.Environment()
    cell = SharedCell(env, replace(p, loss_probability=1.0))
    out: list[UploadResult] = []

    def go(c: SharedCell) -> Generator[simpy.Event, Any, None]:
        out.append((yield from upload_with_retries(c, SIZE_BYTES, np.random.default_rng(0))))

    env.process(go(cell))
    env.run()
    r = out[-1]
    assert r.last is not None
    assert (r.acknowledged, r.attempts, r.last.cause) == (False, 4, "lost")
    # four ack timeouts and the un-jittered backoffs 2, 4, 8 s between them
    assert r.duration_s == pytest.approx(4 * p.ack_timeout_s + 2 + 4 + 8)
    assert r.last.handshake == "full"  # reconnects after a failure use a full handshake
    # a cell down for 100 s: the retry waits for it and then succeeds
    env2 = simpy.Environment()
    down = SharedCell(env2, replace(p, loss_probability=0.0, reconnect_window_s=10.0))
    down.add_outage(0.0, 100.0)
    env2.process(go(down))
    env2.run()
    r = out[-1]
    assert r.acknowledged and r.attempts == 2 and 100.0 < env2.now < 100.0 + 10.0 + 60.0


class _Sender:
    """Retry hooks that script the sender's side: nowhere to send to on the attempts in
    ``unroutable``, the modem off from attempt ``off_from`` on, and an acknowledgement only
    for the delivered attempts in ``acked`` (each after ``ack_wait_s``)."""

    def __init__(
        self, env: simpy.Environment, unroutable: set[int], off_from: int, acked: set[int]
    ) -> None:
        self.env, self.unroutable, self.off_from, self.acked = env, unroutable, off_from, acked
        self.attempt = 0
        self.log: list[tuple[int, str, float]] = []

    def powered(self) -> bool:
        return self.attempt + 1 < self.off_from

    def handshake(self) -> str | None:
        self.attempt += 1
        return None if self.attempt in self.unroutable else "resume"

    def failed(self, result: AttemptResult) -> None:
        self.log.append((self.attempt, "failed", self.env.now))

    def delivered(self, result: AttemptResult) -> Generator[simpy.Event, Any, bool]:
        yield self.env.timeout(5.0)
        self.log.append((self.attempt, "delivered", self.env.now))
        return self.attempt in self.acked


def _send(hooks_of: Any, **profile: Any) -> tuple[UploadResult, Any, SharedCell]:
    p = replace(CELLULAR_PROFILES["lte-m"], backoff_jitter="none", **profile)
    env = simpy.Environment()
    cell = SharedCell(env, p)
    hooks = hooks_of(env)
    out: list[UploadResult] = []

    def go() -> Generator[simpy.Event, Any, None]:
        rng = np.random.default_rng(3)
        out.append((yield from upload_with_retries(cell, SIZE_BYTES, rng, 0, hooks)))

    env.process(go())
    env.run()
    return out[0], hooks, cell


def test_retries_follow_the_senders_hooks() -> None:
    # unroutable attempts wait out the ack timeout without touching the cell; a delivered
    # attempt that is not acknowledged is retried like a failed one, after the backoff
    r, hooks, cell = _send(
        lambda env: _Sender(env, unroutable={1}, off_from=99, acked={3}),
        loss_probability=0.0,
        max_attempts=5,
    )
    assert r.acknowledged and r.attempts == 3 and cell.attempts == 2
    assert [(a, what) for a, what, _ in hooks.log] == [(2, "delivered"), (3, "delivered")]
    assert hooks.log[0][2] > 30.0 + 2.0  # the first attempt's timeout, then the 2 s backoff
    # the modem going off ends the upload before its next attempt, unacknowledged
    r, hooks, cell = _send(
        lambda env: _Sender(env, unroutable=set(), off_from=3, acked=set()),
        loss_probability=1.0,
        max_attempts=5,
    )
    assert (r.acknowledged, r.attempts, cell.attempts) == (False, 2, 2)
    assert r.last is not None and r.last.cause == "lost"
    assert [what for _, what, _ in hooks.log] == ["failed", "failed"]
    # nothing to send to at all: no cell attempt, the budget spent on timeouts and backoffs
    r, _, cell = _send(
        lambda env: _Sender(env, unroutable={1, 2, 3}, off_from=99, acked=set()),
        max_attempts=3,
    )
    assert (r.acknowledged, r.attempts, r.last, cell.attempts) == (False, 3, None, 0)
    assert r.duration_s == pytest.approx(3 * 30.0 + 2 + 4)

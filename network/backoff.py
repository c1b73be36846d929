"""Retry backoff: capped exponential, with or without jitter.

A retry waits ``envelope(k) = min(cap, base * 2**(k-1))`` after its k-th failure (capped
exponential backoff, as TCP's retransmission timer, RFC 6298 §5.5 and RFC 8961 §4 "the
timeout ... MUST be backed off exponentially"). Jitter spreads retries that failed together
so that they do not come back together (M. Brooker, "Exponential Backoff And Jitter", AWS
Architecture Blog, 2015):

- ``none``: exactly the envelope (synchronised retries: the reconnect storm's worst case);
- ``full``: uniform on [0, envelope] (AWS "Full Jitter", the blog's recommendation);
- ``equal``: envelope / 2 + uniform on [0, envelope / 2] (AWS "Equal Jitter");
- ``decorrelated``: min(cap, uniform on [base, 3 * previous]) (AWS "Decorrelated Jitter").

Scalar functions for one meter's retry, vectorised ones for many meters at once (storms).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: Largest exponent taken, so that any attempt count is safe from float overflow.
_MAX_EXPONENT = 1023 - 64


def envelope_s(failed_attempts: int, base_s: float, cap_s: float) -> float:
    """min(cap, base * 2**(k-1)) for the k-th failure (k >= 1), s."""
    exponent = min(max(failed_attempts - 1, 0), _MAX_EXPONENT)
    return min(cap_s, base_s * 2.0**exponent)


def envelope_many_s(failed_attempts: np.ndarray, base_s: float, cap_s: float) -> np.ndarray:
    """``envelope_s`` elementwise over an integer array of failure counts, s."""
    exponent = np.clip(np.asarray(failed_attempts, dtype=np.float64) - 1.0, 0.0, _MAX_EXPONENT)
    return np.minimum(cap_s, base_s * np.exp2(exponent))


def _none(
    k: int, base_s: float, cap_s: float, rng: np.random.Generator, previous_s: float
) -> float:
    return envelope_s(k, base_s, cap_s)


def _full(
    k: int, base_s: float, cap_s: float, rng: np.random.Generator, previous_s: float
) -> float:
    return envelope_s(k, base_s, cap_s) * float(rng.random())


def _equal(
    k: int, base_s: float, cap_s: float, rng: np.random.Generator, previous_s: float
) -> float:
    half = 0.5 * envelope_s(k, base_s, cap_s)
    return half + half * float(rng.random())


def _decorrelated(
    k: int, base_s: float, cap_s: float, rng: np.random.Generator, previous_s: float
) -> float:
    high = max(base_s, 3.0 * (previous_s if previous_s > 0 else base_s))
    return min(cap_s, base_s + (high - base_s) * float(rng.random()))


BackoffFn = Callable[[int, float, float, np.random.Generator, float], float]

#: Jitter policies (name -> function(k, base_s, cap_s, rng, previous_s) -> wait_s).
BACKOFF_JITTER: dict[str, BackoffFn] = {
    "none": _none,
    "full": _full,
    "equal": _equal,
    "decorrelated": _decorrelated,
}


def backoff_s(
    failed_attempts: int,
    base_s: float,
    cap_s: float,
    jitter: str,
    rng: np.random.Generator,
    previous_s: float = 0.0,
) -> float:
    """Wait before the next attempt after ``failed_attempts`` failures under ``jitter``, s."""
    return BACKOFF_JITTER[jitter](failed_attempts, base_s, cap_s, rng, previous_s)


#: Vectorised stateless policies (name -> function(envelope_s array, rng) -> wait_s array).
BACKOFF_JITTER_MANY: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "none": lambda env, rng: env,
    "full": lambda env, rng: env * rng.random(env.shape),
    "equal": lambda env, rng: 0.5 * env * (1.0 + rng.random(env.shape)),
}


def backoff_many_s(
    failed_attempts: np.ndarray,
    base_s: float,
    cap_s: float,
    jitter: str,
    rng: np.random.Generator,
) -> np.ndarray:
    """Vectorised ``backoff_s`` for the stateless policies (``none``, ``full``, ``equal``)."""
    if jitter not in BACKOFF_JITTER_MANY:
        raise ValueError(
            f"backoff_many_s supports {sorted(BACKOFF_JITTER_MANY)} jitter, got {jitter!r}"
        )
    return BACKOFF_JITTER_MANY[jitter](envelope_many_s(failed_attempts, base_s, cap_s), rng)

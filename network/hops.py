"""Per-hop latency bookkeeping: append per hop, percentiles vectorised at the end.

The twin reports ``kpis.hop_latency_s`` for the hops of an upload's path (cellular, vpn,
backbone, mdc_queue, pipeline). Appending is amortised O(1) into a growing float64 buffer;
percentiles are one ``np.percentile`` call per hop.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

#: The hops the twin reports, in path order.
HOPS = ("cellular", "vpn", "backbone", "mdc_queue", "pipeline")

#: Percentiles reported per hop (name -> q in percent).
PERCENTILES: dict[str, float] = {"p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0}


class GrowableArray:
    """A float64 array that grows by doubling; ``values`` is a view of what was appended."""

    def __init__(self, capacity: int = 1024) -> None:
        self._data = np.empty(max(1, capacity), dtype=np.float64)
        self._n = 0

    def append(self, value: float) -> None:
        if self._n == self._data.size:
            self._data = np.concatenate([self._data, np.empty_like(self._data)])
        self._data[self._n] = value
        self._n += 1

    def extend(self, values: np.ndarray | Iterable[float]) -> None:
        arr = np.asarray(values if isinstance(values, np.ndarray) else list(values), np.float64)
        need = self._n + arr.size
        if need > self._data.size:
            grown = np.empty(max(need, 2 * self._data.size), dtype=np.float64)
            grown[: self._n] = self._data[: self._n]
            self._data = grown
        self._data[self._n : need] = arr.ravel()
        self._n = need

    def __len__(self) -> int:
        return self._n

    @property
    def values(self) -> np.ndarray:
        return self._data[: self._n]


class HopLatencies:
    """Latencies of each hop, s. ``add(hop, latency_s)`` per upload and hop."""

    def __init__(self, hops: Iterable[str] = HOPS) -> None:
        self._hops: dict[str, GrowableArray] = {hop: GrowableArray() for hop in hops}

    def add(self, hop: str, latency_s: float) -> None:
        arr = self._hops.get(hop)
        if arr is None:
            arr = self._hops[hop] = GrowableArray()
        arr.append(latency_s)

    def add_many(self, hop: str, latencies_s: np.ndarray) -> None:
        if hop not in self._hops:
            self._hops[hop] = GrowableArray()
        self._hops[hop].extend(latencies_s)

    @property
    def hops(self) -> list[str]:
        return list(self._hops)

    def values(self, hop: str) -> np.ndarray:
        return self._hops[hop].values

    def count(self, hop: str) -> int:
        return len(self._hops[hop])

    def percentiles(
        self, percentiles: dict[str, float] = PERCENTILES
    ) -> dict[str, dict[str, float]]:
        """{hop: {"n", "mean", "p50", "p95", "p99", "max"}} in seconds; hops without samples
        have n = 0 and NaN statistics."""
        names = list(percentiles)
        qs = np.array([percentiles[k] for k in names])
        out: dict[str, dict[str, float]] = {}
        for hop, arr in self._hops.items():
            v = arr.values
            if v.size == 0:
                out[hop] = {"n": 0.0, "mean": float("nan"), **{k: float("nan") for k in names}}
                continue
            stats = np.percentile(v, qs)
            out[hop] = {"n": float(v.size), "mean": float(v.mean())}
            out[hop].update({k: float(x) for k, x in zip(names, stats, strict=True)})
        return out

    def records(self) -> list[dict[str, float | str]]:
        """One flat record per hop (``hop`` plus the fields of ``percentiles``, seconds)."""
        return [{"hop": hop, **stats} for hop, stats in self.percentiles().items()]

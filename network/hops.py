"""Per-hop latency bookkeeping: append per hop, percentiles vectorised at the end.

The twin reports ``kpis.hop_latency_s`` for the hops of an upload's path (cellular, vpn,
backbone, mdc_queue, pipeline). Appending is amortised O(1) into a growing float64 array;
percentiles are one ``np.percentile`` call per hop.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable

import numpy as np

#: The hops the twin reports, in path order.
HOPS = ("cellular", "vpn", "backbone", "mdc_queue", "pipeline")

#: Percentiles reported per hop (name -> q in percent).
PERCENTILES: dict[str, float] = {"p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0}


class GrowableArray:
    """A float64 sequence appended to one value at a time (``array('d')``, amortised O(1)
    and a C call per append); ``values`` is a numpy copy of what was appended."""

    def __init__(self) -> None:
        self._data = array("d")

    def append(self, value: float) -> None:
        self._data.append(value)

    def extend(self, values: np.ndarray | Iterable[float]) -> None:
        arr = np.asarray(values if isinstance(values, np.ndarray) else list(values), np.float64)
        self._data.frombytes(np.ascontiguousarray(arr.ravel()).tobytes())

    def __len__(self) -> int:
        return len(self._data)

    @property
    def values(self) -> np.ndarray:
        return np.array(self._data, dtype=np.float64)


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

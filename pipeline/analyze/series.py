"""`Series`: one interval-energy series on a regular grid, in Wh, what the detectors and
forecasts work on (the output of VEE, see `Series.from_vee`).

Only numpy and the standard library are imported here (DESIGN §2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.analyze.vee import VeeResult

__all__ = ["SECONDS_PER_DAY", "Series"]

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True, eq=False)  # holds arrays: compare by identity
class Series:
    """One interval-energy series on a regular grid.

    Attributes:
        series_id: the meter (or site) id.
        start_s: int64 epoch seconds of each interval start, strictly increasing by
            `interval_length_s`.
        energy_wh: float64 energy of each interval, Wh; NaN where unknown.
        interval_length_s: the grid step, s.
    """

    series_id: str
    start_s: np.ndarray
    energy_wh: np.ndarray
    interval_length_s: int

    def __post_init__(self) -> None:
        s = np.asarray(self.start_s)
        e = np.asarray(self.energy_wh)
        if s.ndim != 1 or s.shape != e.shape:
            raise ValueError(
                f"start_s and energy_wh must be 1-D of equal length, got {s.shape}, {e.shape}"
            )
        if not self.interval_length_s > 0:
            raise ValueError(f"interval_length_s must be > 0, got {self.interval_length_s!r}")
        if s.size > 1 and np.any(np.diff(s) != self.interval_length_s):
            raise ValueError("start_s must be a regular grid with step interval_length_s")

    @classmethod
    def from_vee(
        cls, series_id: str, result: VeeResult, power_of_ten_multiplier: int = 0
    ) -> Series:
        """The validated series of a VEE result, converted from register counts to Wh
        (``value * 10**power_of_ten_multiplier``, ESPI uom 72)."""
        scale = 10.0 ** int(power_of_ten_multiplier)
        return cls(series_id, result.start_s, result.value * scale, result.interval_length_s)

    @property
    def n(self) -> int:
        """Number of intervals."""
        return int(self.start_s.shape[0])

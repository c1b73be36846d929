"""Progress on stderr, shown once a run has taken over a second: :class:`ProgressBar` over
a run's simulated time; subclasses describe other progress (``describe``) and share the
drawing (``draw``).

On a terminal the bar redraws in place; in a log (CI) a plain line is written at most every
``log_every_s`` of wall time, so the log stays readable.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """Call with the simulated time; draws ``[#####.....] 12.0/24.0 h`` on ``stream``."""

    def __init__(
        self,
        horizon_s: float,
        stream: TextIO = sys.stderr,
        delay_s: float = 1.0,
        log_every_s: float = 10.0,
    ) -> None:
        self.horizon_s = horizon_s
        self.stream = stream
        self.delay_s = delay_s
        self.log_every_s = log_every_s
        self.interactive = stream.isatty()
        self.t0 = time.perf_counter()
        self.last_line_s = 0.0
        self.shown = False

    def __call__(self, t_s: float) -> None:
        elapsed_s = time.perf_counter() - self.t0
        if elapsed_s < self.delay_s:
            return
        self.draw(self.describe(t_s, elapsed_s), elapsed_s)

    def describe(self, t_s: float, elapsed_s: float) -> str:
        """The line for simulated time ``t_s`` after ``elapsed_s`` of wall time."""
        return (
            f"{bar(t_s / self.horizon_s)} {t_s / 3600:6.1f}/{self.horizon_s / 3600:.1f} h "
            f"simulated, {elapsed_s:5.1f} s wall"
        )

    def draw(self, text: str, elapsed_s: float) -> None:
        """Redraw ``text`` in place on a terminal; in a log, write it as a line now and
        then."""
        if self.interactive:
            self.stream.write("\r" + text)
            self.shown = True
        elif elapsed_s - self.last_line_s >= self.log_every_s or not self.shown:
            self.stream.write(text + "\n")
            self.last_line_s = elapsed_s
            self.shown = True
        self.stream.flush()

    def close(self) -> None:
        if self.shown and self.interactive:
            self.stream.write("\n")
            self.stream.flush()


def bar(fraction: float, width: int = 30) -> str:
    """``[#####.....]``: ``fraction`` (clipped to 0..1) of ``width`` filled."""
    return f"[{'#' * int(width * min(1.0, max(0.0, fraction))):.<{width}}]"

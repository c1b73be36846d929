"""Progress output: silent for short runs, redrawn on a terminal, sparse lines in a log."""

from __future__ import annotations

import io

from twin.outputs.progress import ProgressBar


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_quiet_before_the_delay_then_draws() -> None:
    out = _Tty()
    bar = ProgressBar(86400.0, out, delay_s=3600.0)
    bar(3600.0)
    assert out.getvalue() == ""
    bar.delay_s = 0.0
    bar(43200.0)
    bar.close()
    text = out.getvalue()
    assert text.startswith("\r[" + "#" * 15 + "." * 15 + "]") and "12.0/24.0 h" in text
    assert text.endswith("\n")


def test_log_gets_whole_lines_not_carriage_returns() -> None:
    log = io.StringIO()
    bar = ProgressBar(86400.0, log, delay_s=0.0, log_every_s=3600.0)
    for t in range(0, 86400, 900):
        bar(float(t))
    bar.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 1 and "\r" not in log.getvalue()

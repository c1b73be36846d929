"""Errors the twin reports to its users: one line each, naming the key, the value and what
was expected (DESIGN.md §9); the ``twin`` command prints them and exits 2."""

from __future__ import annotations

import signal
from typing import Any

#: Longest text of a value shown in an error, characters.
MAX_SHOWN_CHARS = 120


def shown(value: Any) -> str:
    """``repr(value)`` cut to :data:`MAX_SHOWN_CHARS` characters; an integer too long to
    print whole is described by its number of digits."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        digits = len(str(abs(value))) if value.bit_length() < 4000 else None
        return f"<an integer of {digits or 'over 1200'} digits>"
    text = repr(value)
    return text if len(text) <= MAX_SHOWN_CHARS else text[: MAX_SHOWN_CHARS - 3] + "..."


class UsageError(ValueError):
    """A command was given something it cannot use (a scenario key, a path, an option):
    names the key, the value and what was expected, so that one message is enough to fix
    it. ``label`` says which kind of thing was wrong."""

    label = "error"

    def __init__(self, key: str, value: Any, expected: str) -> None:
        self.key = key
        self.value = value
        self.expected = expected
        super().__init__(f"{key} = {shown(value)}: expected {expected}")


class ScenarioError(UsageError):
    """A scenario file or ``--set`` override is wrong."""

    label = "scenario error"


class PipelineWorkerError(RuntimeError):
    """The run's pipeline worker (:mod:`twin.sil.pipeline_worker`) died, failed, or found
    an outcome other than the one the simulation went on with: the run stops, as its
    results would not be the run's."""


#: Exit code after Ctrl-C (or SIGTERM): 128 + the signal's number, as shells report it.
EXIT_SIGNAL_BASE = 128


def interruption(exc: KeyboardInterrupt) -> tuple[str, int]:
    """The name of the signal that stopped a command (SIGINT for Ctrl-C; ``twin.cli`` raises
    SIGTERM as a KeyboardInterrupt carrying its number) and the exit code for it."""
    signum = exc.args[0] if exc.args else signal.SIGINT
    return signal.Signals(signum).name, EXIT_SIGNAL_BASE + signum

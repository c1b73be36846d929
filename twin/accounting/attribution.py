"""Which fault lost which readings: each loss the ledger recorded (its meter, cause and time)
is laid at the door of at most one fault, the one whose scope holds it.

A fault's :class:`LossScope` is what it can lose and where and when: the loss causes its
kind can produce (declared with the kind, ``twin.world.faults.WORLD_FAULTS``), the meters it
acts on (a cell's or an MDC's meters, or its own meter) and the time from its start until
its consequences are over (its backlog drained). A loss goes to the scope that holds its
meter, its cause and its time; where scopes of overlapping faults hold the same loss, to the
one that started last (the most recent cause). Losses no scope holds belong to no fault
(e.g. a meter buffer too small for the normal upload schedule).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from twin.accounting.ledger import Losses


@dataclass(frozen=True)
class LossScope:
    """What one fault can lose: readings of ``meters`` (indices) lost to one of ``causes``
    at a time in ``[start_s, end_s]`` (s after the scenario's start)."""

    meters: np.ndarray
    causes: tuple[str, ...]
    start_s: float
    end_s: float


def attribute_losses(losses: Losses, scopes: Sequence[LossScope]) -> list[int]:
    """Readings lost per scope, in the order of ``scopes`` (module docstring): each loss
    counts for at most one scope, so the counts add up to at most the losses."""
    taken = np.zeros(len(losses.meter), dtype=bool)
    counts = [0] * len(scopes)
    latest_first = sorted(range(len(scopes)), key=lambda i: (-scopes[i].start_s, -i))
    for i in latest_first:
        scope = scopes[i]
        held = (
            ~taken
            & np.isin(losses.cause, scope.causes)
            & np.isin(losses.meter, scope.meters)
            & (losses.at_s >= scope.start_s)
            & (losses.at_s <= scope.end_s)
        )
        counts[i] = int(np.count_nonzero(held))
        taken |= held
    return counts

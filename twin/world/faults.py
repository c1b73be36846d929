"""Faults the twin's world injects itself, declared once in :data:`WORLD_FAULTS`: in the
cellular network, the VPN tunnels, the MDCs, the meters' power supply and the uploads the
meters send. Faults at a site or in its meter's registers and clock are the field faults of
:data:`meters.faults.FIELD_FAULTS`.

Each kind says what it targets (:class:`Target`: which scenario keys name the target), its
parameters (numbers with their ranges, as :class:`meters.faults.ParamSpec`, or durations,
:class:`DurationParam`), whether it lasts a ``duration``, and what it does: to the cells it
hits (``on_cells``), to an MDC (``on_mdc``), to the meter's next upload (``on_upload``) or to
the meter's power (``on_meter_power``); and the ledger causes of the readings it can lose
(``loss_causes``: what its entry in the results counts as ``lost``,
:mod:`twin.accounting.attribution`). The scenario schema reads ``[[fault]]`` tables from
these declarations and the world applies them from the same ones.

Overlapping faults compose as the union of their windows (DESIGN.md §9): the outage windows
of a cell, the drops of a tunnel and the power losses of an MDC or of a meter are each
merged into their union (``twin.world.world.fault_windows``), so the end of one fault never
ends another early; degradations of equal parameters count once where they overlap
(``network.faults.condition_at``), different ones stack.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from meters.faults import ParamSpec
from network.cellular import SharedCell
from network.faults import Degradation, markov_outages
from twin.world.hostile import (
    HOSTILE_PAYLOADS,
    TAMPERED_ENVELOPES,
    UploadRewrite,
    malformed_upload,
    tampered_upload,
)

_T = TypeVar("_T")


class Target(enum.Enum):
    """What a world fault acts on, and the scenario keys that name it."""

    CELL = "cell"  # one cell of a region: `region`, `cell` (-1 in a FaultSpec: every cell)
    REGION = "region"  # every cell of a region: `region`
    MDC = "mdc"  # one MDC: `mdc`
    METER = "meter"  # one meter: `meter`

    def cells_hit(self, region_cells: Sequence[_T], cell: int) -> list[_T]:
        """The cells of a region a fault of this target hits (``cell`` < 0: all of them)."""
        if self is Target.REGION or cell < 0:
            return list(region_cells)
        return [region_cells[cell]]


class MdcEffect(enum.Enum):
    """What an MDC fault does to its MDC over the fault's window."""

    TUNNEL_DOWN = "tunnel_down"  # its gateway's VPN tunnel is down (network.vpn)
    DARK = "dark"  # the MDC loses power (hw_models.failures.mdc_power_loss)


@dataclass(frozen=True)
class DurationParam:
    """A parameter written as a duration string (DESIGN.md §3) under ``key``, kept in s:
    default (None: required), what it means, whether it must be above zero and its least
    value, s (None: any)."""

    key: str
    default: str | None
    doc: str
    positive: bool = True
    minimum_s: float | None = None


@dataclass(frozen=True)
class CellFaultContext:
    """What a fault's effect on cells gets besides the cells it hits: its window
    ``[at_s, end_s)`` (s after the scenario's start), its parameters and, on demand, the
    fault's own Generator (keyed by what the fault is, DESIGN.md §3)."""

    at_s: float
    end_s: float
    params: Mapping[str, float]
    rng: Callable[[], np.random.Generator]


#: (cells hit, context) -> what the fault reports of itself besides its target.
CellEffect = Callable[[Sequence[SharedCell], CellFaultContext], dict[str, float]]


@dataclass(frozen=True)
class HostileUpload:
    """What an upload fault makes the meter send instead of its next upload: ``payloads``
    are the names the scenario's ``payload`` may take; ``rewrite`` builds the bytes."""

    payloads: tuple[str, ...]
    rewrite: UploadRewrite
    needs_authentication: bool = False  # only meaningful when uploads are sealed


@dataclass(frozen=True, eq=False)  # holds a mapping: compare by identity
class WorldFaultKind:
    """One kind of world fault (module docstring)."""

    name: str
    target: Target
    doc: str
    params: Mapping[str, ParamSpec | DurationParam] = field(default_factory=dict)
    timed: bool = True  # takes a `duration`; an upload fault happens once instead
    on_cells: CellEffect | None = None
    on_mdc: MdcEffect | None = None
    on_upload: HostileUpload | None = None
    on_meter_power: bool = False
    #: Ledger causes (twin.accounting.ledger.LOSS_CAUSES) of the readings it can lose.
    loss_causes: tuple[str, ...] = ()
    #: The reconnect storm after its end is reported (the peak of random-access attempts).
    reconnect_storm: bool = False

    @property
    def cuts_off_meters(self) -> bool:
        """Whether it cuts meters off the MDCs (cells or an MDC): its backlog's drain is
        reported."""
        return self.target is not Target.METER


# -- what faults do to cells -----------------------------------------------------------------
def _outage(cells: Sequence[SharedCell], ctx: CellFaultContext) -> dict[str, float]:
    for cell in cells:
        cell.add_outage(ctx.at_s, ctx.end_s)
    return {}


def _flapping(cells: Sequence[SharedCell], ctx: CellFaultContext) -> dict[str, float]:
    p = ctx.params
    windows = markov_outages(p["mtbf_s"], p["mttr_s"], ctx.end_s, ctx.rng(), ctx.at_s).windows
    for a, b in windows:
        for cell in cells:
            cell.add_outage(a, min(b, ctx.end_s))
    return {"outages": len(windows)}


def _degraded(cells: Sequence[SharedCell], ctx: CellFaultContext) -> dict[str, float]:
    p = ctx.params
    for cell in cells:
        cell.add_degradation(
            Degradation(
                ctx.at_s,
                ctx.end_s,
                p["extra_loss_probability"],
                p["extra_latency_s"],
                p["rate_factor"],
            )
        )
    return dict(p)


#: What a fault that cuts meters off the MDCs loses: readings its meters' buffers evict while
#: they cannot upload (and while their backlog drains).
_CUT_OFF = ("meter_buffer_overflow",)

#: Registry of the world's faults (module docstring).
WORLD_FAULTS: dict[str, WorldFaultKind] = {
    "cell_outage": WorldFaultKind(
        "cell_outage",
        Target.CELL,
        "The cell is down for the window: every attempt that starts in it, or that it "
        "overtakes, fails at the meter's acknowledgement timeout; retries wait for the cell "
        "and reconnect spread over the profile's reconnect window (network.faults).",
        on_cells=_outage,
        loss_causes=_CUT_OFF,
        reconnect_storm=True,
    ),
    "regional_outage": WorldFaultKind(
        "regional_outage",
        Target.REGION,
        "Every cell of the region is down for the window (as cell_outage).",
        on_cells=_outage,
        loss_causes=_CUT_OFF,
        reconnect_storm=True,
    ),
    "cell_flapping": WorldFaultKind(
        "cell_flapping",
        Target.CELL,
        "Over the window the cell alternates up and down as a Markov process: exponential "
        "up times of mean mtbf and down times of mean mttr (network.faults.markov_outages), "
        "drawn from the fault's own generator.",
        {
            # at least a minute up, a second down: a year of flapping is ~0.5 M windows
            "mtbf_s": DurationParam("mtbf", None, "mean time the cell stays up", minimum_s=60.0),
            "mttr_s": DurationParam("mttr", None, "mean time the cell stays down", minimum_s=1.0),
        },
        on_cells=_flapping,
        loss_causes=_CUT_OFF,
    ),
    "degraded_coverage": WorldFaultKind(
        "degraded_coverage",
        Target.REGION,
        "Every cell of the region has worse radio conditions for the window: extra attempt "
        "loss, extra latency per round trip and a lower data rate (network.faults."
        "Degradation).",
        {
            "extra_loss_probability": ParamSpec(0.1, 0.0, 1.0, "1", "added attempt loss"),
            "rate_factor": ParamSpec(0.5, 1e-6, 1.0, "1", "factor on the data rates"),
            "extra_latency_s": DurationParam(
                "extra_latency", "500ms", "added latency per round trip", positive=False
            ),
        },
        on_cells=_degraded,
        loss_causes=_CUT_OFF,
    ),
    "vpn_drop": WorldFaultKind(
        "vpn_drop",
        Target.MDC,
        "The MDC gateway's VPN tunnel drops for the window; the gateway buffers what arrives "
        "for it (network.vpn) and uploads fail over to a healthy MDC where there is one.",
        on_mdc=MdcEffect.TUNNEL_DOWN,
        loss_causes=(*_CUT_OFF, "vpn_down_buffer_overflow", "gateway_buffer_overflow"),
    ),
    "mdc_power_loss": WorldFaultKind(
        "mdc_power_loss",
        Target.MDC,
        "The whole MDC loses power for the window: every server stops, what was in its "
        "memory is lost (hw_models.failures.mdc_power_loss).",
        on_mdc=MdcEffect.DARK,
        loss_causes=(*_CUT_OFF, "mdc_crash_unpersisted", "gateway_buffer_overflow"),
    ),
    "malformed_upload": WorldFaultKind(
        "malformed_upload",
        Target.METER,
        "The meter's first upload at or after `at` carries a hostile or broken document "
        "(twin.world.hostile.HOSTILE_PAYLOADS), sealed as usual.",
        timed=False,
        on_upload=HostileUpload(tuple(HOSTILE_PAYLOADS), malformed_upload),
        loss_causes=("rejected_invalid",),
    ),
    "tampered_upload": WorldFaultKind(
        "tampered_upload",
        Target.METER,
        "The meter's first upload at or after `at` comes in a forged or altered envelope "
        "(twin.world.hostile.TAMPERED_ENVELOPES).",
        timed=False,
        on_upload=HostileUpload(
            tuple(TAMPERED_ENVELOPES), tampered_upload, needs_authentication=True
        ),
        loss_causes=("rejected_auth",),
    ),
    "meter_power_loss": WorldFaultKind(
        "meter_power_loss",
        Target.METER,
        "The meter loses power for the window: what its RAM held since the last NVM flush "
        "is lost and it records nothing until power returns (meters.device).",
        on_meter_power=True,
        loss_causes=("meter_power_loss", "meter_unpowered"),
    ),
}

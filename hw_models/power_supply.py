"""Power coupling of an MDC: its region's renewables, a battery and the grid.

:class:`PowerController` is a SimPy process that settles the MDC's energy balance at every
step (and at every grid transition): the energy the servers drew (exact, from their power
meters, times the PUE) is met first by the renewables, then by the grid when it is up, else
by the battery; surplus charges the battery, and the grid tops it up when it is up. When
the grid is out and renewables plus the battery cannot carry the expected draw over the
next step, servers are SHED (brown-out) in a fixed order, and brought back one per step
when the supply allows. It records the state of charge, the shed servers and the
unserved energy over time.

Sources:
- [ATB] NREL, Annual Technology Baseline 2023, "Utility-Scale Battery Storage": round-trip
  efficiency 85 % for lithium-ion (LFP/NMC) battery systems.
- The round-trip efficiency is split evenly between charging and discharging (each
  sqrt(RTE)), the usual assumption when only the round trip is specified.
- Shedding in a fixed priority order and restoring with hysteresis is standard
  under-frequency/under-voltage load-shedding practice (e.g. IEEE Std C37.117-2007).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import simpy

from hw_models.power import J_PER_WH
from hw_models.server import SHED, Server, ServerPool

#: Round-trip efficiency of a lithium-ion battery system [ATB].
LI_ION_ROUND_TRIP_EFFICIENCY = 0.85


class SupplySeries:
    """A power time series, W, piecewise constant: ``power_w[k]`` holds over
    [start_s + k * step_s, start_s + (k + 1) * step_s). Zero outside the series.
    Integrals are exact (cumulative sums), vectorised."""

    def __init__(self, power_w: npt.ArrayLike, step_s: float, start_s: float = 0.0) -> None:
        values = np.asarray(power_w, dtype=np.float64)
        if values.ndim != 1:
            raise ValueError(f"power_w must be one-dimensional, got shape {values.shape}")
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ValueError("power_w must be finite and >= 0")
        if not (math.isfinite(step_s) and step_s > 0):
            raise ValueError(f"step_s must be > 0, got {step_s!r}")
        self.power_w = values
        self.step_s = float(step_s)
        self.start_s = float(start_s)
        self._cumulative_j = np.concatenate(([0.0], np.cumsum(values * self.step_s)))

    @property
    def end_s(self) -> float:
        return self.start_s + len(self.power_w) * self.step_s

    def power_at_w(self, t_s: float) -> float:
        k = math.floor((t_s - self.start_s) / self.step_s)
        return float(self.power_w[k]) if 0 <= k < len(self.power_w) else 0.0

    def energy_j(self, t0_s: float | npt.ArrayLike, t1_s: float | npt.ArrayLike) -> Any:
        """Exact energy over [t0_s, t1_s], J (arrays broadcast)."""
        return self._cumulative_at(t1_s) - self._cumulative_at(t0_s)

    def _cumulative_at(self, t_s: float | npt.ArrayLike) -> Any:
        n = len(self.power_w)
        x = np.clip((np.asarray(t_s, dtype=np.float64) - self.start_s) / self.step_s, 0.0, n)
        if n == 0:
            return np.zeros_like(x)
        k = np.minimum(np.floor(x).astype(np.int64), n - 1)
        return self._cumulative_j[k] + self.power_w[k] * self.step_s * (x - k)


class GridOutages:
    """Windows [start_s, end_s) in which the grid is out."""

    def __init__(self, windows: Sequence[tuple[float, float]] = ()) -> None:
        ordered = sorted((float(a), float(b)) for a, b in windows)
        for a, b in ordered:
            if not (0 <= a < b):
                raise ValueError(f"grid outage needs 0 <= start_s < end_s, got ({a}, {b})")
        for (_, b0), (a1, _) in itertools.pairwise(ordered):
            if a1 < b0:
                raise ValueError("grid outage windows overlap")
        self.windows = ordered

    def is_up(self, t_s: float) -> bool:
        return not any(a <= t_s < b for a, b in self.windows)

    def edges_s(self) -> list[float]:
        return [t for window in self.windows for t in window]


@dataclass
class Battery:
    """A battery behind the MDC's DC bus. Energies at its terminals, Wh.

    ``charge`` and ``discharge`` honour the power limits over the given duration and the
    state-of-charge bounds [0, capacity]; losses are ``in * (1 - eta)`` on the way in and
    ``out * (1 / eta - 1)`` on the way out, eta = sqrt(round_trip_efficiency), so that
    ``charged_wh - discharged_wh - losses_wh == soc_wh - initial_soc_wh`` always.
    """

    capacity_wh: float
    max_charge_w: float
    max_discharge_w: float
    round_trip_efficiency: float = LI_ION_ROUND_TRIP_EFFICIENCY
    soc_wh: float | None = None  # initial state of charge; None: full
    charged_wh: float = field(init=False, default=0.0)
    discharged_wh: float = field(init=False, default=0.0)
    losses_wh: float = field(init=False, default=0.0)
    initial_soc_wh: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        for name in ("capacity_wh", "max_charge_w", "max_discharge_w"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"battery {name} must be finite and >= 0, got {value!r}")
        if not 0 < self.round_trip_efficiency <= 1:
            raise ValueError("round_trip_efficiency must be in (0, 1]")
        if self.soc_wh is None:
            self.soc_wh = self.capacity_wh
        if not 0 <= self.soc_wh <= self.capacity_wh:
            raise ValueError(f"initial soc_wh {self.soc_wh} outside [0, {self.capacity_wh}]")
        self.initial_soc_wh = self.soc_wh

    @property
    def eta(self) -> float:
        """One-way efficiency, sqrt(round trip)."""
        return math.sqrt(self.round_trip_efficiency)

    @property
    def soc(self) -> float:
        assert self.soc_wh is not None
        return self.soc_wh

    def deliverable_wh(self, duration_s: float) -> float:
        """Most energy the battery can deliver at its terminals over ``duration_s``."""
        return min(self.max_discharge_w * duration_s / J_PER_WH, self.soc * self.eta)

    def charge(self, energy_wh: float, duration_s: float, already_wh: float = 0.0) -> float:
        """Offer ``energy_wh`` at the terminals over ``duration_s`` (``already_wh`` were
        charged in the same interval); returns the energy accepted."""
        limit = self.max_charge_w * duration_s / J_PER_WH - already_wh
        room = (self.capacity_wh - self.soc) / self.eta
        accepted = max(0.0, min(energy_wh, limit, room))
        stored = accepted * self.eta
        self.soc_wh = min(self.capacity_wh, self.soc + stored)
        self.charged_wh += accepted
        self.losses_wh += accepted - stored
        return accepted

    def discharge(self, energy_wh: float, duration_s: float) -> float:
        """Ask for ``energy_wh`` at the terminals over ``duration_s``; returns the energy
        delivered."""
        delivered = max(0.0, min(energy_wh, self.deliverable_wh(duration_s)))
        drawn = delivered / self.eta
        self.soc_wh = max(0.0, self.soc - drawn)
        self.discharged_wh += delivered
        self.losses_wh += drawn - delivered
        return delivered


@dataclass(frozen=True)
class PowerRecord:
    """The MDC's power state at one settlement (flat record)."""

    t_s: float
    soc_wh: float  # battery state of charge after settling [t_prev, t]
    servers_shed: int  # servers shed over [t_prev, t]
    load_w: float  # mean facility draw over [t_prev, t]
    renewable_w: float  # mean renewable supply over [t_prev, t]
    grid_up: bool  # over [t_prev, t]
    unserved_wh: float  # cumulative


class PowerController:
    """Brown-out controller of one MDC (see the module docstring). Starts its SimPy
    process on construction.

    ``shed_order`` lists pool indices, first shed first (default: the highest index
    first); restoring goes in the reverse order, at most one server per step, and only
    when the supply over the next step covers it and the battery is at least
    ``restore_soc_fraction`` full (hysteresis, so servers do not flap). With
    ``charge_from_grid`` the grid recharges the battery whenever it is up.
    """

    def __init__(
        self,
        env: simpy.Environment,
        pool: ServerPool,
        supply: SupplySeries,
        battery: Battery,
        grid_outages: GridOutages,
        step_s: float,
        *,
        shed_order: Sequence[int] | None = None,
        restore_soc_fraction: float = 0.2,
        charge_from_grid: bool = True,
        until_s: float | None = None,
    ) -> None:
        if not (math.isfinite(step_s) and step_s > 0):
            raise ValueError(f"step_s must be > 0, got {step_s!r}")
        order = list(range(len(pool.servers)))[::-1] if shed_order is None else list(shed_order)
        if sorted(order) != list(range(len(pool.servers))):
            raise ValueError(f"shed_order must be a permutation of the pool's indices: {order}")
        self.env = env
        self.pool = pool
        self.supply = supply
        self.battery = battery
        self.grid = grid_outages
        self.step_s = float(step_s)
        self.shed_order = [pool.servers[i] for i in order]
        self.restore_soc_fraction = restore_soc_fraction
        self.charge_from_grid = charge_from_grid
        self.until_s = until_s
        self.shed: list[Server] = []  # in shedding order
        self.records: list[PowerRecord] = []
        self.shed_log: list[tuple[float, str, str]] = []  # (t_s, server, "shed"/"restore")
        self.load_wh = 0.0
        self.renewable_wh = 0.0
        self.renewable_used_wh = 0.0
        self.surplus_wh = 0.0  # renewable energy neither used nor stored (export/curtail)
        self.grid_import_wh = 0.0
        self.unserved_wh = 0.0
        #: (t, facility energy J, busy core-s) at the last settlement
        self._settled: tuple[float, float, float] = (env.now, 0.0, 0.0)
        self.process = env.process(self._run())

    # -- estimate of the draw ------------------------------------------------------------
    def expected_power_w(self, servers: Sequence[Server], busy_cores: float) -> float:
        """Facility draw of ``servers`` carrying ``busy_cores`` busy cores on average
        (spread over their cores, at most all of them), plus the accelerator's idle draw
        (it is powered while a server is), W."""
        if not servers:
            return 0.0
        cores = sum(s.cores for s in servers)
        busy = min(busy_cores, cores)
        gpu = self.pool.accelerator
        idle_w = sum(s.idle_w for s in servers) + (gpu.sku.idle_w if gpu is not None else 0.0)
        dynamic_w_per_core = sum((s.max_w - s.idle_w) for s in servers) / cores
        return self.pool.pue * (idle_w + dynamic_w_per_core * busy)

    # -- the process ---------------------------------------------------------------------
    def _run(self) -> Generator[simpy.Event, Any, None]:
        env, pool = self.env, self.pool
        t_prev = env.now
        self._settled = (t_prev, pool.facility_energy_j(), pool.busy_core_s())
        self._decide(t_prev, self._next_wake_after(t_prev), float(pool.busy_cores()))
        while self.until_s is None or self._settled[0] < self.until_s:
            t = self._next_wake_after(self._settled[0])
            if self.until_s is not None:
                t = min(t, self.until_s)
            yield env.timeout(t - env.now)
            busy_cores = self.settle_until(t)
            if busy_cores is not None:
                self._decide(t, self._next_wake_after(t), busy_cores)

    def settle_until(self, t: float) -> float | None:
        """Settle the energy drawn since the last settlement up to ``t`` (the run's end
        calls it for a last step that ``env.run(until=horizon)`` does not reach); returns
        the mean busy cores of that step, None when already settled to ``t``."""
        t_prev, energy_prev_j, busy_prev = self._settled
        if t <= t_prev:
            return None
        pool = self.pool
        energy_j = pool.facility_energy_j(t)
        busy = pool.busy_core_s(t)
        self._settle(t_prev, t, (energy_j - energy_prev_j) / J_PER_WH)
        self._settled = (t, energy_j, busy)
        return (busy - busy_prev) / (t - t_prev)

    def _next_wake_after(self, t: float) -> float:
        """The next step boundary (a multiple of step_s) or grid transition after t."""
        k = math.floor(t / self.step_s + 1e-9) + 1
        t_next = k * self.step_s
        for edge in self.grid.edges_s():
            if t < edge < t_next:
                t_next = edge
        return t_next

    def _settle(self, t0: float, t1: float, load_wh: float) -> None:
        """Meet the energy drawn over [t0, t1] from renewables, grid, battery."""
        dt = t1 - t0
        grid_up = self.grid.is_up(t0)
        renewable_wh = float(self.supply.energy_j(t0, t1)) / J_PER_WH
        self.load_wh += load_wh
        self.renewable_wh += renewable_wh
        used = min(renewable_wh, load_wh)
        self.renewable_used_wh += used
        deficit = load_wh - used
        surplus = renewable_wh - used
        charged = self.battery.charge(surplus, dt) if surplus > 0 else 0.0
        self.surplus_wh += surplus - charged
        if deficit > 0:
            if grid_up:
                self.grid_import_wh += deficit
            else:
                delivered = self.battery.discharge(deficit, dt)
                self.unserved_wh += deficit - delivered
        if grid_up and self.charge_from_grid:
            topped = self.battery.charge(math.inf, dt, already_wh=charged)
            self.grid_import_wh += topped
        self.records.append(
            PowerRecord(
                t_s=t1,
                soc_wh=self.battery.soc,
                servers_shed=len(self.shed),
                load_w=load_wh * J_PER_WH / dt,
                renewable_w=renewable_wh * J_PER_WH / dt,
                grid_up=grid_up,
                unserved_wh=self.unserved_wh,
            )
        )

    def _decide(self, t: float, t_next: float, busy_cores: float) -> None:
        """Shed or restore servers for [t, t_next). The draw is estimated from the busy
        cores of the last step, or from the uploads in memory if more (a backlog keeps
        every powered core busy)."""
        pool = self.pool
        busy_cores = max(busy_cores, float(pool.in_memory()))
        if self.grid.is_up(t):
            while self.shed:
                self._restore(t)
            return
        dt = t_next - t
        available_wh = float(
            self.supply.energy_j(t, t_next)
        ) / J_PER_WH + self.battery.deliverable_wh(dt)
        powered = [s for s in pool.servers if s.online]
        changed = False
        for server in self.shed_order:
            if self.expected_power_w(powered, busy_cores) * dt / J_PER_WH <= available_wh:
                break
            if server in self.shed:
                continue
            self.shed.append(server)
            if server in powered:
                powered.remove(server)
            pool.set_down(server, SHED)
            self.shed_log.append((t, server.name, "shed"))
            changed = True
        if changed or not self.shed:
            return
        candidate = self.shed[-1]
        trial = [*powered, candidate] if not (candidate.down_reasons - {SHED}) else powered
        enough = self.expected_power_w(trial, busy_cores) * dt / J_PER_WH <= available_wh
        charged = self.battery.soc >= self.restore_soc_fraction * self.battery.capacity_wh
        renewables_alone = (
            self.expected_power_w(trial, busy_cores) * dt / J_PER_WH
            <= float(self.supply.energy_j(t, t_next)) / J_PER_WH
        )
        if enough and (charged or renewables_alone):
            self._restore(t)

    def _restore(self, t: float) -> None:
        server = self.shed.pop()
        self.pool.set_up(server, SHED)
        self.shed_log.append((t, server.name, "restore"))

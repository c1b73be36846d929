"""One MDC at run time: its server pool and everything that acts on it.

:class:`Mdc` builds the :class:`~hw_models.server.ServerPool` of an :class:`MdcSpec` (a
catalog SKU, or the generic cores/speed form at 0 W), and starts the processes of
:mod:`hw_models`: per-server crash/repair (MTBF/MTTR, each server drawing from its own
Generator keyed ``mdc/{name}/server-{i}/failures``), planned maintenance, whole-MDC power
losses, and the brown-out :class:`~hw_models.power_supply.PowerController` when the MDC has
a ``power`` table. The twin's world sends uploads through :meth:`Mdc.serve` (the pool's
``serve``, timed from outside) and asks :meth:`Mdc.loss_cause_on_crash` what a
:class:`~hw_models.server.JobLost` means for the ledger.

At the end :meth:`Mdc.report` gives its :class:`~twin.accounting.mdc_report.MdcReport`,
with two checks made on the run itself:

- energy: the exact integral of the simulated power equals the utilisation-weighted formula
  ``PUE * sum_servers(P_idle * T_up + (P_max - P_idle) * busy_core_s / cores)`` (the linear
  power model of X. Fan, W.-D. Weber, L. A. Barroso, ISCA 2007, integrated over time);
- Little's law, L = lambda W (J. D. C. Little, Operations Research 9(3), 1961), over the
  uploads from entering ``serve`` to leaving it (committed or lost). It is reported in the
  usual form (W over the uploads that left) and checked in its sample-path form over the
  finite window (S. Stidham, "A last word on L = lambda W", Operations Research 22(2),
  1974): the time-average number in the MDC, L, from the pool's own N(t) integral
  (:class:`~hw_models.little.LittleLawMonitor`, kept by ``arrive``/``depart`` calls inside
  the pool), equals the arrival rate times the mean time each arrival spent in the MDC
  within the window, W, taken from a stopwatch around each :meth:`Mdc.serve` call
  (:class:`SojournStopwatch`, uploads still inside at the end counted up to the end), and
  the arrivals the two count are the same. The two sides are measured independently, so an
  upload the pool forgets to count in or out, or a wrong N(t) integral, shows as a
  relative error above float rounding (or as a count mismatch).
"""

from __future__ import annotations

import itertools
import math
from array import array
from collections.abc import Callable, Generator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import simpy

from hw_models.accelerator import GpuBatcher
from hw_models.catalog import load_catalog
from hw_models.failures import (
    MaintenanceWindow,
    lifetime,
    mdc_power_loss,
    start_failures,
    start_maintenance,
)
from hw_models.little import LittleLawMonitor
from hw_models.power import J_PER_WH
from hw_models.power_supply import Battery, GridOutages, PowerController, SupplySeries
from hw_models.server import Server, ServerPool, ServiceDemand
from twin.accounting.mdc_report import BrownoutReport, EnergyCheck, LittleCheck, MdcReport
from twin.scenario.mdc import ACK_LOSS_CAUSE, MdcSpec

#: Relative tolerance of the energy check: both sides are sums of the same piecewise-constant
#: power in float64, so they agree to rounding (~1e-12 over a day); 1e-9 leaves room.
ENERGY_CHECK_TOLERANCE = 1e-9
#: Relative tolerance of the sample-path Little's law check (an exact identity; float64
#: rounding of sums of event times over a year of simulated seconds stays below 1e-9).
LITTLE_CHECK_TOLERANCE = 1e-9
KWH_TO_WH = 1000.0


class SojournStopwatch:
    """Entry and exit time of every upload through :meth:`Mdc.serve`, taken around the
    pool's ``serve`` call (not by the pool): the independent side of the Little's law
    check. Keeps two float64 arrays (16 bytes an upload)."""

    __slots__ = ("_in_s", "_open", "_out_s", "_tokens")

    def __init__(self) -> None:
        self._in_s: array[float] = array("d")
        self._out_s: array[float] = array("d")
        self._open: dict[int, float] = {}
        self._tokens = itertools.count()

    def enter(self, now_s: float) -> int:
        """Start timing one upload; returns its token for :meth:`leave`."""
        token = next(self._tokens)
        self._open[token] = now_s
        return token

    def leave(self, token: int, now_s: float) -> None:
        """Stop timing the upload of ``token`` (committed or lost)."""
        self._in_s.append(self._open.pop(token))
        self._out_s.append(now_s)

    def entered_since(self, start_s: float) -> int:
        """Uploads that entered at or after ``start_s``."""
        entered = np.frombuffer(self._in_s, dtype=np.float64)
        still_in = sum(1 for t in self._open.values() if t >= start_s)
        return int(np.count_nonzero(entered >= start_s)) + still_in

    def time_inside_s(self, start_s: float, end_s: float) -> float:
        """Total time the uploads spent inside during [start_s, end_s], s."""
        t_in = np.frombuffer(self._in_s, dtype=np.float64)
        t_out = np.frombuffer(self._out_s, dtype=np.float64)
        left = np.clip(np.minimum(t_out, end_s) - np.maximum(t_in, start_s), 0.0, None)
        inside = sum(max(0.0, end_s - max(t, start_s)) for t in self._open.values())
        return float(left.sum()) + inside


def renewable_supply(power_w: npt.ArrayLike, step_s: float, share: float = 1.0) -> SupplySeries:
    """The renewable power an MDC can draw: ``share`` of the summed AC output ``power_w``
    (W; [n_steps], or [n_sites, n_steps] as ``twin.world.fleet.FleetData.power_w``, summed over
    sites), piecewise constant over steps of ``step_s`` from t = 0. Missing values (NaN)
    count as 0 W, and negative values (inverter night-time draw) as 0 W of supply."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be in [0, 1], got {share!r}")
    values = np.asarray(power_w, dtype=np.float64)
    if values.ndim == 2:
        values = np.nansum(values, axis=0)
    elif values.ndim != 1:
        raise ValueError(f"power_w must be [n_steps] or [n_sites, n_steps], got {values.shape}")
    values = np.clip(np.nan_to_num(values, nan=0.0), 0.0, None) * share
    return SupplySeries(values, step_s)


class Mdc:
    """One MDC at run time (see the module docstring).

    ``rng_for(component_id)`` returns the Generator of a component (e.g.
    ``lambda cid: twin.rng.component_rng(seed, cid)``). ``renewables`` is the region's whole
    renewable AC output (see :func:`renewable_supply`, share 1); the MDC draws
    ``spec.power.renewables_share`` of it. ``power_losses`` are (at_s, duration_s) windows
    in which the whole MDC is dark (``mdc_power_loss`` faults).
    """

    def __init__(
        self,
        env: simpy.Environment,
        spec: MdcSpec,
        *,
        rng_for: Callable[[str], np.random.Generator],
        horizon_s: float,
        renewables: SupplySeries | None = None,
        power_losses: Sequence[tuple[float, float]] = (),
    ) -> None:
        self.env = env
        self.spec = spec
        self.name = spec.name
        self.region = spec.region
        self.horizon_s = horizon_s
        self.ack_after_commit = spec.ack_after_commit
        catalog = load_catalog()
        accelerator = (
            GpuBatcher(env, catalog.accelerator(spec.accelerator), name=f"{spec.name}/gpu")
            if spec.accelerator is not None
            else None
        )
        if spec.sku is not None:
            self.pool = ServerPool.from_sku(
                env,
                spec.name,
                catalog.server(spec.sku),
                spec.servers,
                ingest_ram_fraction=spec.ingest_ram_fraction,
                pue=spec.pue,
                accelerator=accelerator,
            )
        else:
            self.pool = ServerPool.build(
                env,
                spec.name,
                spec.servers,
                spec.cores_per_server,
                spec.speed_factor,
                ram_budget_bytes=spec.ingest_ram_budget_bytes,
                pue=spec.pue,
                accelerator=accelerator,
            )
        self._little = LittleLawMonitor(env.now)
        self.pool.little = self._little
        self.stopwatch = SojournStopwatch()
        self.processes: list[simpy.Process] = []
        if spec.failures is not None:
            failures = spec.failures
            rngs = [rng_for(f"mdc/{spec.name}/server-{i}/failures") for i in range(spec.servers)]
            self.processes += start_failures(
                self.pool,
                lifetime(failures.distribution, **failures.lifetime_params(failures.mtbf_s)),
                lifetime(failures.distribution, **failures.lifetime_params(failures.mttr_s)),
                rngs,
            )
        self.processes += start_maintenance(
            self.pool,
            [MaintenanceWindow(w.server, w.at_s, w.at_s + w.duration_s) for w in spec.maintenance],
        )
        losses = sorted((float(a), float(d)) for a, d in power_losses)
        for (a0, d0), (a1, _) in itertools.pairwise(losses):
            if a1 < a0 + d0:
                raise ValueError(f"{spec.name}: MDC power losses overlap: {losses}")
        self.power_losses = losses
        self.processes += [env.process(mdc_power_loss(self.pool, a, d)) for a, d in losses]
        self.controller: PowerController | None = None
        if spec.power is not None:
            power = spec.power
            if renewables is None:
                if power.renewables_share > 0:
                    raise ValueError(
                        f"{spec.name}: renewables_share = {power.renewables_share} needs the "
                        "region's renewable output"
                    )
                supply = SupplySeries(np.zeros(1), power.step_s)
            else:
                supply = SupplySeries(
                    renewables.power_w * power.renewables_share,
                    renewables.step_s,
                    renewables.start_s,
                )
            capacity_wh = power.battery_kwh * KWH_TO_WH
            battery = Battery(
                capacity_wh,
                max_charge_w=power.charge_kw * KWH_TO_WH,
                max_discharge_w=power.discharge_kw * KWH_TO_WH,
                round_trip_efficiency=power.round_trip_efficiency,
                soc_wh=power.initial_soc * capacity_wh,
            )
            self.controller = PowerController(
                env,
                self.pool,
                supply,
                battery,
                GridOutages([(a, a + d) for a, d in power.grid_outages_s]),
                power.step_s,
                restore_soc_fraction=power.restore_soc,
                until_s=horizon_s,
            )

    # -- state ---------------------------------------------------------------------------
    def is_up(self, t_s: float | None = None) -> bool:
        """Whether the MDC accepts uploads at ``t_s`` (default: now; only the present is
        known, failures being random): it is powered and at least one server is online and
        not cordoned."""
        if t_s is not None and t_s != self.env.now:
            raise ValueError(f"{self.name}: is_up is known at now ({self.env.now}), not {t_s}")
        return self.pool.powered and self.pool.any_available()

    def loss_cause_on_crash(self) -> str | None:
        """Ledger cause of readings lost in the MDC's memory, by acknowledgement mode: after a
        receipt ack they are lost (``mdc_crash_unpersisted``); before a commit ack the meter
        still has them and re-sends (None: no loss)."""
        return ACK_LOSS_CAUSE[self.spec.ack]

    # -- time series ---------------------------------------------------------------------
    def sample_columns(self) -> list[str]:
        """Names of the values of :meth:`sample`, prefixed with the MDC's name."""
        names = [
            "queue_depth",
            "admission_pending",
            "busy_cores",
            "online_servers",
            "facility_power_w",
        ]
        if self.controller is not None:
            names.append("battery_soc")
        return [f"{self.name}_{n}" for n in names]

    def sample(self) -> tuple[float, ...]:
        """Now: uploads waiting for a core, uploads held back by the RAM bound, busy cores,
        online servers, facility power (W) and, with a battery, its state of charge (0..1)."""
        pool = self.pool
        values = [
            float(pool.queued()),
            float(pool.admission_pending()),
            float(pool.busy_cores()),
            float(len(pool.online_servers())),
            pool.facility_power_w(),
        ]
        if self.controller is not None:
            battery = self.controller.battery
            values.append(battery.soc / battery.capacity_wh if battery.capacity_wh > 0 else 0.0)
        return tuple(values)

    # -- results -------------------------------------------------------------------------
    def energy_check(self, horizon_s: float) -> EnergyCheck:
        """Simulated facility energy of the servers vs the utilisation-weighted formula
        (module docstring), Wh; the accelerator is metered apart (``gpu_energy_wh``)."""
        formula_j = 0.0
        simulated_j = 0.0
        for server in self.pool.servers:
            up_s = horizon_s - server.downtime_s(horizon_s)
            dynamic_w = server.max_w - server.idle_w
            busy_core_s = server.busy_core_s(horizon_s)
            formula_j += server.idle_w * up_s + dynamic_w * busy_core_s / server.cores
            simulated_j += server.energy_j(horizon_s)
        pue = self.pool.pue
        error = abs(simulated_j - formula_j) / formula_j if formula_j > 0 else abs(simulated_j)
        return EnergyCheck(
            energy_check_simulated_wh=pue * simulated_j / J_PER_WH,
            energy_check_formula_wh=pue * formula_j / J_PER_WH,
            energy_check_relative_error=error,
            energy_check_tolerance=ENERGY_CHECK_TOLERANCE,
            energy_check_ok=error <= ENERGY_CHECK_TOLERANCE,
        )

    def serve(
        self,
        work: Callable[[Server], float | ServiceDemand],
        size_bytes: int,
        tag: Any = None,
        on_commit: Callable[[Server], None] | None = None,
        admitted: bool = False,
    ) -> Generator[simpy.Event, Any, float]:
        """The pool's ``serve`` (see :meth:`hw_models.server.ServerPool.serve`: returns the
        core seconds, raises :class:`~hw_models.server.JobLost`), timed by
        :attr:`stopwatch` from outside for the Little's law check."""
        token = self.stopwatch.enter(self.env.now)
        try:
            return (
                yield from self.pool.serve(
                    work, size_bytes, tag, on_commit=on_commit, admitted=admitted
                )
            )
        finally:
            self.stopwatch.leave(token, self.env.now)

    def little_check(self, horizon_s: float) -> LittleCheck:
        """Little's law over the run: the usual L, lambda, W (W of the uploads that left)
        and their relative error (edge effects included: uploads still inside at the end),
        and the sample-path check (module docstring): L from the pool's N(t) integral
        against lambda times W from :attr:`stopwatch`, with its tolerance."""
        little = self._little
        report = little.report(horizon_s)
        start_s = little.start_s
        timed = self.stopwatch.entered_since(start_s)
        window_mean_s = (
            self.stopwatch.time_inside_s(start_s, horizon_s) / report.arrivals
            if report.arrivals
            else 0.0
        )
        expected = report.arrival_rate_per_s * window_mean_s
        measured = report.time_avg_in_system
        if measured > 0:
            check_error = abs(measured - expected) / measured
        else:
            check_error = 0.0 if expected == 0 else math.inf
        return LittleCheck(
            little_window_s=report.window_s,
            little_arrivals=report.arrivals,
            little_arrivals_timed=timed,
            little_departures=report.departures,
            little_in_system_end=little.in_system,
            little_l=measured,
            little_lambda_per_s=report.arrival_rate_per_s,
            little_w_s=_finite_or_none(report.mean_sojourn_s),
            little_relative_error=_finite_or_none(report.relative_error),
            little_w_window_s=window_mean_s,
            little_check_relative_error=_finite_or_none(check_error),
            little_tolerance=LITTLE_CHECK_TOLERANCE,
            little_ok=check_error <= LITTLE_CHECK_TOLERANCE and timed == report.arrivals,
        )

    def brownout(self, horizon_s: float) -> BrownoutReport | None:
        """Brown-out figures of the power controller (None without a ``power`` table),
        settled to the horizon first (``env.run(until=horizon)`` stops before a settlement
        due at exactly the horizon): its energy accounts cover the whole run."""
        controller = self.controller
        if controller is None:
            return None
        controller.settle_until(horizon_s)
        shed_since: dict[str, float] = {}
        shed_server_s = 0.0
        sheds = 0
        for t_s, server, action in controller.shed_log:
            if action == "shed":
                shed_since[server] = t_s
                sheds += 1
            else:
                shed_server_s += t_s - shed_since.pop(server)
        shed_server_s += sum(horizon_s - t_s for t_s in shed_since.values())
        battery = controller.battery
        socs = [battery.initial_soc_wh, *(r.soc_wh for r in controller.records)]
        capacity = battery.capacity_wh
        return BrownoutReport(
            power_settled_to_s=controller.records[-1].t_s if controller.records else 0.0,
            power_servers_shed_events=sheds,
            power_servers_shed_server_s=shed_server_s,
            power_unserved_wh=controller.unserved_wh,
            power_load_wh=controller.load_wh,
            power_grid_import_wh=controller.grid_import_wh,
            power_renewable_wh=controller.renewable_wh,
            power_renewable_used_wh=controller.renewable_used_wh,
            power_renewable_surplus_wh=controller.surplus_wh,
            power_battery_capacity_wh=capacity,
            power_battery_min_soc_wh=min(socs),
            power_battery_min_soc=min(socs) / capacity if capacity > 0 else None,
            power_battery_losses_wh=battery.losses_wh,
        )

    def report(self, horizon_s: float) -> MdcReport:
        """The MDC over [0, horizon_s] (call at ``env.now == horizon_s``)."""
        pool = self.pool
        spec = self.spec
        stats = pool.stats(horizon_s)
        servers = pool.server_stats(horizon_s)
        lost_by_phase: dict[str, int] = {}
        for lost in pool.lost:
            lost_by_phase[lost.phase] = lost_by_phase.get(lost.phase, 0) + 1
        gpu = pool.accelerator
        return MdcReport(
            name=self.name,
            region=self.region,
            sku=spec.sku,
            servers=spec.servers,
            cores=spec.cores,
            cores_per_server=spec.cores_per_server,
            speed_factor=spec.speed_factor,
            ack=spec.ack,
            pue=stats.pue,
            it_energy_wh=stats.it_energy_wh,
            facility_energy_wh=stats.facility_energy_wh,
            gpu_energy_wh=gpu.energy_j(horizon_s) / J_PER_WH if gpu is not None else 0.0,
            server_utilisation={s.name: s.utilisation for s in servers},
            server_availability={s.name: s.availability for s in servers},
            server_jobs={s.name: s.jobs for s in servers},
            server_energy_wh={s.name: s.energy_wh for s in servers},
            queue_peak=stats.queue_peak,
            memory_peak_bytes=stats.memory_peak_bytes,
            ram_budget_bytes=stats.ram_budget_bytes,
            admission_waits=stats.admission_waits,
            admission_wait_s=stats.admission_wait_s,
            lost_jobs=stats.lost,
            lost_jobs_by_cause=stats.lost_by_cause,
            lost_jobs_by_phase=lost_by_phase,
            lost_jobs_work_done=sum(1 for r in pool.lost if r.work_done),
            power_losses=len(self.power_losses),
            energy=self.energy_check(horizon_s),
            little=self.little_check(horizon_s),
            brownout=self.brownout(horizon_s),
        )


def _finite_or_none(value: float) -> float | None:
    """JSON has no NaN or infinity: None instead."""
    return value if math.isfinite(value) else None


__all__ = ["ENERGY_CHECK_TOLERANCE", "LITTLE_CHECK_TOLERANCE", "Mdc", "renewable_supply"]

"""The record of one MDC over a run (:meth:`twin.world.mdc.Mdc.report`) and its two checks,
energy and Little's law; ``to_json`` flattens them into one record, as ``results.json``
holds it. Units in the names; per-server figures are keyed by server name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class EnergyCheck:
    """Facility energy of the servers as simulated and by the utilisation-weighted formula,
    Wh, their relative error, the tolerance and whether it holds."""

    energy_check_simulated_wh: float
    energy_check_formula_wh: float
    energy_check_relative_error: float
    energy_check_tolerance: float
    energy_check_ok: bool


@dataclass(frozen=True)
class LittleCheck:
    """Little's law over the window: arrivals (counted by the pool and timed from outside),
    departures, uploads inside at the end, L, lambda (1/s), W of those that left (s), the
    usual relative error, W within the window (s), the sample-path check's relative error,
    its tolerance and whether it holds. None where a figure is undefined."""

    little_window_s: float
    little_arrivals: int
    little_arrivals_timed: int
    little_departures: int
    little_in_system_end: int
    little_l: float
    little_lambda_per_s: float
    little_w_s: float | None
    little_relative_error: float | None
    little_w_window_s: float
    little_check_relative_error: float | None
    little_tolerance: float
    little_ok: bool


@dataclass(frozen=True)
class BrownoutReport:
    """The power controller of an MDC with a ``power`` table: settled to (s), servers shed
    (events and server-seconds), energy unserved, drawn, imported, renewable (available,
    used, surplus), the battery's capacity, lowest charge (Wh and fraction; None without a
    battery) and losses, all Wh."""

    power_settled_to_s: float
    power_servers_shed_events: int
    power_servers_shed_server_s: float
    power_unserved_wh: float
    power_load_wh: float
    power_grid_import_wh: float
    power_renewable_wh: float
    power_renewable_used_wh: float
    power_renewable_surplus_wh: float
    power_battery_capacity_wh: float
    power_battery_min_soc_wh: float
    power_battery_min_soc: float | None
    power_battery_losses_wh: float


@dataclass(frozen=True)
class MdcReport:
    """One MDC over the run: its hardware (SKU, servers, cores, speed factor), acknowledgement
    mode and PUE, energy (IT, facility, accelerator; Wh), per-server utilisation,
    availability, jobs and energy, queue and memory peaks, RAM admission waits, jobs lost (by
    cause and phase; with their pipeline call done), whole-MDC power losses, and the checks
    and brown-out figures above."""

    name: str
    region: str
    sku: str | None
    servers: int
    cores: int
    cores_per_server: int
    speed_factor: float
    ack: str
    pue: float
    it_energy_wh: float
    facility_energy_wh: float
    gpu_energy_wh: float
    server_utilisation: dict[str, float]
    server_availability: dict[str, float]
    server_jobs: dict[str, int]
    server_energy_wh: dict[str, float]
    queue_peak: int
    memory_peak_bytes: int
    ram_budget_bytes: int | None
    admission_waits: int
    admission_wait_s: float
    lost_jobs: int
    lost_jobs_by_cause: dict[str, int]
    lost_jobs_by_phase: dict[str, int]
    lost_jobs_work_done: int
    power_losses: int
    energy: EnergyCheck
    little: LittleCheck
    brownout: BrownoutReport | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["energy"], data["little"], data["brownout"]
        data |= asdict(self.energy) | asdict(self.little)
        if self.brownout is not None:
            data |= asdict(self.brownout)
        return data

"""Scenario schema of one ``[[mdc]]`` table: servers (a catalog SKU, or the generic form of
cores and speed), acknowledgement mode, PUE, ingest RAM, failures, maintenance, power
supply and an accelerator.

``parse_mdc(table, duration_s)`` validates one table into a frozen :class:`MdcSpec`; every
mistake is one :class:`~twin.errors.ScenarioError` naming the key, the value and what was
expected, and unknown keys are rejected (a typo must not be silently ignored). Sketch::

    [[mdc]]
    name = "north"
    region = "north"
    servers = { sku = "edge-1u-8c", count = 2 }   # or generic: { count = 1, cores = 4 }
    ack = "commit"                                 # "receipt" (default) or "commit"
    pue = 1.4
    ingest_ram_fraction = 0.25
    failures = { distribution = "weibull", mtbf = "2000h", mttr = "4h", shape = 0.7 }
    maintenance = [ { server = 0, at = "3h", duration = "1h" } ]
    accelerator = "t4"
    [mdc.power]
    battery_kwh = 5
    renewables_share = 0.01
    grid_outages = [ { at = "10h", duration = "4h" } ]
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hw_models.catalog import CatalogError, load_catalog
from hw_models.failures import LIFETIMES
from hw_models.power import DEFAULT_PUE
from hw_models.power_supply import LI_ION_ROUND_TRIP_EFFICIENCY
from twin.errors import ScenarioError
from twin.scenario.schema import MIN_PERIOD_S, Table

#: Acknowledgement modes of the MDC gateway -> the ledger cause of readings lost in the
#: MDC's memory when a server (or the MDC) goes down. ``receipt``: the gateway acknowledges
#: when the upload reaches it, the meter frees its buffer, so the MDC's copy was the only
#: one (``mdc_crash_unpersisted``). ``commit``: it acknowledges after the pipeline committed
#: the readings; a crash before that leaves the meter without an ack, it keeps its data and
#: re-sends (no loss, None).
ACK_LOSS_CAUSE: dict[str, str | None] = {
    "receipt": "mdc_crash_unpersisted",
    "commit": None,
}

#: Default ingest RAM fraction of a catalog SKU pool: ``ServerPool.from_sku``'s default, an
#: engineering assumption (the OS, the pipeline's working set and SQLite's page cache need
#: the rest), not a measured figure.
DEFAULT_INGEST_RAM_FRACTION = 0.25

#: Default Weibull shape of times between failures: B. Schroeder and G. A. Gibson, "A
#: large-scale study of failures in high-performance computing systems", DSN 2006, fit
#: Weibull shapes of 0.7-0.8 to the times between failures of their nodes. The same shape
#: is used for repair times, an assumption of this project: the study fits repair times
#: best with a lognormal (high variance, as a shape below 1 gives), which `LIFETIMES` does
#: not offer.
DEFAULT_WEIBULL_SHAPE = 0.7

#: Default battery charge and discharge power per kWh of capacity, kW/kWh (1C): the
#: maximum continuous charge and discharge current of common LFP prismatic cells (e.g.
#: EVE LF280K datasheet: 280 Ah, max continuous charge/discharge 1C).
DEFAULT_C_RATE_PER_H = 1.0

#: Default settlement step of the power controller, s: 5 min, the real-time dispatch
#: interval of most US grid operators (CAISO, ERCOT); an engineering choice, short against
#: battery time constants, long against the twin's event rate.
DEFAULT_POWER_STEP_S = 300.0

#: Default state of charge (fraction of capacity) below which shed servers stay shed unless
#: renewables alone carry them: :class:`hw_models.power_supply.PowerController`'s default
#: hysteresis, an engineering choice.
DEFAULT_RESTORE_SOC = 0.2

_MAX_SERVERS = 10_000


@dataclass(frozen=True)
class FailureSpec:
    """Per-server crash/repair process: up and down times drawn from ``distribution`` (a key
    of :data:`hw_models.failures.LIFETIMES`; Weibull with ``shape`` for both, see
    `DEFAULT_WEIBULL_SHAPE` for what that assumes of repairs) with means
    ``mtbf_s`` and ``mttr_s``. Long-run availability MTBF / (MTBF + MTTR)."""

    distribution: str
    mtbf_s: float
    mttr_s: float
    shape: float | None = None  # Weibull only

    def lifetime_params(self, mean_s: float) -> dict[str, float]:
        """Keyword arguments of the ``LIFETIMES`` constructor for a lifetime of ``mean_s``."""
        params = {"mean_s": mean_s}
        if self.shape is not None:
            params["shape"] = self.shape
        return params


@dataclass(frozen=True)
class MaintenanceSpec:
    """Planned maintenance of server ``server`` (index in the MDC) over
    [at_s, at_s + duration_s): graceful, nothing is lost (hw_models.failures.maintenance)."""

    server: int
    at_s: float
    duration_s: float


@dataclass(frozen=True)
class PowerSpec:
    """The MDC's supply besides the grid: a battery and a share of the region's renewables;
    the grid is out over ``grid_outages_s`` ((at_s, duration_s) windows). Energies at the
    battery terminals; its round-trip efficiency is NREL ATB 2023 Li-ion (85 %)."""

    battery_kwh: float = 0.0
    charge_kw: float = 0.0
    discharge_kw: float = 0.0
    initial_soc: float = 1.0  # fraction of capacity at the start
    renewables_share: float = 0.0  # fraction of the region's renewable AC output
    grid_outages_s: tuple[tuple[float, float], ...] = ()
    step_s: float = DEFAULT_POWER_STEP_S
    restore_soc: float = DEFAULT_RESTORE_SOC
    round_trip_efficiency: float = LI_ION_ROUND_TRIP_EFFICIENCY


@dataclass(frozen=True)
class MdcSpec:
    """One MDC of a scenario.

    With ``sku`` set, the per-server figures (cores, speed, RAM, disk, power) are the
    catalog's (``hw_models/catalog.toml``, sources there); without it (the generic form
    ``{ count, cores, speed_factor }``) the servers draw 0 W, write to an unbounded disk and
    have no RAM bound unless ``ram_gb_per_server`` is given.
    """

    name: str
    region: str = "north"
    sku: str | None = None
    servers: int = 1
    cores_per_server: int = 4
    speed_factor: float = 1.0  # single-core speed relative to the calibration machine
    ram_gb_per_server: float | None = None  # None: no RAM bound on the ingest queue
    idle_w_per_server: float = 0.0  # wall power at active idle (SPECpower), W
    max_w_per_server: float = 0.0  # wall power at 100 % load (SPECpower), W
    ack: str = "receipt"  # key of ACK_LOSS_CAUSE
    pue: float = DEFAULT_PUE  # Uptime Institute 2022 average, 1.55
    #: Fraction of the pool's RAM the ingest queue may hold; None: unbounded.
    ingest_ram_fraction: float | None = DEFAULT_INGEST_RAM_FRACTION
    failures: FailureSpec | None = None
    maintenance: tuple[MaintenanceSpec, ...] = ()
    power: PowerSpec | None = None  # None: grid only, never sheds
    accelerator: str | None = None  # catalog accelerator name

    @property
    def ack_after_commit(self) -> bool:
        return self.ack == "commit"

    @property
    def cores(self) -> int:
        """Cores of the whole MDC."""
        return self.servers * self.cores_per_server

    @property
    def ingest_ram_budget_bytes(self) -> int | None:
        """Bytes the ingest queue may hold (None: unbounded); ``ServerPool.from_sku``'s
        rule, RAM of all servers times ``ingest_ram_fraction``."""
        if self.ram_gb_per_server is None or self.ingest_ram_fraction is None:
            return None
        return int(self.ram_gb_per_server * 1e9 * self.servers * self.ingest_ram_fraction)


def parse_mdc(table: Table, duration_s: float) -> MdcSpec:
    """Validate one ``[[mdc]]`` table of a scenario lasting ``duration_s``."""
    catalog = load_catalog()
    name = table.string("name")
    region = table.string("region", "north")
    servers = table.table("servers")
    count = servers.integer("count", 1, 1, _MAX_SERVERS)
    sku_name = servers.raw("sku", None)
    ram_gb: float | None
    if sku_name is not None:
        for generic in ("cores", "speed_factor", "ram_gb"):
            if generic in servers.data:
                raise ScenarioError(
                    servers.key(generic),
                    servers.data[generic],
                    "no value: the SKU's catalog entry sets it (give sku or cores, not both)",
                )
        if not isinstance(sku_name, str):
            raise ScenarioError(servers.key("sku"), sku_name, "a string naming a catalog SKU")
        try:
            sku = catalog.server(sku_name)
        except CatalogError:
            raise ScenarioError(
                servers.key("sku"),
                sku_name,
                "a server SKU of hw_models/catalog.toml: " + ", ".join(sorted(catalog.servers)),
            ) from None
        cores, speed, ram_gb, idle_w, max_w = (
            sku.cores, sku.speed_factor, sku.ram_gb, sku.idle_w, sku.max_w
        )  # fmt: skip
    else:
        cores = servers.integer("cores", 4, 1, 1024)
        speed = servers.number("speed_factor", 1.0, 0.0, exclusive_minimum=True)
        ram_gb = None
        if servers.raw("ram_gb", None) is not None:
            ram_gb = servers.number("ram_gb", None, 0.0, exclusive_minimum=True)
        idle_w = max_w = 0.0
    servers.finish()

    fraction_default = DEFAULT_INGEST_RAM_FRACTION if ram_gb is not None else None
    if "ingest_ram_fraction" in table.data and ram_gb is None:
        raise ScenarioError(
            table.key("ingest_ram_fraction"),
            table.data["ingest_ram_fraction"],
            "no value without RAM to take a fraction of (give servers.sku or servers.ram_gb)",
        )
    fraction_raw = table.raw("ingest_ram_fraction", fraction_default)
    fraction = (
        None
        if fraction_raw is None
        else table.number("ingest_ram_fraction", fraction_default, 0.0, 1.0, exclusive_minimum=True)
    )
    accelerator = table.raw("accelerator", None)
    if accelerator is not None and (
        not isinstance(accelerator, str) or accelerator not in catalog.accelerators
    ):
        raise ScenarioError(
            table.key("accelerator"),
            accelerator,
            "an accelerator of hw_models/catalog.toml: " + ", ".join(sorted(catalog.accelerators)),
        )
    spec = MdcSpec(
        name=name,
        region=region,
        sku=sku_name,
        servers=count,
        cores_per_server=cores,
        speed_factor=speed,
        ram_gb_per_server=ram_gb,
        idle_w_per_server=idle_w,
        max_w_per_server=max_w,
        ack=table.string("ack", "receipt", choices=tuple(ACK_LOSS_CAUSE)),
        pue=table.number("pue", DEFAULT_PUE, 1.0, 10.0),
        ingest_ram_fraction=fraction,
        failures=_failures(table) if table.raw("failures", None) is not None else None,
        maintenance=_maintenance(table, count, duration_s),
        power=_power(table.table("power"), duration_s)
        if table.raw("power", None) is not None
        else None,
        accelerator=accelerator,
    )
    table.finish()
    return spec


def _failures(parent: Table) -> FailureSpec:
    table = parent.table("failures")
    kind = table.string("distribution", "exponential", choices=tuple(LIFETIMES))
    mtbf_s = table.duration_s("mtbf", minimum_s=MIN_PERIOD_S)
    mttr_s = table.duration_s("mttr", minimum_s=MIN_PERIOD_S)
    shape: float | None = None
    if kind == "weibull":
        shape = table.number("shape", DEFAULT_WEIBULL_SHAPE, 0.05, 20.0)
    elif "shape" in table.data:
        raise ScenarioError(table.key("shape"), table.data["shape"], 'distribution = "weibull"')
    table.finish()
    return FailureSpec(kind, mtbf_s, mttr_s, shape)


def _maintenance(parent: Table, servers: int, duration_s: float) -> tuple[MaintenanceSpec, ...]:
    windows = []
    for item in parent.tables("maintenance"):
        window = MaintenanceSpec(
            server=item.integer("server", minimum=0, maximum=servers - 1),
            at_s=_at_s(item, duration_s),
            duration_s=item.duration_s("duration"),
        )
        item.finish()
        windows.append((item, window))
    for (_, a), (item, b) in itertools.combinations(windows, 2):
        if a.server == b.server and _overlap(a.at_s, a.duration_s, b.at_s, b.duration_s):
            raise ScenarioError(
                item.key("at"),
                item.data["at"],
                f"a window not overlapping another of server {b.server}",
            )
    return tuple(w for _, w in windows)


def _power(table: Table, duration_s: float) -> PowerSpec:
    battery_kwh = table.number("battery_kwh", 0.0, 0.0, 1e6)
    default_kw = battery_kwh * DEFAULT_C_RATE_PER_H
    outages: list[tuple[float, float]] = []
    for item in table.tables("grid_outages"):
        outage = (_at_s(item, duration_s), item.duration_s("duration"))
        item.finish()
        for at_s, length_s in outages:
            if _overlap(at_s, length_s, *outage):
                raise ScenarioError(
                    item.key("at"), item.data["at"], "a window not overlapping another"
                )
        outages.append(outage)
    step_s = table.duration_s("step", "5min", minimum_s=MIN_PERIOD_S)
    spec = PowerSpec(
        battery_kwh=battery_kwh,
        charge_kw=table.number("charge_kw", default_kw, 0.0, 1e6),
        discharge_kw=table.number("discharge_kw", default_kw, 0.0, 1e6),
        initial_soc=table.number("initial_soc", 1.0, 0.0, 1.0),
        renewables_share=table.number("renewables_share", 0.0, 0.0, 1.0),
        grid_outages_s=tuple(sorted(outages)),
        step_s=step_s,
        restore_soc=table.number("restore_soc", DEFAULT_RESTORE_SOC, 0.0, 1.0),
        round_trip_efficiency=table.number(
            "round_trip_efficiency", LI_ION_ROUND_TRIP_EFFICIENCY, 0.0, 1.0, exclusive_minimum=True
        ),
    )
    table.finish()
    return spec


def _at_s(table: Table, duration_s: float) -> float:
    at_s = table.duration_s("at", positive=False)
    if at_s >= duration_s:
        raise ScenarioError(table.key("at"), table.raw("at"), "a time before the scenario's end")
    return at_s


def _overlap(a_s: float, a_len_s: float, b_s: float, b_len_s: float) -> bool:
    return a_s < b_s + b_len_s and b_s < a_s + a_len_s


__all__ = [
    "ACK_LOSS_CAUSE",
    "FailureSpec",
    "MaintenanceSpec",
    "MdcSpec",
    "PowerSpec",
    "parse_mdc",
]

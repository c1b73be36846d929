"""What a configuration costs over a planning horizon: the catalog price of its servers and
accelerators (``hw_models/catalog.toml``, indicative list prices, sources there) plus the
energy its MDCs draw from the facility (IT x PUE, ``kpis.energy_mdc_kwh``), scaled from the
run's duration to the horizon and priced per kWh.

Scaling assumes the simulated period is representative of the horizon (a day stands for
every day); servers of the generic form (no SKU) have no price and draw no power.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from hw_models.catalog import load_catalog
from twin.scenario.loader import Scenario

SECONDS_PER_YEAR = 365.25 * 86400.0
#: Default planning horizon, years: a common depreciation period of servers.
DEFAULT_YEARS = 5.0
#: Default electricity price, USD per kWh: an assumption of the order of commercial tariffs;
#: give the real tariff with ``--energy-price-per-kwh``.
DEFAULT_ENERGY_PRICE_PER_KWH = 0.15


@dataclass(frozen=True)
class Cost:
    """Hardware price, facility energy over the horizon (kWh) and its price, USD."""

    capex_usd: float
    energy_kwh: float
    energy_usd: float

    @property
    def total_usd(self) -> float:
        return self.capex_usd + self.energy_usd

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"total_usd": self.total_usd}


def capex_usd(scenario: Scenario) -> float:
    """Catalog price of every MDC's servers and accelerator."""
    catalog = load_catalog()
    total = 0.0
    for mdc in scenario.mdcs:
        if mdc.sku is not None:
            total += catalog.server(mdc.sku).price_usd * mdc.servers
        if mdc.accelerator is not None:
            total += catalog.accelerator(mdc.accelerator).price_usd
    return total


def horizon_cost(
    scenario: Scenario, energy_kwh_per_run: float, years: float, price_per_kwh: float
) -> Cost:
    """The :class:`Cost` of ``scenario``'s hardware over ``years``, its MDCs drawing
    ``energy_kwh_per_run`` over one run of the scenario's duration."""
    energy_kwh = energy_kwh_per_run * years * SECONDS_PER_YEAR / scenario.duration_s
    return Cost(capex_usd(scenario), energy_kwh, energy_kwh * price_per_kwh)

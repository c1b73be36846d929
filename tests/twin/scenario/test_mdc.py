"""Scenario schema of [[mdc]] tables: the SKU and generic server forms, every option and the
errors that name the key, the value and what was expected."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from hw_models.catalog import load_catalog
from hw_models.power import DEFAULT_PUE
from hw_models.power_supply import LI_ION_ROUND_TRIP_EFFICIENCY
from twin.errors import ScenarioError
from twin.scenario.mdc import MdcSpec, parse_mdc
from twin.scenario.schema import Table

HOUR = 3600.0


def spec_of(toml: str, duration_s: float = 24 * HOUR) -> MdcSpec:
    """Parse the first [[mdc]] table of a TOML snippet."""
    raw = tomllib.loads(toml)["mdc"][0]
    return parse_mdc(Table(raw, f"mdc.{raw.get('name', 0)}"), duration_s)


def test_sku_form_takes_the_catalog_figures_and_the_defaults() -> None:
    spec = spec_of('[[mdc]]\nname = "north"\nservers = { sku = "edge-1u-8c", count = 2 }\n')
    sku = load_catalog().server("edge-1u-8c")
    assert (spec.servers, spec.cores_per_server, spec.cores) == (2, sku.cores, 2 * sku.cores)
    assert (spec.speed_factor, spec.idle_w_per_server, spec.max_w_per_server) == (
        sku.speed_factor,
        sku.idle_w,
        sku.max_w,
    )
    assert spec.region == "north" and spec.ack == "receipt" and not spec.ack_after_commit
    assert spec.pue == DEFAULT_PUE and spec.ingest_ram_fraction == 0.25
    assert spec.ingest_ram_budget_bytes == int(2 * sku.ram_bytes * 0.25)
    assert spec.failures is None and spec.power is None and spec.maintenance == ()


def test_generic_form_of_cores_and_speed_parses() -> None:
    spec = spec_of('[[mdc]]\nname = "north"\nservers = { count = 1, cores = 4 }\n')
    assert (spec.sku, spec.servers, spec.cores_per_server, spec.speed_factor) == (None, 1, 4, 1.0)
    assert spec.ingest_ram_budget_bytes is None and spec.max_w_per_server == 0.0
    bounded = spec_of(
        '[[mdc]]\nname = "n"\ningest_ram_fraction = 0.5\nservers = { count = 2, ram_gb = 1.0 }\n'
    )
    assert bounded.ingest_ram_budget_bytes == 1_000_000_000


def test_full_table_parses_every_option() -> None:
    spec = spec_of(
        """
        [[mdc]]
        name = "south"
        region = "south"
        servers = { sku = "edge-1u-4c", count = 3 }
        ack = "commit"
        pue = 1.3
        ingest_ram_fraction = 0.1
        failures = { distribution = "weibull", mtbf = "2000h", mttr = "4h", shape = 1.5 }
        maintenance = [ { server = 0, at = "3h", duration = "1h" },
                        { server = 0, at = "5h", duration = "1h" } ]
        accelerator = "t4"
        [mdc.power]
        battery_kwh = 2
        initial_soc = 0.5
        renewables_share = 0.1
        step = "1min"
        grid_outages = [ { at = "10h", duration = "2h" } ]
        """
    )
    assert spec.ack_after_commit and spec.pue == 1.3 and spec.accelerator == "t4"
    assert spec.failures is not None and spec.failures.shape == 1.5
    assert spec.failures.mtbf_s == 2000 * HOUR and spec.failures.mttr_s == 4 * HOUR
    assert [(w.server, w.at_s, w.duration_s) for w in spec.maintenance] == [
        (0, 3 * HOUR, HOUR),
        (0, 5 * HOUR, HOUR),
    ]
    power = spec.power
    assert power is not None and power.grid_outages_s == ((10 * HOUR, 2 * HOUR),)
    # charge and discharge limits default to 1C, efficiency to NREL ATB Li-ion
    assert (power.charge_kw, power.discharge_kw, power.step_s) == (2.0, 2.0, 60.0)
    assert power.round_trip_efficiency == LI_ION_ROUND_TRIP_EFFICIENCY
    assert (power.initial_soc, power.renewables_share, power.restore_soc) == (0.5, 0.1, 0.2)


def test_baseline_scenario_mdc_table_parses() -> None:
    raw = tomllib.loads(
        (Path(__file__).resolve().parents[3] / "scenarios" / "baseline.toml").read_text()
    )
    spec = parse_mdc(Table(raw["mdc"][0], "mdc.north"), 86400.0)
    assert (spec.name, spec.sku, spec.servers, spec.cores_per_server) == (
        "north",
        "edge-1u-4c",
        1,
        4,
    )
    assert spec.idle_w_per_server == 16.0  # from the catalog (SPECpower result)


@pytest.mark.parametrize(
    ("body", "key", "expected"),
    [
        ('servers = { sku = "nope", count = 1 }', "mdc.m.servers.sku", "edge-1u-8c"),
        ('servers = { sku = "edge-1u-8c", cores = 4 }', "mdc.m.servers.cores", "not both"),
        ("servers = { count = 0 }", "mdc.m.servers.count", "an integer in [1"),
        ('ack = "never"', "mdc.m.ack", "'receipt', 'commit'"),
        ("pue = 0.9", "mdc.m.pue", "a number in [1.0"),
        ("ingest_ram_fraction = 0.5", "mdc.m.ingest_ram_fraction", "servers.ram_gb"),
        ("cooling = 1", "mdc.m.cooling", "a known key"),
        ('accelerator = "h100"', "mdc.m.accelerator", "t4"),
        (
            'failures = { distribution = "exponential", mtbf = "1h", mttr = "1h", shape = 2 }',
            "mdc.m.failures.shape",
            "weibull",
        ),
        ('failures = { mtbf = "1h" }', "mdc.m.failures.mttr", "required"),
        (
            'maintenance = [ { server = 1, at = "1h", duration = "1h" } ]',
            "mdc.m.maintenance.0.server",
            "an integer in [0, 0]",
        ),
        (
            'maintenance = [ { server = 0, at = "1h", duration = "2h" },'
            ' { server = 0, at = "2h", duration = "1h" } ]',
            "mdc.m.maintenance.1.at",
            "not overlapping",
        ),
        (
            'power = { grid_outages = [ { at = "30h", duration = "1h" } ] }',
            "mdc.m.power.grid_outages.0.at",
            "before the scenario's end",
        ),
        ("power = { initial_soc = 1.5 }", "mdc.m.power.initial_soc", "[0.0, 1.0]"),
    ],
)
def test_mistakes_name_the_key_the_value_and_what_was_expected(
    body: str, key: str, expected: str
) -> None:
    with pytest.raises(ScenarioError) as error:
        spec_of(f'[[mdc]]\nname = "m"\n{body}\n')
    assert error.value.key == key
    assert expected in error.value.expected

"""Service levels: the optional [slo] table (KPI name = "OP LIMIT") and --slo's 'KPI OP
LIMIT' parse to the same Slo; syntax errors are one clear line; a run's verdicts come from
the same KPI table twin compare reads."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from twin.accounting.kpi_names import kpi_table
from twin.errors import ScenarioError
from twin.scenario.loader import load_scenario, parse_scenario
from twin.scenario.schema import Table
from twin.scenario.slo import Slo, parse_slo, slo_table

BASELINE = Path(__file__).resolve().parents[3] / "scenarios" / "baseline.toml"


def test_the_table_is_read_in_file_order_and_travels_in_the_resolved_scenario() -> None:
    scenario = load_scenario(BASELINE, ["slo.latency_s.p99=<= 900", "slo.drain_s_max=<60"])
    assert scenario.slo == (
        Slo("readings_lost_total", "==", 0.0),
        Slo("latency_s.p99", "<=", 900.0),
        Slo("availability", ">=", 0.999),
        Slo("drain_s_max", "<", 60.0),
    )
    resolved = scenario.to_json()["slo"]
    assert resolved == {
        "readings_lost_total": "== 0.0",
        "latency_s.p99": "<= 900.0",
        "availability": ">= 0.999",
        "drain_s_max": "< 60.0",
    }
    assert slo_table(Table(resolved, "slo")) == scenario.slo  # the resolved table reads back


def test_the_table_and_the_option_give_the_same_slo() -> None:
    toml = 'latency_s.p99 = "<= 1800"\nutilization."north/server-0" = "< 0.5"\n'
    from_table = slo_table(Table(tomllib.loads(toml), "slo"))
    assert from_table == (
        parse_slo("latency_s.p99<=1800"),
        parse_slo("utilization.north/server-0 < 0.5"),
    )


def test_a_scenario_without_the_table_resolves_without_it() -> None:
    raw = tomllib.loads(BASELINE.read_text("utf-8"))
    del raw["slo"]
    scenario = parse_scenario(raw)
    assert scenario.slo == () and "slo" not in scenario.to_json()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("slo.latency_s.p99=1800", "slo.latency_s.p99 = 1800: expected 'OP NUMBER'"),
        ('slo.availability="high"', "slo.availability = 'high': expected 'OP NUMBER'"),
        ('slo.availability="=> 0.9"', "slo.availability = '=> 0.9': expected 'OP NUMBER'"),
        ('slo.availability=">= 0.9 0.8"', "slo.availability = '>= 0.9 0.8': expected 'OP"),
        ("slo.readings_lost_total=true", "slo.readings_lost_total = True: expected 'OP NUMBER'"),
        ('slo.latency_s.p99="<= nan"', "slo.latency_s.p99 = 'latency_s.p99 <= nan': expected"),
    ],
)
def test_a_bad_value_is_one_clear_error(override: str, message: str) -> None:
    with pytest.raises(ScenarioError) as error:
        load_scenario(BASELINE, [override])
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_an_slo_on_no_kpi_stops_the_run_before_it_starts() -> None:
    from twin.runner import run

    scenario = load_scenario(BASELINE, ['slo.latency_p99_s="<= 1800"'])
    with pytest.raises(ScenarioError, match=r"^slo\.latency_p99_s = .*expected a KPI name"):
        run(scenario)


@pytest.mark.parametrize(
    ("text", "value", "met"),
    [
        ("latency_s.p99<=1000", 950.0, True),
        ("latency_s.p99<950", 950.0, False),
        ("availability>=0.99", 0.9745, False),  # the mean of 0.999 and 0.95
        ("availability>0.97", 0.9745, True),
        ("readings_lost_total==0", 4.0, False),
        ("utilization_max<=0.5", 0.7, False),
        ("drain_s_max<=3600", 700.0, True),
        ("energy_mdc_kwh_total<=4", 4.0, True),
        ("hop_latency_s.backbone.mean<=1", None, None),  # None in results.json: not measured
    ],
)
def test_verdicts_of_one_run(text: str, value: float | None, met: bool | None) -> None:
    results = {
        "kpis": {
            "readings_generated": 1000,
            "readings_lost_total": 4,
            "latency_s": {"p50": 400.0, "p99": 950.0},
            "hop_latency_s": {"backbone": {"mean": None}},
            "utilization": {"a/server-0": 0.2, "a/server-1": 0.7},
            "energy_mdc_kwh": {"a": 1.5, "b": 2.5},
        },
        "mdcs": [{"server_availability": {"a/server-0": 0.999, "a/server-1": 0.95}}],
        "faults": [{"drain_s": 100.0}, {}, {"drain_s": 700.0}],
    }
    slo = parse_slo(text)
    measured = kpi_table(results)[slo.kpi]
    assert slo.met(measured) is met
    if value is not None:
        assert measured == pytest.approx(value)

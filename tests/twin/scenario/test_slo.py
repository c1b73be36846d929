"""The optional [slo] table: known keys only, numbers only, judged against results."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from twin.errors import ScenarioError
from twin.scenario.loader import load_scenario, parse_scenario
from twin.scenario.slo import SLO_KINDS, Slo, judge

BASELINE = Path(__file__).resolve().parents[3] / "scenarios" / "baseline.toml"


def test_the_table_is_read_in_file_order_and_travels_in_the_resolved_scenario() -> None:
    scenario = load_scenario(BASELINE, ["slo.latency_p99_s=900", "slo.drain_s=60"])
    assert scenario.slo == (
        Slo("readings_lost", 0.0),
        Slo("latency_p99_s", 900.0),
        Slo("availability", 0.999),
        Slo("drain_s", 60.0),
    )
    assert scenario.to_json()["slo"] == {
        "readings_lost": 0.0,
        "latency_p99_s": 900.0,
        "availability": 0.999,
        "drain_s": 60.0,
    }


def test_a_scenario_without_the_table_resolves_without_it() -> None:
    raw = tomllib.loads(BASELINE.read_text("utf-8"))
    del raw["slo"]
    scenario = parse_scenario(raw)
    assert scenario.slo == () and "slo" not in scenario.to_json()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("slo.latency_p99=1800", "slo.latency_p99 = 1800: expected a service level: latency_p50_s"),
        ('slo.availability="high"', "slo.availability = 'high': expected a number"),
        ("slo.readings_lost=true", "slo.readings_lost = True: expected a number"),
    ],
)
def test_an_unknown_key_or_a_bad_value_is_one_clear_error(override: str, message: str) -> None:
    with pytest.raises(ScenarioError) as error:
        load_scenario(BASELINE, [override])
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def _results(slo: dict[str, float]) -> dict:
    """The parts of a results.json the service levels read."""
    return {
        "scenario": {"slo": slo},
        "kpis": {
            "readings_generated": 1000,
            "readings_stored": 990,
            "readings_lost_total": 4,
            "readings_in_flight": 6,
            "latency_s": {"p50": 400.0, "p95": 800.0, "p99": 950.0, "max": 1200.0},
            "utilization": {"a/server-0": 0.2, "a/server-1": 0.7},
            "energy_mdc_kwh": {"a": 1.5, "b": 2.5},
        },
        "mdcs": [{"server_availability": {"a/server-0": 0.999, "a/server-1": 0.95}}],
        "faults": [{"drain_s": 100.0}, {}, {"drain_s": 700.0}],
        "analytics": None,
        "forecasts": {},
    }


def test_verdicts_bound_from_the_right_side() -> None:
    slo = {
        "latency_p99_s": 1000,  # 950 <= 1000
        "readings_lost": 0,  # 4 > 0
        "availability": 0.99,  # least available server 0.95 < 0.99
        "stored_fraction": 0.99,  # 0.99 >= 0.99
        "utilization_max": 0.5,  # 0.7 > 0.5
        "drain_s": 3600,  # longest 700 s
        "energy_mdc_kwh": 4.0,  # 1.5 + 2.5 <= 4
        "analytics_recall": 0.9,  # no fault kind scored: not measured
    }
    verdicts = {v.slo.key: (v.value, v.met) for v in judge(_results(slo))}
    assert verdicts == {
        "analytics_recall": (None, None),
        "availability": (0.95, False),
        "drain_s": (700.0, True),
        "energy_mdc_kwh": (4.0, True),
        "latency_p99_s": (950.0, True),
        "readings_lost": (4.0, False),
        "stored_fraction": (0.99, True),
        "utilization_max": (0.7, False),
    }


def test_every_kind_reads_a_real_run_shape() -> None:
    results = _results(dict.fromkeys(SLO_KINDS, 0.0))
    results["kpis"] |= {
        "throughput_readings_per_s": 1.0,
        "uploads_rejected": 0,
        "uploads_failed": 0,
        "mdc_queue_peak": 3,
    }
    assert {v.slo.key for v in judge(results)} == set(SLO_KINDS)


def test_analytics_and_forecast_levels_read_the_scores() -> None:
    """Recall is the worst kind's, precision that of all alerts, forecast skill the worst
    kind of site's whose forecasts are not their own reference."""
    results = _results({"analytics_recall": 0.9, "analytics_precision": 0.9, "forecast_skill": 0.2})
    results["analytics"] = {
        "precision": 0.95,
        "kinds": [{"recall": 1.0}, {"recall": 0.5}, {"recall": None}],
    }
    step = {"n": 10, "skill": 0.3}
    results["forecasts"] = {
        "pv": {
            "methods": ["feed_regression"],
            "references": ["smart_persistence"],
            "overall": step,
        },
        "wind": {
            "methods": ["persistence"],
            "references": ["persistence"],
            "overall": step | {"skill": 0.0},
        },
    }
    verdicts = {v.slo.key: (v.value, v.met) for v in judge(results)}
    assert verdicts == {
        "analytics_recall": (0.5, False),
        "analytics_precision": (0.95, True),
        "forecast_skill": (0.3, True),
    }

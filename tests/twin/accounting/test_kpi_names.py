"""KPI names: dotted paths into results.json's kpis plus the derived KPIs; names checked by
shape before any run and against what the runs reported."""

from __future__ import annotations

import math

import pytest

from twin.accounting.kpi_names import (
    DERIVED_KPIS,
    check_kpi_name,
    check_slos,
    flatten,
    kpi_table,
    kpi_values,
    missing_kpis,
)
from twin.errors import ScenarioError, UsageError
from twin.scenario.slo import parse_slo


def test_availability_counts_every_server_of_every_mdc() -> None:
    record = {
        "kpis": {"energy_mdc_kwh": {}, "readings_lost_total": 0, "readings_generated": 0},
        "mdcs": [
            {"server_availability": {"a/server-0": 1.0, "a/server-1": 0.5}},
            {"server_availability": {"b/server-0": 0.9}},
        ],
    }
    assert kpi_table(record)["availability"] == pytest.approx(0.8)


@pytest.mark.parametrize(
    "name",
    ["latency_s.p99", "readings_lost_total", "availability", "hop_latency_s.mdc_queue.mean",
     "utilization.north/server-0", "readings_lost.mdc_crash_unpersisted", "mdc_queue_peak"],
)  # fmt: skip
def test_names_of_the_kpis_record(name: str) -> None:
    check_kpi_name(name, "--slo", name)


@pytest.mark.parametrize(
    "name", ["latency_s", "latency_s.p999", "hop_latency_s.mdc_queue", "throughput", "alerts.x"]
)
def test_names_that_are_no_kpi_are_one_error_with_a_hint(name: str) -> None:
    with pytest.raises(UsageError, match="--slo") as error:
        check_kpi_name(name, "--slo", name)
    assert "\n" not in str(error.value)


def test_a_table_key_the_scenario_lacks_is_found_after_the_first_run() -> None:
    table = {"utilization.north/server-0": 0.1, "latency_s.p99": 5.0}
    missing_kpis(["latency_s.p99"], table, "--slo")
    with pytest.raises(ScenarioError, match=r"utilization\.south/server-0"):
        missing_kpis(["utilization.south/server-0"], table, "--slo")


def test_the_derived_kpis_read_their_sections_and_exist_only_with_them() -> None:
    record = {
        "kpis": {
            "readings_lost_total": 4,
            "readings_generated": 1000,
            "utilization": {"a/server-0": 0.2, "a/server-1": 0.7},
            "energy_mdc_kwh": {"a": 1.5, "b": 2.5},
            "latency_s": {"p99": None},
        },
        "mdcs": [{"server_availability": {"a/server-0": 0.999, "a/server-1": 0.95},
                  "power_unserved_wh": 12.5}],
        "faults": [{"drain_s": 100.0}, {"drain_s": None}, {"drain_s": 700.0}],
    }  # fmt: skip
    table = kpi_table(record)
    assert table["availability"] == pytest.approx((0.999 + 0.95) / 2)  # the mean, not the min
    assert table["utilization_max"] == 0.7
    assert table["energy_mdc_kwh_total"] == 4.0
    assert table["loss_fraction"] == 0.004
    assert table["power_unserved_wh_total"] == 12.5
    assert table["drain_s_max"] == 700.0
    assert math.isnan(table["latency_s.p99"])
    assert "latency_s.p99" not in kpi_values(record)
    del record["faults"]
    assert "drain_s_max" not in kpi_table(record)
    without_sections = {"drain_s_max", "analytics_recall_min", "analytics_precision",
                        "forecast_skill_min"}  # fmt: skip
    assert set(kpi_table(record)) - set(flatten(record["kpis"])) == set(DERIVED_KPIS) - (
        without_sections
    )


def test_a_name_is_checked_against_the_names_the_runs_reported() -> None:
    check_kpi_name("latency_s.p99", "--fail-on", "latency_s.p99>0", ["latency_s.p99"])
    with pytest.raises(UsageError) as error:
        check_kpi_name("latency_s.p9", "--fail-on", "latency_s.p9>0", ["latency_s.p99"])
    assert str(error.value).startswith("--fail-on = 'latency_s.p9>0': expected a KPI the runs")
    assert "did you mean latency_s.p99?" in str(error.value)


def test_the_slos_of_a_scenario_are_checked_by_shape_naming_their_key() -> None:
    check_slos([parse_slo("drain_s_max<=60"), parse_slo("utilization.a/server-0<0.5")], "slo")
    with pytest.raises(ScenarioError) as error:
        check_slos([parse_slo("latency_p99_s<=60")], "slo")
    assert str(error.value).startswith("slo.latency_p99_s = 'latency_p99_s<=60': expected a KPI")


def test_analytics_and_forecast_kpis_read_the_scores() -> None:
    """Recall is the worst kind's, precision that of all alerts, forecast skill the worst
    kind of site's whose forecasts are not their own reference."""
    step = {"n": 10, "skill": 0.3}
    record = {
        "kpis": {"readings_lost_total": 0, "readings_generated": 0},
        "analytics": {
            "precision": 0.95,
            "kinds": [{"recall": 1.0}, {"recall": 0.5}, {"recall": None}],
        },
        "forecasts": {
            "pv": {"methods": ["feed_regression"], "references": ["smart_persistence"],
                   "overall": step},
            "wind": {"methods": ["persistence"], "references": ["persistence"],
                     "overall": step | {"skill": 0.0}},
        },
    }  # fmt: skip
    table = kpi_table(record)
    assert table["analytics_recall_min"] == 0.5
    assert table["analytics_precision"] == 0.95
    assert table["forecast_skill_min"] == 0.3
    no_scores = kpi_table(record | {"analytics": None, "forecasts": {}})
    assert all(math.isnan(no_scores[k]) for k in ("analytics_recall_min", "analytics_precision",
                                                   "forecast_skill_min"))  # fmt: skip

"""KPI names: dotted paths into results.json's kpis plus the derived KPIs, the same table
from a study's run record and from a results.json written by twin run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from twin.errors import ScenarioError
from twin.outputs.files import write_outputs
from twin.runner import run
from twin.study.kpi_names import DERIVED_KPIS, check_kpi_name, kpi_table, missing_kpis
from twin.study.sweep import SweepResult


def test_a_results_json_and_the_run_record_give_the_same_table(
    serial_sweep: SweepResult, tmp_path: Path
) -> None:
    first = serial_sweep.points[0]
    results = run(first.point.scenario, first.runs[0].seed)
    files = write_outputs(results, tmp_path, plots=False)
    from_file = kpi_table(json.loads(files.results.read_text()))
    assert from_file == first.runs[0].table()
    k = results.kpis
    assert from_file["latency_s.p99"] == k.latency_s.p99
    assert from_file["readings_lost_total"] == k.readings_lost_total
    assert from_file["readings_lost.meter_buffer_overflow"] == 0
    assert from_file["utilization.north/server-0"] == k.utilization["north/server-0"]
    assert from_file["hop_latency_s.mdc_queue.n"] == k.hop_latency_s["mdc_queue"].n
    assert math.isnan(from_file["hop_latency_s.backbone.mean"])  # no backbone: None in JSON
    assert from_file["energy_mdc_kwh_total"] == pytest.approx(sum(k.energy_mdc_kwh.values()))
    servers = results.mdcs[0].server_availability
    assert from_file["availability"] == pytest.approx(sum(servers.values()) / len(servers))
    assert from_file["loss_fraction"] == k.readings_lost_total / k.readings_generated
    assert set(DERIVED_KPIS) <= set(from_file)


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
    check_kpi_name(name, "--slo")


@pytest.mark.parametrize(
    "name", ["latency_s", "latency_s.p999", "hop_latency_s.mdc_queue", "throughput", "alerts.x"]
)
def test_names_that_are_no_kpi_are_one_error_with_a_hint(name: str) -> None:
    with pytest.raises(ScenarioError, match="--slo") as error:
        check_kpi_name(name, "--slo")
    assert "\n" not in str(error.value)


def test_a_table_key_the_scenario_lacks_is_found_after_the_first_run() -> None:
    table = {"utilization.north/server-0": 0.1, "latency_s.p99": 5.0}
    missing_kpis(["latency_s.p99"], table, "--slo")
    with pytest.raises(ScenarioError, match=r"utilization\.south/server-0"):
        missing_kpis(["utilization.south/server-0"], table, "--slo")

"""Scenario loading: the shipped scenarios validate; every mistake names key, value, expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from twin.cli import main
from twin.errors import ScenarioError
from twin.scenario.loader import load_scenario

ROOT = Path(__file__).resolve().parents[3]
BASELINE = ROOT / "scenarios" / "baseline.toml"


def test_baseline_is_a_summer_day_of_a_northern_fleet() -> None:
    s = load_scenario(BASELINE)
    assert s.duration_s == 86400.0
    assert s.start.month == 6
    kinds = {f.kind: f for f in s.fleets}
    assert kinds["pv"].count >= 200 and kinds["wind"].count >= 20
    assert {f.region for f in s.fleets} == {"north"}
    assert kinds["pv"].meter.sample_s == 60.0 and kinds["pv"].meter.upload_s == 900.0
    assert s.weather.source == "tmy3:723170TYA"
    assert s.pipeline.service_time == "calibrated"


def test_overrides_address_items_by_name() -> None:
    s = load_scenario(
        BASELINE,
        [
            "fleet.pv.count=12",
            "network.cellular.loss_probability=0.5",
            "fleet.wind.meter.buffer_readings=3",
            'scenario.duration="2h"',
        ],
    )
    pv, wind = s.fleets
    assert pv.count == 12 and s.cellular.loss_probability == 0.5
    assert wind.meter.buffer_readings == 3 and s.duration_s == 7200.0


@pytest.mark.parametrize(
    ("override", "key", "expected"),
    [
        ("fleet.pv.count=-3", "fleet.pv.count", "an integer in [0, 1000000]"),
        ("fleet.pv.count=many", "fleet.pv.count", "an integer"),
        ('scenario.duration="1 fortnight"', "scenario.duration", "a duration string"),
        (
            "network.cellular.loss_probability=1.5",
            "network.cellular.loss_probability",
            "[0.0, 1.0]",
        ),
        ("fleet.pv.meter.bufer_readings=3", "fleet.pv.meter.bufer_readings", "a known key"),
        ('fleet.wind.kind="hydro"', "fleet.wind.kind", "one of 'pv', 'wind'"),
        ("fleet.solar.count=3", "fleet.solar", "the name of an item (pv, wind)"),
        ('pipeline.service_time="guess"', "pipeline.service_time", "'calibrated', 'measured'"),
        ('scenario.start="2026-06-21T00:00:00"', "scenario.start", "with a zone"),
        # values that would otherwise fail deep inside a run
        ('scenario.duration="90s"', "scenario.duration", "a whole number of fleet pv's sample"),
        ('weather.source="tmy3:NOPE"', "weather.source", "tmy3:723170TYA"),
        ('fleet.wind.turbine="E-82/230"', "fleet.wind.turbine", "E-82/2300"),
        ("fleet.pv.capacity_kw=inf", "fleet.pv.capacity_kw", "a finite number"),
        (
            "fleet.wind.roughness_length_m=1000",
            "fleet.wind.roughness_length_m",
            "a number in (0.0, 2.0]",
        ),
        ("pipeline.authenticate=1", "pipeline.authenticate", "true or false"),
        ('pipeline.analytics_every="0s"', "pipeline.analytics_every", "greater than zero"),
        ('weather.feed.sample="7min"', "weather.feed.sample", "an interval dividing 1h"),
        ('weather.feed.upload="90s"', "weather.feed.upload", "a whole number of sample"),
        ("weather.feed.enabled=1", "weather.feed.enabled", "true or false"),
        ('weather.feed.outage_mttr="0s"', "weather.feed.outage_mttr", "greater than zero"),
        ("weather.feed.stations=2", "weather.feed.stations", "a known key"),
        ('scenario.start="9999-12-31T12:00:00Z"', "scenario.start", "[1900, 2200]"),
        ("network.cellular.max_attempts=5000", "network.cellular.max_attempts", "[1, 1000]"),
        (
            "network.cellular.access_latency_sigma=1000",
            "network.cellular.access_latency_sigma",
            "[0.0, 3.0]",
        ),
        ('fleet.pv.meter.upload_jitter="2h"', "fleet.pv.meter.upload_jitter", "at most the upload"),
        ('mdc.north.region="south"', "mdc.north.region", "a region of the fleet: north"),
        ('scenario.name="../../tmp/evil"', "scenario.name", "used as a folder"),
        ('pipeline.cost_model="/etc/hostname"', "pipeline.cost_model", "JSONDecodeError"),
        # values that passed and then overflowed the schedules' integers, or kept a run
        # busy without end
        ('fleet.pv.meter.upload="36526d"', "fleet.pv.meter.upload", "at most 36525d"),
        ('pipeline.analytics_every="1ms"', "pipeline.analytics_every", "at least 1min"),
        ('network.vpn.rekey="1s"', "network.vpn.rekey", "at least 1min"),
        ('network.vpn.drop_mtbf="1s"', "network.vpn.drop_mtbf", "at least 1min"),
        ("network.vpn.inner_header_bytes=" + str(2**63), "network.vpn.inner_header_bytes", "]"),
    ],
)
def test_bad_values_name_key_value_and_expectation(override: str, key: str, expected: str) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(BASELINE, [override])
    assert info.value.key == key
    assert expected in info.value.expected
    assert key in str(info.value)


def test_bad_fault_entries(tmp_path: Path) -> None:
    text = (
        BASELINE.read_text()
        + '\n[[fault]]\nkind = "malformed_upload"\nat = "1h"\nmeter = "pv-99999"\n'
        + 'payload = "billion_laughs"\n'
    )
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.key == "fault.0.meter" and info.value.value == "pv-99999"


def test_cli_exit_code_2_with_one_clear_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["validate", str(BASELINE)]) == 0
    assert main(["validate", str(BASELINE), "--set", "fleet.pv.count=-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["twin: scenario error: fleet.pv.count = -1: expected an integer in [0, 1000000]"]
    broken = tmp_path / "broken.toml"
    broken.write_text("[scenario\nname=")
    assert main(["run", str(broken), "--out", str(tmp_path)]) == 2
    assert main(["validate", str(tmp_path / "missing.toml")]) == 2
    assert main(["run", str(BASELINE), "--set", "nonsense"]) == 2


def test_fault_meter_must_be_an_exact_id(tmp_path: Path) -> None:
    fault = (
        '\n[[fault]]\nkind = "malformed_upload"\nat = "1h"\nmeter = "pv-1"\npayload = "truncated"\n'
    )
    path = tmp_path / "s.toml"
    path.write_text(BASELINE.read_text() + fault)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.key == "fault.0.meter"


def test_negative_seed_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(BASELINE), "--seed", "-1", "--no-progress"]) == 2
    assert "--seed = -1: expected an integer in [0, 9223372036854775807]" in capsys.readouterr().err


def test_degraded_coverage_takes_its_extra_latency_as_a_duration(tmp_path: Path) -> None:
    fault = (
        '\n[[fault]]\nkind = "degraded_coverage"\nat = "1h"\nduration = "2h"\n'
        'region = "north"\nextra_latency = "750ms"\nrate_factor = 0.25\n'
    )
    path = tmp_path / "s.toml"
    path.write_text(BASELINE.read_text() + fault)
    params = load_scenario(path).faults[0].param_dict
    assert params == {"extra_latency_s": 0.75, "extra_loss_probability": 0.1, "rate_factor": 0.25}
    path.write_text(BASELINE.read_text() + fault.replace('"750ms"', "0.75"))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert info.value.key == "fault.0.extra_latency" and "duration string" in info.value.expected


def test_a_vpn_repair_time_without_random_drops_is_refused() -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(BASELINE, ['network.vpn.drop_mttr="5min"'])
    assert info.value.key == "network.vpn.drop_mttr" and "drop_mtbf" in info.value.expected
    load_scenario(BASELINE, ['network.vpn.drop_mttr="5min"', 'network.vpn.drop_mtbf="12h"'])


def test_a_weather_file_the_run_cannot_read_is_refused_at_validation(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.epw"
    bogus.write_text("LOCATION,nowhere\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(BASELINE, [f'weather.source="epw:{bogus}"'])
    assert info.value.key == "weather.source"
    assert info.value.expected.startswith('"epw:PATH" of a readable EPW file (reading it failed')


def test_fleet_names_must_make_meter_ids_the_pipeline_takes() -> None:
    for name, expected in [
        ("pv\u00e9", "ASCII letters, digits, '-' or '_'"),
        ("p" * 251, "a name of at most 250 characters"),
    ]:
        with pytest.raises(ScenarioError) as info:
            load_scenario(BASELINE, [f'fleet.pv.name="{name}"'])
        assert info.value.value == name and expected in info.value.expected
    # the longest name that fits: its meter ids have 256 characters
    load_scenario(BASELINE, [f'fleet.pv.name="{"p" * 250}"'])
    with pytest.raises(ScenarioError) as info:  # a million meters: ids of 6 digits
        load_scenario(BASELINE, ["fleet.pv.count=1000000", f'fleet.pv.name="{"p" * 250}"'])
    assert "a name of at most 249 characters" in info.value.expected


def test_a_fault_can_target_a_meter_past_index_99999(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        BASELINE.read_text()
        + '\n[[fault]]\nkind = "meter_power_loss"\nat = "1h"\nduration = "1h"\n'
        + 'meter = "pv-100000"\n'
    )
    assert load_scenario(path, ["fleet.pv.count=100001"]).faults[0].meter == "pv-100000"
    with pytest.raises(ScenarioError) as info:
        load_scenario(path, ["fleet.pv.count=100000"])
    assert info.value.key == "fault.0.meter"

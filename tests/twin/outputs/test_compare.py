"""twin compare: the KPI table of real runs, Welch intervals over replications, gates that
break with exit 1 naming the KPI, and one-line usage errors with exit 2."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from twin.accounting.intervals import welch_interval
from twin.cli import main
from twin.outputs.compare import Side, compare_kpi, load_side, load_sides, parse_gate
from twin.outputs.kpi_names import kpi_patterns, kpi_values


def _compare(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["compare", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_two_runs_side_by_side_with_changes_and_a_page(
    outage_run: Path, longer_outage_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "cmp.html"
    code, out, err = _compare(
        capsys, str(outage_run), str(longer_outage_run), "--format", "json", "--html", str(page)
    )
    assert code == 0 and err.strip() == f"compare page: {page}"
    table = json.loads(out)
    assert [s["label"] for s in table["sides"]] == ["outage", "outage3h"]
    a = kpi_values(json.loads((outage_run / "results.json").read_text("utf-8")))
    b = kpi_values(json.loads((longer_outage_run / "results.json").read_text("utf-8")))
    rows = {row["name"]: row for row in table["kpis"]}
    assert set(rows) == set(a) | set(b)
    p99 = rows["latency_s.p99"]
    assert p99["values"][0]["mean"] == a["latency_s.p99"]
    assert p99["changes"][1]["absolute"] == pytest.approx(b["latency_s.p99"] - a["latency_s.p99"])
    assert p99["changes"][1]["relative"] == pytest.approx(
        (b["latency_s.p99"] - a["latency_s.p99"]) / a["latency_s.p99"]
    )
    assert p99["changes"][1]["ci95"] is None  # one run a side: no interval
    assert rows["readings_generated"]["changes"][1]["absolute"] == 0
    text = page.read_text("utf-8")
    assert "outage3h: cell_outage north cell 0" in text and "latency-e2e" in text


def test_markdown_table_for_a_ci_comment(
    outage_run: Path, longer_outage_run: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = _compare(
        capsys,
        str(outage_run),
        str(longer_outage_run),
        "--format",
        "markdown",
        "--kpi",
        "latency_s.*",
        "--html",
        str(tmp_path / "c.html"),
    )
    lines = out.strip().splitlines()
    assert code == 0
    assert lines[0] == "| KPI | outage | outage3h | change | change % |"
    assert lines[1] == "|---|---:|---:|---:|---:|"
    assert [line.split(" | ")[0] for line in lines[2:]] == [
        f"| latency_s.{s}" for s in ("max", "mean", "p50", "p95", "p99")
    ]


def test_a_broken_gate_exits_1_and_names_the_kpi(
    outage_run: Path, longer_outage_run: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    a, b = (
        json.loads((p / "results.json").read_text("utf-8"))["kpis"]
        for p in (outage_run, longer_outage_run)
    )
    assert b["latency_s"]["p99"] > 1.1 * a["latency_s"]["p99"]  # an hour more outage
    html = ["--html", str(tmp_path / "c.html")]
    code, _, err = _compare(
        capsys,
        str(outage_run),
        str(longer_outage_run),
        *html,
        "--fail-on",
        "latency_s.p99>+10%",
        "--fail-on",
        "readings_lost_total>0",
    )
    assert code == 1
    assert "gate BROKEN: latency_s.p99>+10%: outage3h latency_s.p99 changed by +" in err
    assert "gate passed: readings_lost_total>0: outage3h readings_lost_total = 0" in err
    # the same gates hold between a run and itself
    code, _, err = _compare(
        capsys, str(outage_run), str(outage_run), *html, "--fail-on", "latency_s.p99>+10%"
    )
    assert code == 0 and "gate passed" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fail-on", "latency.p99>+10%"], "--fail-on = 'latency.p99>+10%': expected a KPI"),
        (["--fail-on", "latency_s.p99 >> 10"], "expected KPI OP VALUE"),
        (["--fail-on", "latency_s.p99>ten"], "expected KPI OP VALUE"),
        (["--kpi", "latency_s.p999"], "did you mean latency_s.p99"),
    ],
)
def test_bad_kpi_names_and_gates_are_one_line_and_exit_2(
    outage_run: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = _compare(capsys, str(outage_run), str(outage_run), *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("twin: error: ") and message in err


def test_a_missing_folder_is_one_line_and_exit_2(
    outage_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _compare(capsys, str(outage_run), str(tmp_path / "nope"))
    nope = str(tmp_path / "nope")
    assert code == 2 and err == f"twin: error: RUN = {nope!r}: expected an existing folder\n"


def test_gate_forms() -> None:
    assert parse_gate("latency_s.p99>+10%").mode == "relative"
    assert parse_gate("latency_s.p99 <= -2.5").mode == "change"
    gate = parse_gate("readings_lost_total>0")
    assert (gate.kpi, gate.op, gate.threshold, gate.mode) == (
        "readings_lost_total",
        ">",
        0,
        "value",
    )


def _replications(run: Path, folder: Path, p99_s: list[float]) -> Path:
    """Copies of a run folder as replications whose p99 latency is ``p99_s``."""
    for i, value in enumerate(p99_s):
        copy = shutil.copytree(run, folder / f"seed-{i}")
        results = json.loads((copy / "results.json").read_text("utf-8"))
        results["kpis"]["latency_s"]["p99"] = value
        (copy / "results.json").write_text(json.dumps(results), "utf-8")
    return folder


def test_replications_give_welchs_interval(outage_run: Path, tmp_path: Path) -> None:
    a_p99 = [900.0, 910.0, 905.0, 915.0]
    b_p99 = [960.0, 1000.0, 980.0]
    a = load_side(_replications(outage_run, tmp_path / "a", a_p99))
    b = load_side(_replications(outage_run, tmp_path / "b", b_p99))
    assert (a.label, len(a.runs), len(b.runs)) == ("a", 4, 3)
    row = compare_kpi([a, b], "latency_s.p99")
    delta = row.deltas[0]
    assert delta is not None and delta.interval is not None
    expected = stats.ttest_ind(b_p99, a_p99, equal_var=False).confidence_interval(0.95)
    assert (delta.interval.low, delta.interval.high) == pytest.approx(
        (expected.low, expected.high), rel=1e-9
    )
    assert delta.interval.significant
    # identical replications on both sides: a zero-width interval at zero, not significant
    same = compare_kpi([a, a], "readings_stored").deltas[0]
    assert same is not None and same.interval is not None and not same.interval.significant


def test_welch_interval_covers_the_true_difference_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(2026)
    covered = 0
    trials = 2000
    for _ in range(trials):
        a = rng.normal(10.0, 1.0, 5)
        b = rng.normal(12.0, 3.0, 8)
        ci = welch_interval(a, b)
        assert ci is not None
        covered += ci.low <= 2.0 <= ci.high
    # binomial: 95 % of 2000 with a 4-sigma margin (sd 9.7)
    assert abs(covered - 0.95 * trials) < 40


def test_one_run_against_replications_is_the_one_sample_interval() -> None:
    b = np.array([3.0, 5.0, 4.0, 6.0])
    ci = welch_interval(np.array([1.0]), b)
    expected = stats.ttest_1samp(b, 1.0).confidence_interval(0.95)
    assert ci is not None and (ci.low, ci.high) == pytest.approx(
        (expected.low - 1.0, expected.high - 1.0), rel=1e-9
    )
    assert welch_interval(np.array([1.0]), np.array([2.0])) is None


def test_every_kpi_of_a_run_fits_a_documented_pattern(outage_run: Path) -> None:
    import fnmatch

    names = kpi_values(json.loads((outage_run / "results.json").read_text("utf-8")))
    patterns = [p.replace("<key>", "*") for p in kpi_patterns()]
    assert all(any(fnmatch.fnmatch(n, p) for p in patterns) for n in names)
    assert "readings_lost_total" in patterns and "latency_s.p99" in patterns
    side = Side("x", outage_run, [], [names])
    assert side.values("latency_s.p99").tolist() == [names["latency_s.p99"]]


def test_sides_with_the_same_folder_name_get_distinct_labels(
    outage_run: Path, tmp_path: Path
) -> None:
    other = shutil.copytree(outage_run, tmp_path / "elsewhere" / "outage")
    labels = [s.label for s in load_sides([outage_run, other, outage_run])]
    assert labels == [f"{outage_run} (1)", str(other), f"{outage_run} (2)"]

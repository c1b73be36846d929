"""Checks every run test can make on the ledger: recomputed from what the run reports and
from the pipeline's own store, so that each can fail on its own."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from twin.accounting.results import Results
from twin.runner import STORE_NAME, run
from twin.scenario.field import meter_ids
from twin.scenario.loader import load_scenario

LedgerCheck = Callable[..., None]


def check_ledger(results: Results, store_dir: Path | None = None) -> None:
    """The readings the scenario generates, recomputed from its fleets, are all stored,
    lost by a named cause or in flight (the per-cause counts add up); the KPIs and the
    ledger record agree; and, given the run's ``store_dir``, the store holds every stored
    reading (committed or committing at the end) once, with one row per channel of its
    meter, and nothing else."""
    scenario, k, ledger = results.scenario, results.kpis, results.ledger
    expected = sum(int(f.count * scenario.duration_s // f.meter.sample_s) for f in scenario.fleets)
    assert k.readings_generated == expected
    lost = sum(k.readings_lost.values())
    assert k.readings_generated == k.readings_stored + lost + k.readings_in_flight
    assert (ledger.generated, ledger.stored, ledger.in_flight) == (
        k.readings_generated,
        k.readings_stored,
        k.readings_in_flight,
    )
    assert ledger.lost == k.readings_lost and k.duplicates_discarded == ledger.duplicates
    if store_dir is None or results.service_time.rows_modelled:
        return  # model mode counts readings as stored that the database never received
    # one energy channel per flow (two with a load: delivered and received), plus the
    # electrical channels the meter records
    channels = {
        m: len(f.meter.channels) + (1 if f.load is not None else 0)
        for f in scenario.fleets
        for m in meter_ids(f)
    }
    with sqlite3.connect(store_dir / STORE_NAME) as db:
        per_meter = db.execute(
            "SELECT meter_id, COUNT(*), COUNT(DISTINCT start_s) FROM readings GROUP BY meter_id"
        ).fetchall()
    assert all(rows == readings * channels[m] for m, rows, readings in per_meter)
    assert sum(r for _, _, r in per_meter) == k.readings_stored + ledger.committing_at_end
    assert sum(rows for _, rows, _ in per_meter) == ledger.store_rows


@pytest.fixture
def ledger_check() -> LedgerCheck:
    """:func:`check_ledger`."""
    return check_ledger


@pytest.fixture(scope="session")
def field_faults_results() -> Results:
    """The shipped ``field_faults`` scenario's run (every kind of field fault and a storm's
    cut-outs), made once for the tests that read it."""
    scenarios = Path(__file__).resolve().parents[2] / "scenarios"
    return run(load_scenario(scenarios / "field_faults.toml"))

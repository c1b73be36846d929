"""Authenticated uploads in a run: every meter seals its uploads; forged envelopes are
rejected with their reason and their readings are lost as ``rejected_auth``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from twin.errors import ScenarioError
from twin.runner import run
from twin.scenario.faults import FaultSpec
from twin.scenario.loader import load_scenario

BASELINE = Path(__file__).resolve().parents[3] / "scenarios" / "baseline.toml"
SMALL = ['scenario.duration="6h"', "fleet.pv.count=6", "fleet.wind.count=0"]
LedgerCheck = Callable[..., None]  # the ledger_check fixture (tests/twin/conftest.py)


def test_forged_envelopes_are_rejected_and_counted(
    tmp_path: Path, ledger_check: LedgerCheck
) -> None:
    scenario = load_scenario(BASELINE, [*SMALL, "network.cellular.ack_loss_probability=0.05"])
    faults = tuple(
        FaultSpec(kind="tampered_upload", at_s=3600.0 * (i + 1), meter=f"pv-0000{i}", payload=p)
        for i, p in enumerate(("bad_signature", "unknown_meter", "replayed_sequence"))
    )
    results = run(dataclasses.replace(scenario, faults=faults), store_dir=tmp_path)
    reasons = sorted(r.reason.split(":")[0] for r in results.rejections)
    assert reasons == ["auth_bad_signature", "auth_replay", "auth_unknown_meter"]
    assert all(r.stage == "fetch" for r in results.rejections)
    # each forged upload carried one 15-min window of 1-min readings (or a backlog chunk)
    lost = results.kpis.readings_lost
    assert lost["rejected_auth"] == sum(r.readings for r in results.rejections) > 0
    assert sum(lost.values()) == lost["rejected_auth"]
    # honest retransmissions after lost acknowledgements pass authentication: duplicates
    assert results.kpis.duplicates_discarded > 0
    ledger_check(results, tmp_path)


def test_unauthenticated_pipeline_cannot_have_tampering_faults(tmp_path: Path) -> None:
    text = BASELINE.read_text(encoding="utf-8") + (
        '\n[[fault]]\nkind = "tampered_upload"\nat = "1h"\nmeter = "pv-00001"\n'
        'payload = "bad_signature"\n'
    )
    path = tmp_path / "tampered.toml"
    path.write_text(text, encoding="utf-8")
    assert load_scenario(path).faults[0].payload == "bad_signature"
    with pytest.raises(ScenarioError, match=r"fault\.0\.kind.*pipeline\.authenticate = true"):
        load_scenario(path, ["pipeline.authenticate=false"])

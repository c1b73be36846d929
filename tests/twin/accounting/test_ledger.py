"""The ledger's transitions and its audit, on hand-made histories."""

from __future__ import annotations

import numpy as np
import pytest

from twin.accounting.ledger import Ledger, LedgerError


def test_store_after_handoff_and_duplicate() -> None:
    ledger = Ledger(np.array([10]), np.array([60.0]))
    ledger.touch(0, 5)  # five readings in the meter buffer
    ledger.add_copy(0, 0, 5)  # delivered to the MDC
    ledger.drop_copy(0, 0, 5, None)  # meter deletes on acknowledgement
    assert ledger.store(0, 0, 5, 400.0) == 5
    ledger.add_copy(0, 0, 5)  # a late duplicate
    assert ledger.store(0, 0, 5, 500.0) == 0
    # committed at 400 s: before that the readings are still in flight
    snap = ledger.audit(300.0)
    assert (snap.generated, snap.stored, snap.in_flight, snap.duplicates) == (5, 0, 5, 5)
    snap = ledger.audit(500.0)
    assert (snap.generated, snap.stored, snap.in_flight) == (8, 5, 3)
    assert ledger.latencies_s().tolist() == [340.0, 280.0, 220.0, 160.0, 100.0]


def test_loss_takes_the_cause_of_the_last_copy() -> None:
    ledger = Ledger(np.array([10]), np.array([60.0]))
    ledger.touch(0, 4)
    ledger.add_copy(0, 0, 2)
    assert ledger.drop_copy(0, 0, 4, "meter_buffer_overflow") == 2  # 2, 3 had one copy
    assert ledger.drop_copy(0, 0, 2, "rejected_invalid") == 2
    snap = ledger.audit(600.0)
    assert {c: n for c, n in snap.lost.items() if n} == {
        "meter_buffer_overflow": 2,
        "rejected_invalid": 2,
    }
    assert snap.in_flight == 6 and snap.balanced


def test_handoff_of_a_rejected_copy_is_a_rejection() -> None:
    ledger = Ledger(np.array([3]), np.array([60.0]))
    ledger.touch(0, 3)
    ledger.add_copy(0, 0, 3)
    ledger.drop_copy(0, 0, 3, "rejected_invalid")  # MDC rejected it first
    ledger.drop_copy(0, 0, 3, None)  # then the meter deleted its copy on the ack
    assert ledger.audit(180.0).lost["rejected_invalid"] == 3


def test_audit_catches_a_dropped_copy_without_a_cause() -> None:
    ledger = Ledger(np.array([3]), np.array([60.0]))
    ledger.touch(0, 3)
    with pytest.raises(LedgerError):
        ledger.drop_copy(0, 0, 3, None)


def test_audit_catches_a_reading_with_no_copy_and_no_state() -> None:
    ledger = Ledger(np.array([3]), np.array([60.0]))
    ledger.touch(0, 3)
    ledger.copies[1] = 0  # a bug that forgets a copy
    with pytest.raises(LedgerError):
        ledger.audit(180.0)

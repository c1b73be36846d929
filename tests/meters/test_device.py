"""The meter's store-and-forward buffer and its upload schedule."""

from __future__ import annotations

import numpy as np

from meters.device import MeterBuffers, upload_schedule


def test_overflow_evicts_the_oldest_and_ack_deletes_only_what_is_held() -> None:
    b = MeterBuffers(np.array([10]))
    assert b.evict_overflow(0, 8) == (0, 0)
    assert b.evict_overflow(0, 25) == (0, 15)  # keeps readings 15..24
    assert b.pending(0, 25) == (15, 25)
    assert b.acknowledge(0, 12, 20) == (15, 20)  # 12..14 were evicted meanwhile
    assert b.pending(0, 25) == (20, 25)


def test_schedule_covers_every_window_once_in_time_order() -> None:
    offsets = np.array([100.0, 0.0, 899.0])
    times, meters = upload_schedule(offsets, np.array([900.0, 900.0, 900.0]), 3600.0)
    assert np.all(np.diff(times) >= 0)
    assert np.bincount(meters).tolist() == [4, 4, 4]
    assert times[meters == 0].tolist() == [100.0, 1000.0, 1900.0, 2800.0]

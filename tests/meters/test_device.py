"""The meter's store-and-forward buffer, power loss, and its upload schedule."""

from __future__ import annotations

import numpy as np
import pytest

from meters.device import MeterBuffers, upload_offsets_s, upload_schedule


def test_overflow_evicts_the_oldest_and_ack_deletes_only_what_is_held() -> None:
    b = MeterBuffers(np.array([10]))
    assert b.evict_overflow_runs(0, 8) == []
    assert b.evict_overflow_runs(0, 25) == [(0, 15)]  # keeps readings 15..24
    assert b.pending(0, 25) == (15, 25)
    assert b.acknowledge_runs(0, 12, 20) == [(15, 20)]  # 12..14 were evicted meanwhile
    assert b.pending(0, 25) == (20, 25)


def test_schedule_covers_every_window_once_in_time_order() -> None:
    offsets = np.array([100.0, 0.0, 899.0])
    times, meters = upload_schedule(offsets, np.array([900.0, 900.0, 900.0]), 3600.0)
    assert np.all(np.diff(times) >= 0)
    assert np.bincount(meters).tolist() == [4, 4, 4]
    assert times[meters == 0].tolist() == [100.0, 1000.0, 1900.0, 2800.0]


def test_power_loss_loses_exactly_the_unflushed_held_readings() -> None:
    b = MeterBuffers(np.array([100, 100]))
    b.busy[0] = True
    for _ in range(3):
        b.take_sequence_no(0)
    # 40 readings produced, flushed at 15 and 30: 30..39 are only in RAM
    assert b.power_loss(0, 40, flush_every=15) == (30, 40)
    assert not b.powered[0] and not b.busy[0] and b.power_cycles[0] == 1
    assert b.take_sequence_no(0) == 3  # sequence numbers are in NVM
    assert b.power_loss(0, 45, 15) == (30, 30)  # already off: nothing more to lose
    # while off it records nothing: the persisted readings are all it has
    assert b.pending(0, 47) == (0, 30)
    assert b.held(0, 47) == 30
    # back at 50: readings 40..49 were never recorded
    assert b.power_restored(0, 50) == (40, 50)
    assert b.power_restored(0, 51) == (51, 51)  # already on
    assert b.held_runs(0, 55) == [(0, 30), (50, 55)]
    assert b.pending(0, 55) == (0, 30)  # one upload never spans a hole
    assert b.acknowledge_runs(0, 0, 30) == [(0, 30)]
    assert b.pending(0, 55) == (50, 55)  # the hole is skipped
    assert b.holes == {}
    # the flush grid restarts at power-up: 50 + 15 = 65 is flushed, 65..69 is not
    assert b.power_loss(0, 70, 15) == (65, 70)
    # the other meter is untouched
    assert b.powered[1] and b.pending(1, 70) == (0, 70)


def test_power_loss_loses_nothing_already_acknowledged_or_flushed() -> None:
    b = MeterBuffers(np.array([100]))
    assert b.acknowledge_runs(0, 0, 35) == [(0, 35)]
    assert b.power_loss(0, 40, 15) == (35, 40)  # 30..34 were acknowledged, not lost
    assert b.power_restored(0, 40) == (40, 40)
    assert b.holes == {} and b.pending(0, 42) == (40, 42)
    b2 = MeterBuffers(np.array([100]))
    assert b2.power_loss(0, 45, 15) == (45, 45)  # just flushed: nothing in RAM


def test_eviction_and_acknowledgement_across_a_hole() -> None:
    b = MeterBuffers(np.array([20]))
    assert b.power_loss(0, 20, 15) == (15, 20)  # keeps 0..14 in NVM
    assert b.power_restored(0, 30) == (20, 30)
    # holds 0..14 and 30..39 = 25 > 20: evict the 5 oldest, no hole crossed yet
    assert b.evict_overflow_runs(0, 40) == [(0, 5)]
    # 0..14 and 30..54 would be 10 + 25 = 35: evict 15, across the hole
    assert b.evict_overflow_runs(0, 55) == [(5, 15), (30, 35)]
    assert b.held_runs(0, 55) == [(35, 55)] and b.held(0, 55) == 20
    # an acknowledgement spanning a hole deletes the held ranges only
    b2 = MeterBuffers(np.array([100]))
    b2.power_loss(0, 20, 15)
    b2.power_restored(0, 30)
    assert b2.acknowledge_runs(0, 0, 35) == [(0, 15), (30, 35)]
    assert b2.pending(0, 40) == (35, 40)
    # an acknowledgement of only the first held range (what one upload carries, pending
    # stops at the hole) leaves the readings past the hole held
    b3 = MeterBuffers(np.array([100]))
    b3.power_loss(0, 20, 15)
    b3.power_restored(0, 30)
    assert b3.pending(0, 35) == (0, 15)
    assert b3.acknowledge_runs(0, 0, 15) == [(0, 15)]
    assert b3.held_runs(0, 40) == [(30, 40)]


def _settle(
    held: set[int], fate: dict[int, str], ranges: list[tuple[int, int]], state: str
) -> None:
    """Readings of ``ranges`` leave the reference buffer for ``state``; each must be held."""
    for lo, hi in ranges:
        for i in range(lo, hi):
            assert i in held, (state, i)
            held.remove(i)
            fate[i] = state


def test_random_schedules_keep_every_reading_in_exactly_one_state() -> None:
    """Against a reference set of held readings: every range returned is held, disjoint and
    hole-free, and each reading ends acknowledged, evicted, lost, unrecorded or held."""
    rng = np.random.default_rng(11)
    crossings = {"evict": 0}
    for _trial in range(30):
        capacity, flush = int(rng.integers(5, 60)), int(rng.integers(1, 20))
        b = MeterBuffers(np.array([capacity]))
        held: set[int] = set()
        fate: dict[int, str] = {}
        produced, record_from, powered = 0, 0, True
        for _ in range(300):
            produced += int(rng.integers(0, 6))
            if powered:
                held.update(i for i in range(produced) if i not in fate and i >= record_from)
            op = rng.integers(1, 10)
            if op < 4:
                evicted = b.evict_overflow_runs(0, produced)
                crossings["evict"] += len(evicted) > 1
                _settle(held, fate, evicted, "evicted")
                assert len(held) <= capacity and b.held(0, produced) == len(held)
                if evicted:  # the oldest went
                    assert all(i >= max(hi for _, hi in evicted) for i in held)
            elif op < 7:
                lo, hi = b.pending(0, produced)
                if held:
                    assert lo == min(held)
                assert all(i in held for i in range(lo, hi))
                hi = lo + int(rng.integers(0, hi - lo + 1))
                _settle(held, fate, b.acknowledge_runs(0, lo, hi), "acknowledged")
            elif op < 8 and powered:
                lo, hi = b.power_loss(0, produced, flush)
                flushed = record_from + flush * ((produced - record_from) // flush)
                assert (lo, hi) == (max(b.start[0], flushed), produced) or hi == lo
                assert {i for i in held if i >= flushed} == set(range(lo, hi))
                _settle(held, fate, [(lo, hi)], "lost")
                powered, off_at = False, produced
            elif op < 9 and not powered:
                lo, hi = b.power_restored(0, produced)
                assert (lo, hi) == (off_at, produced)
                fate.update(dict.fromkeys(range(lo, hi), "unrecorded"))
                powered, record_from = True, produced
            assert sorted(held) == [i for lo, hi in b.held_runs(0, produced) for i in range(lo, hi)]
        expected = set(range(produced)) - (set() if powered else set(range(off_at, produced)))
        assert set(fate) | held == expected and not set(fate) & held
    assert crossings["evict"] > 0  # the schedules did evict across holes


def test_herd_puts_every_meter_at_one_offset_and_jitter_spreads_them() -> None:
    n = 4000
    spread = upload_offsets_s([np.random.default_rng([3, i]) for i in range(n)], 900.0, 900.0)
    assert np.all((spread >= 0) & (spread < 900.0))
    # the same numbers as one uniform draw per meter's generator
    assert spread[7] == np.random.default_rng([3, 7]).uniform(0.0, 900.0)
    # uniform on [0, 900): mean 450, sd 900/sqrt(12); 4 standard errors
    assert abs(spread.mean() - 450.0) < 4 * 900.0 / np.sqrt(12 * n)
    assert len(np.unique(spread)) == n
    rngs = [np.random.default_rng([3, i]) for i in range(n)]
    herd = upload_offsets_s(rngs, 900.0, 900.0, herd=True)
    assert np.all(herd == herd[0])
    # the herd draws too: each generator is where it would be without the herd
    assert rngs[7].uniform() == np.random.default_rng([3, 7]).uniform(size=2)[1]
    narrow = upload_offsets_s([np.random.default_rng(i) for i in range(100)], 900.0, 60.0)
    assert narrow.max() < 60.0
    with pytest.raises(ValueError, match=r"jitter_s=1000.0: expected 0 <= jitter_s <= upload_s"):
        upload_offsets_s([np.random.default_rng(0)], 900.0, 1000.0)

"""Two encoders agree on the channel clock through storage alone (conditional creates)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from kubecast.encoder.clock import ChannelClock
from kubecast.storage import Store

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def clocks(tmp_path):
    store = Store(str(tmp_path / "store"))
    return [ChannelClock(store=store, channel="news", instance=i, segment_duration_ms=2000) for i in "AB"]


def test_both_encoders_share_media_time_zero(tmp_path):
    a, b = clocks(tmp_path)
    assert a.availability_start(NOW, fallback=NOW - timedelta(hours=1)) == NOW - timedelta(hours=1)
    assert b.availability_start(NOW + timedelta(seconds=5)) == NOW - timedelta(hours=1)


def test_a_dual_push_racing_into_both_encoders_lands_on_one_epoch(tmp_path):
    for attempt in range(5):  # the race goes either way; every outcome must agree
        a, b = clocks(tmp_path / str(attempt))
        a.availability_start(NOW)
        with ThreadPoolExecutor(2) as pool:
            placements = list(pool.map(lambda clock: clock.place(first_timestamp_ms=120, now=NOW + timedelta(seconds=7), last_written=None), (a, b)))
        assert placements[0].offset_ms == placements[1].offset_ms == 6000 - 120
        assert sorted(p.joined for p in placements) == [False, True]


def test_a_restarted_publisher_opens_the_next_epoch(tmp_path):
    a, b = clocks(tmp_path)
    a.availability_start(NOW)
    first = a.place(first_timestamp_ms=0, now=NOW + timedelta(seconds=1), last_written=None)
    # B restarts 30 s later and receives the same contribution from where it is now.
    rejoined = b.place(first_timestamp_ms=30_000, now=NOW + timedelta(seconds=31), last_written=None)
    assert rejoined.joined and rejoined.offset_ms == first.offset_ms
    # The publisher restarts (timestamps from 0) after 60 s; A had written up to segment 29.
    restarted = a.place(first_timestamp_ms=0, now=NOW + timedelta(seconds=61), last_written=29)
    assert (restarted.epoch, restarted.first_segment, restarted.joined, restarted.discontinuity) == (1, 30, False, True)
    assert b.place(first_timestamp_ms=0, now=NOW + timedelta(seconds=61.2), last_written=14).offset_ms == restarted.offset_ms

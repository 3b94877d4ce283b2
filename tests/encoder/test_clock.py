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
            placements = list(
                pool.map(
                    lambda clock: clock.place(
                        first_timestamp_ms=120, now=NOW + timedelta(seconds=7), last_written=None
                    ),
                    (a, b),
                )
            )
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
    assert (
        b.place(first_timestamp_ms=0, now=NOW + timedelta(seconds=61.2), last_written=14).offset_ms
        == restarted.offset_ms
    )


def test_a_damaged_clock_is_restored_from_the_timeline_and_the_channel_goes_on(tmp_path, caplog):
    from kubecast.media.timeline import Timeline
    from kubecast.storage import layout

    a, b = clocks(tmp_path)
    store = a.store
    store.put_sync(layout.clock_key("news"), b"{not json")
    start = NOW - timedelta(minutes=10)
    store.put_sync(
        layout.timeline_key("news"),
        Timeline(
            channel="news",
            state="waiting",
            updated=NOW,
            availability_start_time=start,
            segment_duration_ms=2000,
            window_ms=60000,
        ).to_json(),
    )
    assert a.availability_start(NOW) == start and b.availability_start(NOW + timedelta(seconds=3)) == start
    assert "unreadable" in caplog.text and "news" in caplog.text


def test_a_damaged_epoch_is_skipped_and_its_number_never_reused(tmp_path, caplog):
    from kubecast.storage import layout

    a, b = clocks(tmp_path)
    a.availability_start(NOW)
    first = a.place(first_timestamp_ms=0, now=NOW + timedelta(seconds=1), last_written=None)
    a.store.put_sync(layout.epoch_key("news", 1), b"\x00garbage")  # a torn write of the next epoch
    # The publisher restarts: a new epoch, numbered after the damaged one, and B agrees with it.
    restarted = a.place(first_timestamp_ms=0, now=NOW + timedelta(seconds=61), last_written=29)
    assert (restarted.epoch, restarted.first_segment, restarted.discontinuity) == (2, 30, True)
    assert (
        b.place(first_timestamp_ms=500, now=NOW + timedelta(seconds=61.5), last_written=None).offset_ms
        == restarted.offset_ms
    )
    assert first.epoch == 0 and "epoch" in caplog.text and "unreadable" in caplog.text

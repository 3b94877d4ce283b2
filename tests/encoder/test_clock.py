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


def progress(instance: str, *, start: datetime | None, numbers: dict[str, list[int]]) -> bytes:
    from kubecast.media.tracks import SegmentRecord
    from kubecast.storage import EncoderProgress

    return EncoderProgress(
        channel="news",
        instance=instance,
        session="s",
        state="waiting",
        updated=NOW,
        availability_start_time=start,
        segment_duration_ms=2000,
        segments={
            track: [SegmentRecord(n, n * 180000, 180000, 10, False, False) for n in ns] for track, ns in numbers.items()
        },
    ).to_json()


def test_a_damaged_clock_is_restored_from_the_encoders_progress_and_the_channel_goes_on(tmp_path, caplog):
    from kubecast.storage import layout

    a, b = clocks(tmp_path)
    store = a.store
    store.put_sync(layout.clock_key("news"), b"{not json")
    start = NOW - timedelta(minutes=10)
    # Only B's record survived: both encoders restore the instant it holds, not their own now.
    store.put_sync(layout.progress_key("news", "A"), b"{torn")
    store.put_sync(layout.progress_key("news", "B"), progress("B", start=start, numbers={"video": [3, 4]}))
    assert a.availability_start(NOW) == start and b.availability_start(NOW + timedelta(seconds=3)) == start
    assert "unreadable" in caplog.text and "news" in caplog.text


def test_a_new_epoch_follows_the_newest_number_either_encoder_wrote(tmp_path):
    """The numbers in use come from the encoders' own records, never the packager's timeline:
    with no timeline at all, a restart still numbers after what the other encoder stored."""
    from kubecast.storage import layout

    a, b = clocks(tmp_path)
    a.availability_start(NOW)
    a.place(first_timestamp_ms=0, now=NOW + timedelta(seconds=1), last_written=None)
    # B ran ahead of the clock (a file sent faster than real time) up to segment 40; A wrote up to 9.
    a.store.put_sync(layout.progress_key("news", "B"), progress("B", start=NOW, numbers={"video": [39, 40]}))
    restarted = a.place(first_timestamp_ms=0, now=NOW + timedelta(seconds=20), last_written=9)
    assert (restarted.epoch, restarted.first_segment, restarted.discontinuity) == (1, 41, True)
    assert a.store.get_sync(layout.timeline_key("news")) is None


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


def test_after_a_reset_the_next_contribution_starts_a_fresh_epoch_both_encoders_share(tmp_path):
    """A reconnect whose timestamps continue would join the epoch; after a reset it starts a
    new one at the next free number (a marked discontinuity), and the other encoder joins that."""
    from kubecast.storage import ChannelControl, layout

    a, b = clocks(tmp_path)
    a.availability_start(NOW)
    first = a.place(first_timestamp_ms=0, now=NOW + timedelta(seconds=1), last_written=None)
    assert b.place(first_timestamp_ms=20_000, now=NOW + timedelta(seconds=21), last_written=None).joined
    a.store.put_sync(layout.control_key("news"), ChannelControl(reset="r1").to_json())
    fresh = a.place(first_timestamp_ms=20_000, now=NOW + timedelta(seconds=21), last_written=10)
    assert (fresh.epoch, fresh.joined, fresh.discontinuity) == (first.epoch + 1, False, True)
    assert fresh.first_segment == 11, "numbers continue upward: no segment URL is reused"
    other = b.place(first_timestamp_ms=20_100, now=NOW + timedelta(seconds=21.1), last_written=None)
    assert other.joined and (other.epoch, other.offset_ms) == (fresh.epoch, fresh.offset_ms)
    # The same token asks nothing new: the next reconnect joins as before.
    assert a.place(first_timestamp_ms=22_000, now=NOW + timedelta(seconds=23), last_written=11).joined

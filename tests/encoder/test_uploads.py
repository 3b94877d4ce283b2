"""The encoder's upload backlog and retry pacing, as pure logic."""

from __future__ import annotations

import random
import threading

import pytest

from kubecast.encoder.segmenter import Segment
from kubecast.encoder.uploads import (
    Backoff,
    Heartbeat,
    SegmentUpload,
    StatusUpdate,
    ThumbnailUpload,
    TrackUpload,
    UploadQueue,
    max_segments_for,
)
from kubecast.media.tracks import TrackInfo
from kubecast.storage import IngestInfo


def segment(track: str, number: int) -> SegmentUpload:
    return SegmentUpload(track, Segment(number, number * 2000, 2000, b"x" * 10, False))


def numbers(queue: UploadQueue, track: str) -> list[int]:
    return [i.segment.number for i in queue.snapshot() if isinstance(i, SegmentUpload) and i.track_id == track]


def test_backoff_doubles_up_to_its_cap_with_jitter_in_the_upper_half():
    backoff = Backoff(random.Random(7), initial=0.2, cap=2.0)
    delays = [backoff.next_delay() for _ in range(12)]
    ceilings = [min(2.0, 0.2 * 2**n) for n in range(12)]
    for delay, ceiling in zip(delays, ceilings):
        assert ceiling / 2 <= delay <= ceiling
    assert max(delays) <= 2.0 and delays[-1] >= 1.0  # bounded, and never a hot loop once capped
    assert backoff.attempts == 12


def test_two_encoders_do_not_retry_in_step():
    first, second = Backoff(random.Random(1)), Backoff(random.Random(2))
    a = [first.next_delay() for _ in range(8)]
    b = [second.next_delay() for _ in range(8)]
    assert all(abs(x - y) > 1e-6 for x, y in zip(a, b))


def test_backoff_survives_a_very_long_outage():
    backoff = Backoff(random.Random(3))
    for _ in range(10_000):
        assert backoff.next_delay() <= backoff.cap


def test_segments_past_the_cap_drop_the_oldest_of_that_track_and_are_reported():
    queue = UploadQueue(max_segments=3)
    for n in range(5):
        queue.put(segment("v", n))
        queue.put(segment("a", n))
    assert numbers(queue, "v") == [2, 3, 4] and numbers(queue, "a") == [2, 3, 4]
    dropped = [(d.track_id, d.segment.number) for d in queue.take_dropped()]
    assert sorted(dropped) == [("a", 0), ("a", 1), ("v", 0), ("v", 1)]
    assert queue.take_dropped() == []  # reported once
    assert queue.segments_waiting() == 6


def test_a_track_under_its_cap_keeps_everything_while_another_overflows():
    queue = UploadQueue(max_segments=2)
    queue.put(segment("audio", 0))
    for n in range(4):
        queue.put(segment("v", n))
    assert numbers(queue, "audio") == [0] and numbers(queue, "v") == [2, 3]


def test_everything_else_is_coalesced_so_a_long_outage_stays_bounded():
    queue = UploadQueue(max_segments=4)
    info = TrackInfo(id="v", kind="video", codecs="avc1.64001f", bandwidth=1, timescale=90000, init="init-x.mp4")
    for n in range(1000):  # what ~30 minutes without storage put in the queue
        queue.put(TrackUpload(info, b"init"))
        queue.put(segment("v", n))
        queue.put(StatusUpdate(ingest=IngestInfo(connected=True, bitrate=float(n))))
        queue.put(Heartbeat())
        queue.put(ThumbnailUpload(b"jpeg%d" % n))
    # the segments, a status between each two, the track, a heartbeat and a thumbnail: not 5000 items
    assert len(queue) <= 4 + 5 + 1 + 1 + 1 + 1
    assert numbers(queue, "v") == [996, 997, 998, 999]
    statuses = [i for i in queue.snapshot() if isinstance(i, StatusUpdate)]
    assert statuses[-1].ingest is not None and statuses[-1].ingest.bitrate == 999.0  # the latest news is kept
    assert [i.jpeg for i in queue.snapshot() if isinstance(i, ThumbnailUpload)] == [b"jpeg999"]


def test_order_is_kept_between_segments_and_status():
    queue = UploadQueue(max_segments=10)
    queue.put(segment("v", 1))
    queue.put(StatusUpdate(state="live"))
    queue.put(StatusUpdate(message="m"))
    queue.put(segment("v", 2))
    queue.put(StatusUpdate(state="waiting"))
    taken = [queue.get(timeout=0) for _ in range(4)]
    assert taken == [segment("v", 1), StatusUpdate(state="live", message="m"), segment("v", 2), StatusUpdate("waiting")]
    assert queue.get(timeout=0) is None


def test_a_status_merge_keeps_the_fields_the_later_one_leaves_alone():
    merged = StatusUpdate(state="live", speed=1.5).then(StatusUpdate(message="x", speed=2.0))
    assert merged == StatusUpdate(state="live", message="x", speed=2.0)


def test_close_lets_the_writer_drain_then_end():
    queue = UploadQueue(max_segments=5)
    queue.put(segment("v", 1))
    queue.close()
    assert queue.get() == segment("v", 1)
    assert queue.get() is None


def test_get_waits_for_a_put_from_another_thread():
    queue = UploadQueue(max_segments=5)
    timer = threading.Timer(0.05, queue.put, args=(segment("v", 9),))
    timer.start()
    assert queue.get(timeout=5) == segment("v", 9)
    timer.join()


@pytest.mark.parametrize(
    ("seconds", "duration_ms", "expected"), [(60, 2000, 30), (60, 6000, 10), (1, 2000, 1), (30.5, 1000, 30)]
)
def test_backlog_seconds_in_segments(seconds, duration_ms, expected):
    assert max_segments_for(seconds, duration_ms) == expected


def test_a_queue_without_room_is_refused():
    with pytest.raises(ValueError):
        UploadQueue(max_segments=0)


def test_segments_side_by_side_are_taken_together_but_never_past_another_write():
    queue = UploadQueue(max_segments=5)
    for item in (segment("v", 1), segment("a", 1), segment("w", 1), StatusUpdate(state="live"), segment("v", 2)):
        queue.put(item)
    assert queue.get(timeout=0) == segment("v", 1)
    assert queue.take_segments(1) == [segment("a", 1)]
    assert queue.take_segments(5) == [segment("w", 1)]  # the status waits between them and the next
    assert queue.take_segments(5) == []
    assert queue.get(timeout=0) == StatusUpdate(state="live")
    assert queue.segments_waiting() == 1

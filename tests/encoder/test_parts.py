"""Low-latency parts: how the segmenter cuts them, and how the writer stores and lists them."""

from __future__ import annotations

import random
import threading
from datetime import datetime, timedelta, timezone

from helpers import wait_until
from prometheus_client import REGISTRY

from kubecast.encoder.publisher import Publisher
from kubecast.encoder.segmenter import Part, Segment, TimedSample, TrackSegmenter
from kubecast.encoder.uploads import PartUpload, SegmentUpload, UploadQueue
from kubecast.media.mp4 import iter_boxes, parse_media_segment
from kubecast.media.parts import EncoderParts, choose_part_source, part_target_ms
from kubecast.media.tracks import TrackInfo
from kubecast.storage import EncoderProgress, Store, layout

FRAME = 3000  # 30 fps at 90 kHz


def video(frames: int, *, parts_ms: int | None = 500) -> list[Segment | Part]:
    segmenter = TrackSegmenter(90_000, 2000, video=True, default_duration=FRAME, part_duration_ms=parts_ms)
    out: list[Segment | Part] = []
    for slot in range(frames):
        data = bytes([slot % 256]) * (10 + slot % 7)
        out += segmenter.push(TimedSample(slot * FRAME, 0, slot % 60 == 0, data))
    return out + segmenter.flush()


def test_a_segment_is_cut_into_four_parts_of_500_ms_before_it_is_emitted():
    out = video(120)
    assert [(type(x).__name__, x.number, getattr(x, "index", None)) for x in out] == [
        *[("Part", 0, k) for k in range(4)],
        ("Segment", 0, None),
        *[("Part", 1, k) for k in range(4)],
        ("Segment", 1, None),
    ]
    parts = [x for x in out if isinstance(x, Part)]
    assert [p.start for p in parts[:4]] == [0, 45_000, 90_000, 135_000]
    assert all(p.duration == 45_000 for p in parts)
    assert [p.independent for p in parts[:4]] == [True, False, False, False]


def test_parts_hold_exactly_the_samples_of_their_segment():
    out = video(60)
    segment = next(x for x in out if isinstance(x, Segment))
    parts = [x for x in out if isinstance(x, Part)]
    start, samples = parse_media_segment(segment.data)
    chunked = []
    for part in parts:
        assert [kind for kind, _, _ in iter_boxes(part.data)] == [b"moof", b"mdat"]  # a CMAF chunk: no styp
        part_start, part_samples = parse_media_segment(part.data)
        assert part_start == part.start
        chunked += part_samples
    assert start == 0 and chunked == samples
    assert (
        b"".join(p.data[-sum(s.size for s in parse_media_segment(p.data)[1]) :] for p in parts)
        == segment.data[-sum(s.size for s in samples) :]
    )


def test_without_a_part_duration_nothing_but_segments_comes_out():
    assert all(isinstance(x, Segment) for x in video(120, parts_ms=None))


def test_audio_parts_are_all_independent_and_no_longer_than_the_part_target():
    segmenter = TrackSegmenter(48_000, 2000, video=False, default_duration=1024, part_duration_ms=500)
    out: list[Segment | Part] = []
    for frame in range(200):
        out += segmenter.push(TimedSample(frame * 1024, 0, True, b"\x01" * 50))
    parts = [x for x in out if isinstance(x, Part) and x.number == 0]
    audio = TrackInfo(
        id="audio", kind="audio", codecs="mp4a.40.2", bandwidth=1, timescale=48_000, init="i", sample_rate=48_000
    )
    target = part_target_ms(500, [audio])
    assert target == 512
    assert len(parts) == 4 and all(p.independent for p in parts)
    assert max(p.duration for p in parts) * 1000 <= target * 48_000
    assert sum(p.duration for p in parts) == next(x for x in out if isinstance(x, Segment)).duration


def test_the_part_target_is_the_longest_part_a_track_can_have():
    def track(rate: str) -> TrackInfo:
        return TrackInfo(id="v", kind="video", codecs="avc1", bandwidth=1, timescale=90_000, init="i", frame_rate=rate)

    assert part_target_ms(500, [track("30")]) == 500
    assert part_target_ms(500, [track("29.970")]) == 501  # 15 frames of 1001/30000 s
    assert part_target_ms(500, [track("25")]) == 520  # 13 frames of 40 ms


def test_parts_of_an_older_segment_waiting_are_dropped_when_a_later_segment_is_queued():
    queue = UploadQueue(max_segments=10)
    late = PartUpload("v", Part(3, 2, 0, 1, b"x", False, False))
    current = PartUpload("v", Part(4, 3, 0, 1, b"x", False, False))
    other_track = PartUpload("a", Part(3, 2, 0, 1, b"x", True, False))
    for item in (late, current, other_track):
        queue.put(item)
    queue.put(SegmentUpload("v", Segment(4, 0, 1, b"s", False)))
    assert [type(item).__name__ for item in queue.snapshot()] == ["PartUpload", "PartUpload", "SegmentUpload"]
    assert late not in queue.snapshot()


def test_the_rest_of_a_segment_whose_parts_began_to_be_stored_is_kept_when_it_falls_behind():
    """A writer one segment behind: parts 0 and 1 of segment 3 taken (being stored), 2 and 3 waiting
    when segment 4 is complete, and all of segment 4's parts waiting too.  Segment 3's tail is
    kept (its listed parts must add up to it: an LL-DASH response is sending them), segment 4's
    parts are dropped only once segment 5 is complete and none of 4 was begun."""
    queue = UploadQueue(max_segments=1)
    parts = {(n, k): PartUpload("v", Part(n, k, 0, 1, b"x", k == 0, False)) for n in (3, 4) for k in range(4)}
    for upload in parts.values():
        queue.put(upload)
    assert queue.get() == parts[3, 0] and queue.take_parts(1) == [parts[3, 1]]
    queue.drop_parts_before("v", 4)  # segment 4 complete: segment 3's tail stays
    assert queue.snapshot() == [parts[3, 2], parts[3, 3], *(parts[4, k] for k in range(4))]
    queue.drop_parts_before("v", 5)  # segment 5 complete: none of 4 began, all of it goes
    assert queue.snapshot() == [parts[3, 2], parts[3, 3]]
    other = UploadQueue(max_segments=1)
    for upload in parts.values():
        other.put(upload)
    other.drop_parts_before("v", 4)  # nothing taken yet: segment 3's parts all go
    assert other.snapshot() == [parts[4, k] for k in range(4)]


class RecordingStore(Store):
    """A memory store that remembers the order of its writes, and every part parts.json listed
    before the part itself was stored."""

    def __init__(self) -> None:
        super().__init__("memory://")
        self.keys: list[str] = []
        self.listed_early: list[str] = []
        self.lock = threading.Lock()

    def put_sync(self, key: str, data: bytes) -> None:
        if key == layout.parts_key("c", "A"):
            for track, parts in EncoderParts.from_json(data).tracks.items():
                for record in parts.parts:
                    part = layout.part_key("c", "A", track, record.number, record.part)
                    if self.get_sync(part) is None:
                        self.listed_early.append(part)
        super().put_sync(key, data)
        with self.lock:
            self.keys.append(key)


def written(kind: str) -> float:
    return REGISTRY.get_sample_value("kubecast_encoder_store_writes_total", {"kind": kind}) or 0.0


def edge(store: Store) -> EncoderParts | None:
    data = store.get_sync(layout.parts_key("c", "A"))
    return EncoderParts.from_json(data) if data is not None else None


def test_parts_are_stored_before_parts_json_lists_them_and_do_not_rewrite_progress():
    store = RecordingStore()
    publisher = Publisher(
        store=store, channel="c", instance="A", segment_duration_ms=2000, rng=random.Random(1), part_duration_ms=500
    )
    publisher.start()
    try:
        wait_until(lambda: store.get_sync(layout.progress_key("c", "A")) is not None, timeout=10, what="first progress")
        progress_writes = store.keys.count(layout.progress_key("c", "A"))
        counted = {kind: written(kind) for kind in ("part", "parts_index", "segment")}
        # segment 0, and the first part of segment 1 (its segment is still open: the flushed one is not sent)
        for item in video(61)[:-1]:
            publisher.segment("v", item)
        wait_until(
            lambda: EncoderProgress.from_json(store.get_sync(layout.progress_key("c", "A")) or b"{}").segments.get("v"),
            timeout=10,
            what="segment 0 in progress.json",
        )
        publisher.segment("v", Part(1, 1, 2 * 90_000 + 45_000, 45_000, b"part", False, False))
        # a whole segment stored is recorded with the next part's listing, at no extra write
        wait_until(
            lambda: (
                (e := edge(store)) is not None and e.tracks["v"].complete == 0 and e.tracks["v"].parts[-1].part == 1
            ),
            timeout=10,
            what="segment 0 complete, part 1.1 listed",
        )
        listed = edge(store)
        assert listed is not None
        assert [(r.number, r.part) for r in listed.tracks["v"].parts] == [
            (0, 0),
            (0, 1),
            (0, 2),
            (0, 3),
            (1, 0),
            (1, 1),
        ]
        assert listed.part_duration_ms == 500
        assert store.listed_early == []
        for record in listed.tracks["v"].parts:
            assert len(store.get_sync(layout.part_key("c", "A", "v", record.number, record.part)) or b"") == record.size
        # six parts, one segment: progress.json is written for the segment, not for each part
        assert store.keys.count(layout.progress_key("c", "A")) - progress_writes <= 2
        # and the writes are counted by kind, as the cost bench reads them
        assert written("part") - counted["part"] == 6 and written("segment") - counted["segment"] == 1
        assert written("parts_index") - counted["parts_index"] == store.keys.count(layout.parts_key("c", "A"))
    finally:
        publisher.stop()


NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def encoder_edge(instance: str, age_ms: int) -> EncoderParts:
    return EncoderParts(
        channel="c",
        instance=instance,
        session="s",
        updated=NOW - timedelta(milliseconds=age_ms),
        part_duration_ms=500,
        part_target_ms=500,
    )


def test_part_source_keeps_its_choice_prefers_the_timeline_and_leaves_a_stale_encoder():
    both = {"A": encoder_edge("A", 100), "B": encoder_edge("B", 100)}
    assert choose_part_source(both, preferred="B", kept=None, now=NOW) == "B"
    assert choose_part_source(both, preferred="B", kept="A", now=NOW) == "A"
    stale_a = {"A": encoder_edge("A", 1600), "B": encoder_edge("B", 100)}  # 2 parts + 0.5 s: 1.5 s
    assert choose_part_source(stale_a, preferred="A", kept="A", now=NOW) == "B"
    assert choose_part_source({"A": encoder_edge("A", 1400), "B": None}, preferred=None, kept=None, now=NOW) == "A"
    assert choose_part_source({"A": encoder_edge("A", 1600), "B": None}, preferred="A", kept="A", now=NOW) is None


def test_the_parts_of_one_index_from_several_tracks_are_listed_with_one_write():
    store = RecordingStore()
    publisher = Publisher(
        store=store, channel="c", instance="A", segment_duration_ms=2000, rng=random.Random(1), part_duration_ms=500
    )
    publisher.start()
    try:
        for track in ("v", "a"):  # both tracks cut parts: the writer knows them from then on
            publisher.segment(track, Part(0, 0, 0, 45_000, b"p", True, False))
        wait_until(lambda: (e := edge(store)) is not None and set(e.tracks) == {"v", "a"}, timeout=10, what="tracks")
        writes = store.keys.count(layout.parts_key("c", "A"))
        publisher.segment("v", Part(0, 1, 45_000, 45_000, b"p", False, False))
        threading.Event().wait(0.02)  # the other rendition's x264 finishes its part a little later
        publisher.segment("a", Part(0, 1, 45_000, 45_000, b"p", False, False))
        wait_until(lambda: len((edge(store) or encoder_edge("A", 0)).tracks["a"].parts) == 2, timeout=10, what="a")
        assert store.keys.count(layout.parts_key("c", "A")) - writes == 1
        assert store.listed_early == []
    finally:
        publisher.stop()

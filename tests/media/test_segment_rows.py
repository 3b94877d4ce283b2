"""A track's rows behave as a list of named rows, and cost a few machine integers each: a
Program's window of days is held whole by the packager and every endpoint replica."""

from __future__ import annotations

import gc
import json
import tracemalloc

from kubecast.media.timeline import SegmentRows, Timeline, TimelineSegment, TimelineTrack
from kubecast.media.tracks import TrackInfo

VIDEO = TrackInfo(id="v", kind="video", codecs="avc1.64001e", bandwidth=800_000, timescale=90000, init="init-a.mp4")


def rows(numbers: range, source: str = "A") -> list[TimelineSegment]:
    return [TimelineSegment(n, n * 180000, 180000, 1000 + n, source, n % 7 == 0) for n in numbers]


def test_rows_read_as_the_list_of_named_rows_they_were_made_from():
    made = rows(range(10, 20)) + rows(range(20, 25), "B")
    stored = SegmentRows(made)
    assert stored == made and list(stored) == made and len(stored) == 15
    assert stored[0] == made[0] and stored[-1].source == "B" and stored[-1].discontinuity is False
    assert isinstance(stored[3:], SegmentRows) and stored[3:] == made[3:] and stored[::2] == made[::2]
    assert stored[4].discontinuity is True and stored[4]._replace(discontinuity=False).discontinuity is False
    assert stored != made[1:] and stored != made[:-1] + [made[-1]._replace(size=1)]


def test_rows_are_found_by_number_and_by_start_time():
    stored = SegmentRows(rows(range(10, 14)) + rows(range(20, 22)))  # a gap, as a contribution drop leaves
    assert stored.position(12) == 2 and stored.position(20) == 4
    assert stored.position(15) is None and stored.position(9) is None and stored.position(22) is None
    assert stored.position_at(21 * 180000) == 5 and stored.position_at(21 * 180000 + 1) is None
    assert list(stored.numbers()) == [10, 11, 12, 13, 20, 21]
    assert stored.after(12) == stored[3:] and stored.after(15) == stored[4:] and stored.after(21) == []
    assert stored.having({11, 20, 99}) == [stored[1], stored[4]]
    spans = stored.spans()
    assert list(spans) == [(r.start, r.duration) for r in stored] and spans[-1] == (21 * 180000, 180000)
    assert list(spans[1:3]) == [(11 * 180000, 180000), (12 * 180000, 180000)] and len(spans) == 6


def test_copies_grow_apart():
    track = TimelineTrack(info=VIDEO, init_source="A", segments=rows(range(5)))
    shallow = track.model_copy(update={"segments": track.segments.copy()})
    deep = track.model_copy(deep=True)
    given = TimelineTrack(info=VIDEO, init_source="A", segments=track.segments)  # validated: a copy, as of a list
    track.segments.append(rows(range(5, 6))[0])
    assert len(track.segments) == 6 and [len(t.segments) for t in (shallow, deep, given)] == [5, 5, 5]


def test_the_wire_form_is_the_arrays_it_always_was():
    track = TimelineTrack(info=VIDEO, init_source="A", segments=rows(range(3)))
    written = json.loads(track.model_dump_json(by_alias=True))["segments"]
    assert written == [list(row) for row in rows(range(3))]
    assert TimelineTrack.model_validate_json(track.model_dump_json(by_alias=True)) == track


def test_a_parsed_window_keeps_under_48_bytes_a_row():
    # 34 bytes a row in columns; a list of named tuples kept 232 (a tuple and four ints each).
    count = 5_000
    timeline = Timeline(
        channel="news",
        state="live",
        updated="2026-01-01T00:00:00Z",
        segment_duration_ms=2000,
        window_ms=count * 2000,
        tracks=[TimelineTrack(info=VIDEO.model_copy(update={"id": f"v{i}"}), init_source="A") for i in range(3)],
    )
    for track in timeline.tracks:
        track.segments = SegmentRows(rows(range(100_000, 100_000 + count), "A"))
    data = timeline.to_json()
    del timeline
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        parsed = Timeline.from_json(data)
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert sum(len(t.segments) for t in parsed.tracks) == 3 * count
    assert kept / (3 * count) < 48, f"{kept / (3 * count):.1f} bytes a row"

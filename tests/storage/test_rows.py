"""Segment rows are named in code and JSON arrays on the wire: what an earlier packager or
encoder stored still loads, and writing it back gives the same arrays."""

from __future__ import annotations

import json

from kubecast.media.timeline import Timeline, TimelineSegment
from kubecast.storage import EncoderProgress, SegmentRecord

# As written before the rows had names (a timeline.json and a progress record of that time).
STORED_TIMELINE = {
    "version": 1,
    "channel": "news",
    "generation": 7,
    "state": "live",
    "updated": "2026-01-01T00:00:10Z",
    "availabilityStartTime": "2026-01-01T00:00:00Z",
    "segmentDurationMs": 2000,
    "windowMs": 60000,
    "tracks": [
        {
            "info": {
                "id": "video",
                "kind": "video",
                "codecs": "avc1.64001f",
                "bandwidth": 1000000,
                "timescale": 90000,
                "init": "init-aa.mp4",
            },
            "initSource": "A",
            "segments": [[4, 720000, 180000, 250000, "A", False], [6, 1080000, 180000, 260000, "B", True]],
            "numbersSkipped": 4,
            "discontinuitiesTrimmed": 1,
        }
    ],
}
STORED_PROGRESS = {
    "channel": "news",
    "instance": "A",
    "session": "s1",
    "state": "live",
    "updated": "2026-01-01T00:00:10Z",
    "segmentDurationMs": 2000,
    "segments": {"video": [[4, 720000, 180000, 250000, False, False], [5, 900000, 90000, 120000, True, True]]},
}


def test_a_stored_timeline_loads_with_named_rows_and_writes_the_same_arrays():
    timeline = Timeline.from_json(json.dumps(STORED_TIMELINE).encode())
    first, second = timeline.tracks[0].segments
    assert first == TimelineSegment(
        number=4, start=720000, duration=180000, size=250000, source="A", discontinuity=False
    )
    assert (second.number, second.source, second.discontinuity) == (6, "B", True)
    assert timeline.tracks[0].media_sequence() == 0 and timeline.tracks[0].discontinuity_sequence() == 1
    written = json.loads(timeline.to_json())
    assert written["tracks"][0]["segments"] == STORED_TIMELINE["tracks"][0]["segments"]


def test_a_stored_progress_record_loads_with_named_rows_and_writes_the_same_arrays():
    progress = EncoderProgress.from_json(json.dumps(STORED_PROGRESS).encode())
    last = progress.segments["video"][-1]
    assert isinstance(last, SegmentRecord) and (last.number, last.duration, last.discontinuity, last.final) == (
        5,
        90000,
        True,
        True,
    )
    assert json.loads(progress.to_json())["segments"] == STORED_PROGRESS["segments"]

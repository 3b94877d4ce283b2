"""ID3 timed metadata on the channel timeline: both encoders' lists merged once, in the window,
bounded; programs record it from their start and keep it once stopped."""

from __future__ import annotations

import base64

from merge_fixtures import AST, D, progress, run

from kubecast.media.metadata import MAX_ITEMS, TimelineMetadata
from kubecast.media.tracks import SegmentRecord
from kubecast.storage import ProgramRecord
from kubecast.storage.programs import record


def _tag(seconds: float, text: str = "t") -> TimelineMetadata:
    return TimelineMetadata(time=int(seconds * 90_000), timescale=90_000, id3=base64.b64encode(text.encode()).decode())


def test_both_encoders_tags_are_listed_once_in_time_order_within_the_window():
    a, b = progress("A", list(range(0, 50))), progress("B", list(range(0, 50)))
    a.metadata = [_tag(30), _tag(50), _tag(62.5)]
    b.metadata = [_tag(50), _tag(62.5), _tag(62.5, "other"), _tag(95)]
    timeline = run(None, A=a, B=b).timeline
    # The window holds segments 20-49 (40 s to 100 s): the tag at 30 s is before it.
    assert [(m.seconds, base64.b64decode(m.id3)) for m in timeline.metadata] == [
        (50, b"t"),
        (62.5, b"other"),
        (62.5, b"t"),
        (95, b"t"),
    ]
    a.metadata = [_tag(40 + n / 100) for n in range(MAX_ITEMS + 50)]
    assert len(run(timeline, A=a, B=b).timeline.metadata) == MAX_ITEMS, "bounded against a flood"


def test_a_program_records_the_tags_from_its_start_and_keeps_them_when_stopped():
    program = ProgramRecord(name="p", channel="c", locator="p", archive_window_seconds=3600)
    a = progress("A", [10, 11, 12])
    a.metadata = [_tag(21), _tag(25)]
    channel = run(None, A=a).timeline
    recorded, _ = record(None, program, channel, AST)
    assert [m.seconds for m in recorded.metadata] == [25], "the program starts at segment 12 (24 s)"
    a.segments["v"] = [SegmentRecord(n, n * D, D, 250_000) for n in range(10, 16)]
    a.metadata = [*a.metadata, _tag(29)]
    channel = run(channel, A=a).timeline
    recorded, changed = record(recorded, program, channel, AST)
    assert changed and [m.seconds for m in recorded.metadata] == [25, 29]
    stopped, _ = record(recorded, program.model_copy(update={"state": "Stopped"}), channel, AST)
    assert [m.seconds for m in stopped.metadata] == [25, 29]

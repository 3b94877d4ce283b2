"""Ad markers (``Timeline.cues``) in manifests (pure).

HLS: one ``EXT-X-DATERANGE`` per cue, written before the segment its splice falls in, as the
HLS specification maps SCTE-35 (RFC 8216bis, "Mapping SCTE-35 into EXT-X-DATERANGE"): a splice
out carries ``SCTE35-OUT`` (the section as hex) and ``PLANNED-DURATION`` when the cue states
one; the splice back in repeats the ID and ``START-DATE`` of its out (same ``splice_event_id``)
and adds ``END-DATE`` and ``SCTE35-IN``.  ``START-DATE`` is the wall-clock time of the frame the
encoders put the IDR on, so a player maps it to media time through ``EXT-X-PROGRAM-DATE-TIME``
to the frame.

With the endpoint's ``hlsCueTags`` also the tags older ad servers read (the Adobe/Elemental
convention), which mark whole segments: ``EXT-X-CUE-OUT:<duration>`` before the segment the
splice out falls in, ``EXT-X-CUE-IN`` before the segment the splice back in (or, without one,
the end of the stated duration) falls in, and ``EXT-X-CUE-OUT-CONT:ElapsedTime=…,Duration=…``
before every segment between.  The CONT tags are written because a live window slides: once the
CUE-OUT segment has left it, a player or stitcher that joins mid-break learns only from them
that it is inside a break and how far.  A break that starts and ends inside one segment covers
no whole segment and gets none of these tags (its ``EXT-X-DATERANGE`` still says it exactly).

DASH: an ``EventStream`` with ``urn:scte:scte35:2014:xml+bin`` (SCTE 214-1): one ``Event`` per
cue at its media time, the section base64 in ``Signal/Binary``.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from fractions import Fraction
from typing import NamedTuple

from kubecast.media.cues import TimelineCue
from kubecast.media.timeline import Timeline

SCTE35_SCHEME = "urn:scte:scte35:2014:xml+bin"
SCTE35_NAMESPACE = "http://www.scte.org/schemas/35/2016"


def _date(timeline: Timeline, seconds: Fraction) -> str | None:
    if timeline.availability_start_time is None:
        return None
    moment: datetime = timeline.availability_start_time + timedelta(microseconds=round(seconds * 1_000_000))
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _hex(cue: TimelineCue) -> str:
    return "0x" + cue.section_bytes.hex().upper()


def daterange_tags(timeline: Timeline, cues: list[TimelineCue]) -> list[tuple[Fraction, str]]:
    """(media time in seconds, ``EXT-X-DATERANGE`` line) of every cue, in time order."""
    tags: list[tuple[Fraction, str]] = []
    outs: dict[int, TimelineCue] = {}  # event id -> its latest splice out
    for cue in cues:
        start = _date(timeline, cue.seconds)
        if start is None:
            continue
        if cue.out:
            outs[cue.event_id] = cue
            planned = f",PLANNED-DURATION={float(cue.duration_seconds):.3f}" if cue.duration_seconds is not None else ""
            identity = f"splice-{cue.event_id}-{cue.time}"
            tags.append(
                (cue.seconds, f'#EXT-X-DATERANGE:ID="{identity}",START-DATE="{start}"{planned},SCTE35-OUT={_hex(cue)}')
            )
            continue
        opened = outs.pop(cue.event_id, None)
        if opened is not None and opened.seconds <= cue.seconds:
            identity, began = f"splice-{opened.event_id}-{opened.time}", _date(timeline, opened.seconds)
            tags.append(
                (
                    cue.seconds,
                    f'#EXT-X-DATERANGE:ID="{identity}",START-DATE="{began}",END-DATE="{start}",SCTE35-IN={_hex(cue)}',
                )
            )
        else:
            identity = f"splice-{cue.event_id}-{cue.time}"
            tags.append((cue.seconds, f'#EXT-X-DATERANGE:ID="{identity}",START-DATE="{start}",SCTE35-IN={_hex(cue)}'))
    return tags


class _Break(NamedTuple):
    start: Fraction | None  # the splice out, seconds of media time; None: before the window, unknown
    end: Fraction | None  # the splice back in, or the end of the stated duration; None: open
    duration: Fraction | None  # the planned duration, or the out-to-in time


def _breaks(cues: list[TimelineCue]) -> list[_Break]:
    breaks: list[_Break] = []
    outs: dict[int, TimelineCue] = {}  # event id -> its open splice out
    for cue in cues:
        if cue.out:
            outs[cue.event_id] = cue
            continue
        opened = outs.pop(cue.event_id, None)
        if opened is None or opened.seconds > cue.seconds:  # its out has left the window
            breaks.append(_Break(None, cue.seconds, None))
            continue
        planned = opened.duration_seconds if opened.duration_seconds is not None else cue.seconds - opened.seconds
        breaks.append(_Break(opened.seconds, cue.seconds, planned))
    for opened in outs.values():
        planned = opened.duration_seconds
        breaks.append(_Break(opened.seconds, None if planned is None else opened.seconds + planned, planned))
    return breaks


def _index(time: Fraction, segments: list[tuple[Fraction, Fraction]]) -> int:
    """The segment ``time`` falls in (or the next one, in a gap); ``len(segments)`` past the last."""
    return next((index for index, (_, end) in enumerate(segments) if time < end), len(segments))


def cue_tags(cues: list[TimelineCue], segments: list[tuple[Fraction, Fraction]]) -> list[list[str]]:
    """The ``EXT-X-CUE-OUT`` / ``-CONT`` / ``-IN`` lines to write before each of ``segments``
    ((start, end) in seconds of media time, in order)."""
    tags: list[list[str]] = [[] for _ in segments]
    if not segments:
        return tags
    for brk in sorted(_breaks(cues), key=lambda b: (b.start is not None, b.start or 0)):
        if brk.end is not None and brk.end < segments[0][0]:
            continue  # over before the window
        last = len(segments) if brk.end is None else _index(brk.end, segments)  # the first segment after it
        began: Fraction | None = brk.start  # where the break's segments start (for ElapsedTime)
        first = -1  # the segment with its CUE-OUT; -1: it began before the window
        if brk.start is not None and brk.start >= segments[0][0]:
            first = _index(brk.start, segments)
            if first >= last:
                continue  # not begun yet, or it covers no whole segment
            began = segments[first][0]
            duration = f":{float(brk.duration):.3f}" if brk.duration is not None else ""
            tags[first].append(f"#EXT-X-CUE-OUT{duration}")
        if began is not None:
            planned = f",Duration={float(brk.duration):.3f}" if brk.duration is not None else ""
            for index in range(first + 1, last):
                tags[index].append(f"#EXT-X-CUE-OUT-CONT:ElapsedTime={float(segments[index][0] - began):.3f}{planned}")
        if last < len(segments):
            tags[last].append("#EXT-X-CUE-IN")
    return tags


def event_stream(cues: list[TimelineCue], *, origin_seconds: float | None = None) -> str:
    """The Period's ``EventStream`` of the cues (empty without any).  ``origin_seconds``: the
    media time that is presentation time 0 (on demand), as the segment templates state it."""
    if not cues:
        return ""
    timescale = cues[0].timescale
    offset = f' presentationTimeOffset="{round(origin_seconds * timescale)}"' if origin_seconds else ""
    events = []
    for cue in cues:
        time = cue.time * timescale // cue.timescale
        duration = f' duration="{cue.duration * timescale // cue.timescale}"' if cue.duration is not None else ""
        binary = base64.b64encode(cue.section_bytes).decode()
        events.append(
            f'<Event presentationTime="{time}"{duration} id="{time * 2 + (1 if cue.out else 0)}">'
            f'<Signal xmlns="{SCTE35_NAMESPACE}"><Binary>{binary}</Binary></Signal></Event>'
        )
    return f'<EventStream schemeIdUri="{SCTE35_SCHEME}" timescale="{timescale}"{offset}>{"".join(events)}</EventStream>'

"""Ad markers (``Timeline.cues``) in manifests (pure).

HLS: one ``EXT-X-DATERANGE`` per cue, written before the segment its splice falls in, as the
HLS specification maps SCTE-35 (RFC 8216bis, "Mapping SCTE-35 into EXT-X-DATERANGE"): a splice
out carries ``SCTE35-OUT`` (the section as hex) and ``PLANNED-DURATION`` when the cue states
one; the splice back in repeats the ID and ``START-DATE`` of its out (same ``splice_event_id``)
and adds ``END-DATE`` and ``SCTE35-IN``.  ``START-DATE`` is the wall-clock time of the frame the
encoders put the IDR on, so a player maps it to media time through ``EXT-X-PROGRAM-DATE-TIME``
to the frame.

DASH: an ``EventStream`` with ``urn:scte:scte35:2014:xml+bin`` (SCTE 214-1): one ``Event`` per
cue at its media time, the section base64 in ``Signal/Binary``.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from fractions import Fraction

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

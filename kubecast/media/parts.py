"""Parts: the CMAF chunks of the segment an encoder is still writing (low latency, pure).

A low-latency channel (``spec.lowLatency``) has every track's segment n cut, while it is being
written, into parts of about P: part k starts with the first sample whose decode time is at or
after n*D + k*P.  Part 0 starts with the segment's first sample (a video key frame: it is
independent); later video parts start with any whole sample.  Each part is stored as its own
immutable object (``moof`` + ``mdat``) as soon as the first sample of the next part arrives,
and the encoder then replaces its ``parts.json`` (``EncoderParts``): the parts of the last few
segments per track.  The whole segment is still stored as before, one fragment, so every
standard output is unchanged; storage stays the only state the endpoints share with the encoders.

Why one encoder per segment: a part's frames refer to earlier frames of the same segment *of
the same encoder* (two encoders' x264 runs make different bits), so the parts a player gets for
one segment must all come from one encoder.  ``choose_part_source`` picks it, preferring the
encoder the timeline already follows, and part URLs name the encoder, so every endpoint replica
serves the same bytes under a part's URL.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from fractions import Fraction
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from .tracks import TrackInfo

PARTS_KEPT_SEGMENTS = 4  # per track in parts.json: a playlist lists parts of the last 3 target durations
MAX_PARTS_PER_SEGMENT = 64  # part index bound, and the stride of the parts' moof sequence numbers
AAC_FRAME = 1024  # samples per AAC frame: an audio track's sample duration


class PartRecord(NamedTuple):
    """One stored part, as ``parts.json`` lists it (a JSON array on the wire, like ``SegmentRecord``)."""

    number: int  # the segment it belongs to
    part: int  # its part index in that segment, from 0
    start: int  # baseMediaDecodeTime (tfdt), in the track's timescale
    duration: int  # in the track's timescale
    size: int  # bytes
    independent: bool  # starts with a sync sample (part 0 of video; every audio part)
    discontinuity: bool = False  # its segment follows a gap (only ever on part 0)


class _Record(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


class TrackParts(_Record):
    parts: list[PartRecord] = Field(default_factory=list)  # oldest first
    complete: int | None = None  # the newest segment of this track stored whole


class EncoderParts(_Record):
    """``channels/<channel>/encoders/<instance>/parts.json``: an encoder's live edge."""

    channel: str
    instance: str
    session: str  # the encoder process's, as in progress.json
    updated: datetime
    part_duration_ms: int  # P, as the channel's spec.lowLatency says
    part_target_ms: int  # the longest a part can last (``part_target_ms``): the playlist's PART-TARGET
    tracks: dict[str, TrackParts] = Field(default_factory=dict)

    @classmethod
    def from_json(cls, data: bytes) -> "EncoderParts":
        return cls.model_validate_json(data)

    def fresh(self, now: datetime) -> bool:
        """Whether the encoder is still cutting parts: it writes this record at every part."""
        return now - self.updated <= stale_after(self.part_duration_ms)


def stale_after(part_duration_ms: int) -> timedelta:
    """Two parts missed and half a second of slack: the encoder is hung, dead or cut off."""
    return timedelta(milliseconds=2 * part_duration_ms + 500)


def part_index(
    decode_time: int, *, number: int, segment_duration_ms: int, part_duration_ms: int, timescale: int
) -> int:
    """The part of segment ``number`` whose window [n*D + k*P, n*D + (k+1)*P) holds ``decode_time``."""
    offset = decode_time * 1000 - number * segment_duration_ms * timescale
    return max(0, offset // (part_duration_ms * timescale))


def sample_duration(track: TrackInfo) -> Fraction | None:
    """Seconds per sample of a constant-rate track (video: its frame rate; audio: AAC frames)."""
    if track.kind == "audio":
        return Fraction(AAC_FRAME, track.sample_rate) if track.sample_rate else None
    if not track.frame_rate:
        return None
    # "30", "30000/1001" or "29.970" (three decimals: within a millisecond over a part of frames)
    try:
        rate = Fraction(track.frame_rate)
    except (ValueError, ZeroDivisionError):
        return None
    return 1 / rate if rate > 0 else None


def part_target_ms(part_duration_ms: int, tracks: list[TrackInfo]) -> int:
    """The longest a part of these tracks lasts, in whole milliseconds rounded up.

    On a regular grid of samples s seconds apart a window of P seconds holds at most
    ceil(P/s) sample starts, so a part (from the first sample in its window to the first in the
    next) lasts at most ceil(P/s)*s: 500 ms at 30 fps, 512 ms for 48 kHz AAC.  A track whose
    rate is unknown counts as one sample of 1/25 s more than P."""
    part = Fraction(part_duration_ms, 1000)
    longest = part
    for track in tracks:
        sample = sample_duration(track)
        longest = max(longest, math.ceil(part / sample) * sample if sample else part + Fraction(1, 25))
    return math.ceil(longest * 1000)


def choose_part_source(
    edges: dict[str, EncoderParts | None], *, preferred: str | None, kept: str | None, now: datetime
) -> str | None:
    """The encoder whose parts a segment is served from: ``kept`` (what this replica already
    served for it) while its record is fresh, else ``preferred`` (the encoder the timeline
    follows) while fresh, else the first other fresh one by name; None: nobody is cutting parts."""
    fresh = sorted(name for name, edge in edges.items() if edge is not None and edge.fresh(now))
    for candidate in (kept, preferred):
        if candidate in fresh:
            return candidate
    return fresh[0] if fresh else None

"""The channel timeline: the one index the packager writes and every endpoint reads.

Time model.  Every channel has a fixed segment duration D (milliseconds).  Segment number n
covers media time [n*D, (n+1)*D) of the channel timeline, whatever encoder produced it, so
two encoders fed the same contribution cut the same frames into the same numbers.  Media
time 0 is the wall-clock instant ``availabilityStartTime``; encoders keep media time close
to wall-clock time (a reconnecting contribution resumes at the next boundary at or after
"now"), which is what DASH's live-edge arithmetic and HLS's PROGRAM-DATE-TIME assume.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from .cues import TimelineCue
from .metadata import TimelineMetadata
from .rows import SegmentRows, TimelineSegment
from .tracks import TrackInfo

__all__ = [
    "EncoderHealth",
    "SegmentRows",
    "Timeline",
    "TimelineSegment",
    "TimelineTrack",
    "boundary_time",
    "segment_number",
]


def boundary_time(number: int, segment_duration_ms: int, timescale: int) -> int:
    """Start of segment ``number`` in a track's timescale."""
    return number * segment_duration_ms * timescale // 1000


def segment_number(time: int, segment_duration_ms: int, timescale: int) -> int:
    """The segment whose window [n*D, (n+1)*D) holds ``time`` (in a track's timescale)."""
    return (time * 1000) // (segment_duration_ms * timescale)


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class TimelineTrack(_Model):
    info: TrackInfo
    init_source: str  # instance whose init segment players get
    average_bandwidth: int | None = None  # measured over the listed segments, bit/s
    peak_bandwidth: int | None = None
    segments: SegmentRows = Field(default_factory=SegmentRows)  # oldest first, by number
    # What the live window has dropped, kept so HLS sequence numbers stay stable as it
    # slides: numbers never published before the first row (a contribution gap skips the
    # numbers of the time it was missing), and discontinuities trimmed off the front.
    numbers_skipped: int = 0
    discontinuities_trimmed: int = 0

    def media_sequence(self) -> int:
        """HLS media sequence number of the first row: segments published before it, gaps
        not counted (HLS numbers consecutive segments; ours skip over missing media)."""
        return self.segments[0].number - self.numbers_skipped if self.segments else 0

    def discontinuity_sequence(self) -> int:
        """Discontinuity tags no longer in the playlist (a first row's tag is not rendered)."""
        return self.discontinuities_trimmed + (1 if self.segments and self.segments[0].discontinuity else 0)


class EncoderHealth(_Model):
    state: Literal["waiting", "live", "error", "absent"]
    updated: datetime | None = None
    last_segment: int | None = None
    segments_taken: int = 0  # segments of the first rendition published from this encoder, since the channel began
    ingest_connected: bool = False
    ingest_bitrate: float = 0.0
    speed: float = 0.0
    message: str = ""


class Timeline(_Model):
    version: Literal[1] = 1
    channel: str
    generation: int = 0  # incremented on every write; lets readers cache rendered manifests
    state: Literal["waiting", "live", "stopped"]
    updated: datetime
    availability_start_time: datetime | None = None
    segment_duration_ms: int
    window_ms: int  # live window kept in this index
    # The channel's spec.hlsStartOffset: live HLS playlists ask players to start this far before
    # their end (EXT-X-START); None: players choose.
    hls_start_offset_ms: int | None = None
    tracks: list[TimelineTrack] = Field(default_factory=list)
    encoders: dict[str, EncoderHealth] = Field(default_factory=dict)
    thumbnail_source: str | None = None  # instance whose thumbnail.jpg is current
    active_source: str | None = None  # the encoder the newest segment of the first rendition came from
    failovers: int = 0  # times the active source changed: an encoder or its path failed, or came back alone
    last_failover: datetime | None = None
    conditions: list[dict[str, Any]] = Field(default_factory=list)  # metav1.Condition-shaped, for status
    cues: list[TimelineCue] = Field(default_factory=list)  # ad markers touching the window, in time order
    metadata: list[TimelineMetadata] = Field(default_factory=list)  # ID3 tags in the window, in time order

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "Timeline":
        return cls.model_validate_json(data)

    def wall_clock(self, start: int, timescale: int) -> datetime | None:
        if self.availability_start_time is None:
            return None
        return self.availability_start_time + timedelta(seconds=start / timescale)

"""What an encoder produces, described: its tracks and its segments."""

from __future__ import annotations

from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from .captions import CaptionChannel


class _Record(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


class TrackInfo(_Record):
    """One output track of an encoder: a rendition of the ladder, or the audio."""

    id: str
    kind: Literal["video", "audio"]
    codecs: str  # RFC 6381, e.g. avc1.64001f, mp4a.40.2
    bandwidth: int  # target (encoder) or peak measured (timeline), bit/s
    timescale: int
    init: str  # init object name (init-<hash>.mp4), relative to the rendition's folder
    width: int | None = None
    height: int | None = None
    frame_rate: str | None = None  # "30", "30000/1001"
    sample_rate: int | None = None
    channels: int | None = None
    language: str | None = None
    # CEA-608 channels (CC1 to CC4) the video carries in its SEI, as the contribution did; the
    # manifests signal them (HLS CLOSED-CAPTIONS, a DASH Accessibility descriptor)
    captions: list[CaptionChannel] = []


class SegmentRecord(NamedTuple):
    """One segment an encoder wrote, as its progress record lists it.

    On the wire a JSON array ``[number, start, duration, size, discontinuity, final]``, to keep
    index objects small; ``EncoderProgress.segments`` is typed with this class, so pydantic
    writes and reads that array through it (the one conversion) and code sees names."""

    number: int
    start: int  # baseMediaDecodeTime (tfdt), in the track's timescale
    duration: int  # in the track's timescale
    size: int  # bytes
    discontinuity: bool = False  # media before this segment is missing on this encoder's input
    final: bool = False  # flushed when this encoder's contribution ended: it may stop short

"""The encoder's progress record: what an encoder tells the packager (and, while the packager
is not keeping up, the streaming endpoints) through the store, in
``channels/<channel>/encoders/<instance>/progress.json``.  It lives here, below storage, because
the timeline merge (``kubecast.media.merge``) reads it and both the packager and the endpoint
run that merge."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from .cues import TimelineCue
from .metadata import TimelineMetadata
from .tracks import SegmentRecord, TrackInfo


class _Record(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


class IngestInfo(_Record):
    connected: bool = False
    protocol: str | None = None
    bitrate: float = 0.0  # bit/s over the last seconds
    frames: int = 0
    renditions: int = 1  # video renditions in the contribution (multi-bitrate pass-through: several)
    keyframes_aligned: bool | None = None  # only known with several renditions
    alignment_message: str = ""


class EncoderProgress(_Record):
    channel: str
    instance: str
    session: str  # changes each time the encoder process starts
    state: Literal["waiting", "live", "error"]
    message: str = ""
    updated: datetime
    availability_start_time: datetime | None = None  # wall-clock time of media time 0
    segment_duration_ms: int
    tracks: list[TrackInfo] = Field(default_factory=list)
    # Most recent segments per track id, oldest first; bounded so the record stays small.
    segments: dict[str, list[SegmentRecord]] = Field(default_factory=dict)
    ingest: IngestInfo = Field(default_factory=IngestInfo)
    speed: float = 0.0  # encoding speed as a multiple of real time
    thumbnail_updated: datetime | None = None
    cues: list[TimelineCue] = Field(default_factory=list)  # the most recent ad markers it placed, oldest first
    metadata: list[TimelineMetadata] = Field(default_factory=list)  # the most recent ID3 tags it placed, oldest first

    @classmethod
    def from_json(cls, data: bytes) -> "EncoderProgress":
        return cls.model_validate_json(data)

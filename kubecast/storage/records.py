"""The records the components exchange through the store (besides the timeline and the
encoders' progress, whose models live in ``kubecast.media`` because the merge reads them)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from kubecast.media.progress import EncoderProgress, IngestInfo

if TYPE_CHECKING:
    from kubecast.api import Program

__all__ = ["ClockStart", "EncoderProgress", "Epoch", "IngestInfo", "ProgramRecord"]


class _Record(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


class ClockStart(_Record):
    """Media time 0 of a channel: one value for both encoders, or their numbers would differ."""

    availability_start_time: datetime


class Epoch(_Record):
    """How one contribution's timestamps land on the channel timeline: media ms = timestamp ms + offsetMs.

    A contribution that reaches both encoders (dual push, relay) carries the same timestamps
    on both paths, so the encoder that sees it first writes the epoch and the other one reads
    it: both then cut the same frames into the same numbers.  A new epoch starts when a
    contribution's timestamps do not fit the current one (the publisher restarted).
    """

    epoch: int
    offset_ms: int
    first_segment: int
    created: datetime
    instance: str
    reset: str | None = None  # the reset token it was started under (ChannelControl.reset)


class SlateRequest(_Record):
    """A manual slate switched on or off (Azure Media Services' ShowSlate / HideSlate) at the
    wall-clock time ``asked``: both encoders of the pair map that one time through the channel's
    availabilityStartTime to the same segment boundary (``kubecast.encoder.manual_slate``)."""

    on: bool
    asked: datetime


def slate_switched(previous: SlateRequest | None, *, on: bool, now: datetime) -> SlateRequest | None:
    """The manual slate once ``on`` is asked at ``now``: a new request when that changes it, else
    the one in force (asking again must not move its boundary; an off never precedes an on)."""
    if (previous is not None and previous.on) == on:
        return previous
    return SlateRequest(on=on, asked=now)


class CueRequest(_Record):
    """A manual ad break started (``out``, for ``durationMs``; Azure Media Services'
    StartAdvertisement) or ended now (EndAdvertisement) at the wall-clock time ``asked``: both
    encoders of the pair map that one time to the same segment boundary and insert the same
    SCTE-35 splice_insert there (``kubecast.encoder.manual_cue``).  Judged when it is asked
    (``kubecast.storage.cue_requests``)."""

    event_id: int = Field(ge=0, le=0xFFFFFFFF)  # the splice_event_id
    out: bool
    asked: datetime
    duration_ms: int | None = Field(default=None, ge=0)


class ChannelControl(_Record):
    """What the control plane asks of a channel's data plane: its state (``spec.state``, read by
    ``kubecast up``, which stops or starts the channel's processes), the newest reset token
    (read by the encoders when a contribution starts: a token no epoch carries yet starts a
    fresh timeline), the manual slate and the newest manual cues (followed by the encoders while
    they encode).  Written by ``kubecast up`` and ``kubecast channel``, and on a cluster by the
    operator from the ``kubecast.io/reset``, ``kubecast.io/slate`` and ``kubecast.io/cue``
    annotations and from ``spec.state`` (there the state is the replicas; the encoder pods' ingest
    reads it when told to stop, to tell publishers why: ``kubecast.ingest.control``)."""

    state: Literal["Running", "Stopped"] = "Running"
    reset: str | None = None
    slate: SlateRequest | None = None
    cues: list[CueRequest] = Field(default_factory=list)  # oldest first, at most cue_requests.KEPT

    @classmethod
    def from_json(cls, data: bytes) -> "ChannelControl":
        return cls.model_validate_json(data)


class ProgramRecord(_Record):
    """A Program as the data plane sees it: written by the control plane (the operator, or
    ``kubecast up``), read by the channel's packager (which records it) and by streaming
    endpoints (which find it by its locator)."""

    name: str
    channel: str
    locator: str
    manifest_name: str = "index"
    archive_window_seconds: float
    state: Literal["Running", "Stopped"] = "Running"

    @classmethod
    def from_json(cls, data: bytes) -> "ProgramRecord":
        return cls.model_validate_json(data)

    @classmethod
    def of(cls, program: Program) -> ProgramRecord:
        """From a ``kubecast.api.Program`` (the control plane's view of the same thing)."""
        spec = program.spec
        return cls(
            name=program.name,
            channel=spec.channel_name,
            locator=spec.locator or program.name,
            manifest_name=spec.manifest_name,
            archive_window_seconds=spec.archive_window_seconds,
            state=spec.state.value,
        )

"""What a Channel does over time: running or stopped, what its deletion keeps, and what its
encoders show while the contribution is lost.  Beside ``channel.py`` (ingest and encoding) so
that each file reads as one idea; ``kubecast.api`` re-exports the public names."""

from __future__ import annotations

import enum

from pydantic import Field, field_validator

from .common import WireModel
from .program import parse_iso_duration


class DeletionPolicy(str, enum.Enum):
    RETAIN = "Retain"
    DELETE = "Delete"


class ChannelState(str, enum.Enum):
    """What the operator asks of a channel (Azure Media Services' Start and Stop)."""

    RUNNING = "Running"
    STOPPED = "Stopped"  # no encoder or packager runs; what is stored stays playable


def stopped_refusal(channel: str) -> str:
    """Why a stopped channel takes no publisher: the ingest's refusal locally, and the Channel's
    status on a cluster (where no ingest pod is left to say it), in the same words."""
    return f"channel {channel} is stopped: start it to publish"


ISO_DURATION = r"^P([0-9]+D)?(T([0-9]+H)?([0-9]+M)?([0-9]+(\.[0-9]+)?S)?)?$"


class Slate(WireModel):
    """What the encoders show while the contribution is lost (Azure Media Services' slate)."""

    after: str = Field(
        default="PT2S",
        pattern=ISO_DURATION,
        description="ISO-8601 duration: once the contribution has been lost for this long, the encoders carry the "
        "timeline on with a card showing the channel's name, and silence, until it returns.",
    )

    @field_validator("after")
    @classmethod
    def _after_is_a_duration(cls, value: str) -> str:
        if not 0 <= parse_iso_duration(value).total_seconds() <= 3600:
            raise ValueError("slate.after must be between zero and one hour")
        return value

    @property
    def after_ms(self) -> int:
        return int(parse_iso_duration(self.after).total_seconds() * 1000)

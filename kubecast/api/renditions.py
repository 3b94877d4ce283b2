"""One rung of an encoding ladder: what the Channel's custom ladder and the named presets are made of."""

from __future__ import annotations

import enum

from pydantic import Field

from .common import WireModel


class H264Profile(str, enum.Enum):
    BASELINE = "Baseline"
    MAIN = "Main"
    HIGH = "High"


class Rendition(WireModel):
    """One rung of the ladder."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$", description="Rendition id, used in URLs and storage keys."
    )
    width: int = Field(ge=16, le=7680, multiple_of=2, description="Output width in pixels (even).")
    height: int = Field(ge=16, le=4320, multiple_of=2, description="Output height in pixels (even).")
    bitrate: int = Field(ge=50_000, le=50_000_000, description="Target video bitrate in bit/s.")
    profile: H264Profile = Field(default=H264Profile.HIGH, description="H.264 profile.")

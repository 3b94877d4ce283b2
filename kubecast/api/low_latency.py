"""Low-latency HLS and DASH for a Channel: how long its parts are."""

from __future__ import annotations

from pydantic import Field, field_validator

from .common import WireModel, whole_milliseconds


class LowLatency(WireModel):
    """Low-latency HLS and DASH for the channel, beside its standard outputs (which do not change)."""

    part_duration: float = Field(
        default=0.5,
        ge=0.2,
        le=1.0,
        description="Seconds per part: while a segment is being written, the encoders store it in parts this "
        "long (the first of each segment starts with a key frame), which low-latency players fetch as they appear.",
    )

    @field_validator("part_duration")
    @classmethod
    def _whole_milliseconds(cls, value: float) -> float:
        return whole_milliseconds(value, "lowLatency.partDuration")

    @property
    def part_duration_ms(self) -> int:
        return int(round(self.part_duration * 1000))

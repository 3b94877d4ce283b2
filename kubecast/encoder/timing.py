"""Mapping a contribution's timestamps onto the channel timeline (pure).

RTMP restarts timestamps at 0 on every connection, so each connection is anchored: its first
timestamp lands on a segment boundary, the latest one at or before "now" (media time tracks
wall-clock time from availabilityStartTime, never ahead of it, so no segment is announced
before its time) unless that would reuse a number: then the segment after the last one this
encoder wrote (numbering only ever increases).  Everything after the first timestamp keeps its
distance from it, so the contribution's own timing is preserved exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

VIDEO_TIMESCALE = 90_000


def first_segment_of_connection(*, availability_start: datetime, now: datetime, segment_duration_ms: int, last_written: int | None) -> int:
    elapsed_ms = (now - availability_start).total_seconds() * 1000
    by_clock = max(0, math.floor(elapsed_ms / segment_duration_ms))
    return by_clock if last_written is None else max(by_clock, last_written + 1)


@dataclass
class ConnectionClock:
    """Contribution milliseconds -> channel media time in any timescale."""

    first_segment: int
    segment_duration_ms: int
    first_timestamp_ms: int | None = None

    @property
    def offset_ms(self) -> int:
        return self.first_segment * self.segment_duration_ms

    def anchor(self, timestamp_ms: int) -> None:
        if self.first_timestamp_ms is None:
            self.first_timestamp_ms = timestamp_ms

    def media_time(self, timestamp_ms: int, timescale: int = VIDEO_TIMESCALE) -> int:
        self.anchor(timestamp_ms)
        return (self.offset_ms + timestamp_ms - self.first_timestamp_ms) * timescale // 1000

"""Mapping a contribution's timestamps onto the channel timeline (pure).

RTMP restarts timestamps at 0 on every connection, and the two encoders of a channel must
agree, frame for frame, on where each contribution lands.  The mapping is an *epoch* (see
``kubecast.storage.Epoch``): media ms = timestamp ms + offset.  When a connection starts, its
first timestamp is tried against the channel's latest epoch:

- it fits (mapped, it lands within ``TOLERANCE`` of "now"): the connection continues that
  epoch.  This is the other path of a dual push, a relay, or a reconnect of one path while the
  publisher kept running: same timestamps, same mapping, same segment numbers.  Such a
  connection *joins* mid-stream, so its first segment may be partial and is not published
  (the other encoder has it).
- it does not: a new epoch starts, its first timestamp on a segment boundary, the latest one
  at or before "now" (media time never runs ahead of wall-clock time, so no segment is
  announced before its time), or the one after the newest number already used, whichever is
  later: numbering only ever increases, and the packager marks the gap as a discontinuity.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .segmenter import TrackSegmenter

VIDEO_TIMESCALE = 90_000
TOLERANCE_MS = 8_000  # network and buffering delay between two paths; far below any restart gap


@dataclass(frozen=True)
class Placement:
    epoch: int
    offset_ms: int
    first_segment: int
    joined: bool  # continues an epoch that another connection started
    discontinuity: bool = False  # a new epoch after earlier media: there is a gap before it


def place_connection(
    *,
    latest: tuple[int, int, int] | None,
    first_timestamp_ms: int,
    now_media_ms: int,
    segment_duration_ms: int,
    last_number: int | None,
    own_last: int | None = None,
) -> Placement:
    """``latest`` is the channel's newest epoch as (epoch, offset_ms, first_segment);
    ``last_number`` the newest segment number in use on the channel, ``own_last`` this
    encoder's.  A connection whose timestamps would land before a segment this encoder already
    wrote is a new contribution, however close to "now" it lands (a publisher restarted at
    once, or a file sent faster than real time)."""
    if latest is not None:
        epoch, offset_ms, first_segment = latest
        mapped = first_timestamp_ms + offset_ms
        fits = abs(mapped - now_media_ms) <= TOLERANCE_MS and mapped >= first_segment * segment_duration_ms
        if fits and (own_last is None or mapped >= own_last * segment_duration_ms):
            return Placement(epoch, offset_ms, first_segment, joined=True)
    by_clock = max(0, math.floor(now_media_ms / segment_duration_ms))
    first_segment = by_clock if last_number is None else max(by_clock, last_number + 1)
    return Placement(
        0 if latest is None else latest[0] + 1,
        first_segment * segment_duration_ms - first_timestamp_ms,
        first_segment,
        joined=False,
        discontinuity=last_number is not None,
    )


def first_complete_segment(first_time: int, segment_duration_ms: int, timescale: int) -> int:
    """The first segment a connection that joined at ``first_time`` holds from its boundary on."""
    return -(-first_time * 1000 // (segment_duration_ms * timescale))


class ConnectionClock:
    """Contribution milliseconds -> channel media time, placed on the first timestamp.

    ``place`` is called once, with the connection's first timestamp, and returns the
    Placement (it reads and writes the channel's epochs in storage).
    """

    def __init__(self, place: Callable[[int], Placement]) -> None:
        self._place = place
        self.placement: Placement | None = None
        self._followers: list[TrackSegmenter] = []

    @property
    def joined(self) -> bool:
        return self.placement is not None and self.placement.joined

    @property
    def discontinuity(self) -> bool:
        return self.placement is not None and self.placement.discontinuity

    def anchor(self, timestamp_ms: int) -> Placement:
        if self.placement is None:
            self.placement = self._place(timestamp_ms)
            for segmenter in self._followers:
                self._apply(segmenter)
            self._followers.clear()
        return self.placement

    def follow(self, segmenter: TrackSegmenter) -> None:
        """A track's segmenter learns how this connection was placed (joined, after a gap)
        before its first sample: at placement, or now if that has happened."""
        if self.placement is None:
            self._followers.append(segmenter)
        else:
            self._apply(segmenter)

    def _apply(self, segmenter: TrackSegmenter) -> None:
        assert self.placement is not None  # applied once placed
        if self.joined:
            segmenter.mark_joined()
        else:
            segmenter.start_at(self.placement.first_segment)
        if self.discontinuity:
            segmenter.mark_discontinuity()

    def media_time(self, time: int, source_timescale: int, timescale: int = VIDEO_TIMESCALE) -> int:
        """``time`` (ticks of ``source_timescale``) as channel media time in ``timescale``.

        The placement is in milliseconds and is made with the first time rounded down, so the
        first sample never lands before the boundary it was placed on.  Rounded down again here,
        the result is the source's time plus one constant whenever ``timescale`` is a multiple
        of ``source_timescale``: durations and composition offsets come through unchanged."""
        placement = self.anchor(time * 1000 // source_timescale)
        ticks = time * timescale * 1000 + placement.offset_ms * timescale * source_timescale
        return ticks // (source_timescale * 1000)

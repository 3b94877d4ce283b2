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

The placement is decided once per connection, before any track sees a frame (the session
calls ``ChannelClock.place`` with the first frame a track can use) and handed to every track
as a ``ConnectionClock``; ``ConnectionClock.first_segment`` is the one rule for which segment
a track starts with, so the drop of a joining connection's partial segment is decided in one
place for the ladder, the pass-through video and the audio alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kubecast.media.timeline import segment_number
from kubecast.storage import Epoch

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
    latest: Epoch | None,
    first_timestamp_ms: int,
    now_media_ms: int,
    segment_duration_ms: int,
    last_number: int | None,
    own_last: int | None = None,
) -> Placement:
    """``latest`` is the channel's newest epoch; ``last_number`` the newest segment number in
    use on the channel, ``own_last`` this encoder's.  A connection whose timestamps would land
    before a segment this encoder already wrote is a new contribution, however close to "now"
    it lands (a publisher restarted at once, or a file sent faster than real time)."""
    if latest is not None:
        mapped = first_timestamp_ms + latest.offset_ms
        fits = abs(mapped - now_media_ms) <= TOLERANCE_MS and mapped >= latest.first_segment * segment_duration_ms
        if fits and (own_last is None or mapped >= own_last * segment_duration_ms):
            return Placement(latest.epoch, latest.offset_ms, latest.first_segment, joined=True)
    by_clock = max(0, math.floor(now_media_ms / segment_duration_ms))
    first_segment = by_clock if last_number is None else max(by_clock, last_number + 1)
    return Placement(
        0 if latest is None else latest.epoch + 1,
        first_segment * segment_duration_ms - first_timestamp_ms,
        first_segment,
        joined=False,
        discontinuity=last_number is not None,
    )


def first_complete_segment(first_time: int, segment_duration_ms: int, timescale: int) -> int:
    """The first segment a connection that joined at ``first_time`` holds from its boundary on."""
    return -(-first_time * 1000 // (segment_duration_ms * timescale))


class ConnectionClock:
    """One connection's place on the channel timeline, decided before its first frame.

    The session places the connection once (``ChannelClock.place``, with the first frame a
    track can use) and hands this clock to every track it then builds: every track maps its
    times with the same constant, and asks ``first_segment`` which segment it starts with.
    Nothing is placed lazily and no track reaches back into storage."""

    def __init__(self, placement: Placement) -> None:
        self.placement = placement

    @property
    def joined(self) -> bool:
        return self.placement.joined

    @property
    def discontinuity(self) -> bool:
        return self.placement.discontinuity

    def first_segment(self, first_time: int, timescale: int, segment_duration_ms: int) -> int:
        """The one rule for where a track of this connection starts, given the channel media
        time of its first sample (in ``timescale``): samples of earlier segments are dropped.

        A connection that joined a running epoch (the other path of a dual push, an encoder
        restarted mid-stream) starts at the first boundary at or after its first sample, dropping
        the segment it caught only part of: the encoder that was there from the start has it
        whole.  A connection that opened an epoch starts at the segment of its first sample, and
        never before the epoch's first segment (audio a few milliseconds ahead of the video frame
        that placed the connection would otherwise make a sliver of a segment before the epoch)."""
        if self.joined:
            return first_complete_segment(first_time, segment_duration_ms, timescale)
        return max(segment_number(first_time, segment_duration_ms, timescale), self.placement.first_segment)

    def media_time(self, time: int, source_timescale: int, timescale: int = VIDEO_TIMESCALE) -> int:
        """``time`` (ticks of ``source_timescale``) as channel media time in ``timescale``.

        The placement is in milliseconds and is made with the first time rounded down, so the
        first sample never lands before the boundary it was placed on.  Rounded down again here,
        the result is the source's time plus one constant whenever ``timescale`` is a multiple
        of ``source_timescale``: durations and composition offsets come through unchanged."""
        ticks = time * timescale * 1000 + self.placement.offset_ms * timescale * source_timescale
        return ticks // (source_timescale * 1000)

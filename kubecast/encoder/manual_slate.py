"""The manual slate (Azure Media Services' ShowSlate / HideSlate): the card and silence in place
of a live contribution's picture and sound, from one segment boundary to another.

A switch is asked at a wall-clock time (``SlateRequest.asked``, written by ``kubecast channel
slate`` or by the operator from the ``kubecast.io/slate`` annotation).  Both encoders of a pair
map that one time through the channel's availabilityStartTime onto the media timeline and
switch at the first segment boundary at least ``SWITCH_LEAD_MS`` after it, so they cut the
same segments from the same frames and their copies stay interchangeable (failover keeps
working through a manual slate).  The lead covers the time an encoder takes to read the
request (``control.py`` polls it) while the contribution runs at real time; an encoder that
reads it after that boundary has gone by (a contribution sent faster than real time, a store
that did not answer for seconds) switches at its next boundary and says so in its log.

The card is encoded with the contribution's own ladder (same settings, same init segments) and
the silence with its own AAC encoder, so a player sees no discontinuity at either switch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from kubecast.media.timeline import boundary_time
from kubecast.storage import SlateRequest

log = logging.getLogger("kubecast.encoder")

SWITCH_LEAD_MS = 3000


def switch_segment(*, asked: datetime, availability_start: datetime, segment_duration_ms: int) -> int:
    """The first segment on the far side of a switch asked at ``asked``: the first that starts at
    least ``SWITCH_LEAD_MS`` of channel media time after it."""
    asked_ms = (asked - availability_start) // timedelta(milliseconds=1)
    return -(-(asked_ms + SWITCH_LEAD_MS) // segment_duration_ms)


@dataclass(frozen=True)
class Switch:
    first: int  # the first segment number with the new state
    on: bool


@dataclass
class SlateSchedule:
    """Which segments of one contribution carry the card: the switches it has followed, in order.
    Before its first switch a contribution shows the opposite of that switch (the request it
    started under was not yet in force)."""

    segment_duration_ms: int
    switches: list[Switch] = field(default_factory=list)
    _request: SlateRequest | None = None

    def on(self, number: int) -> bool:
        state = not self.switches[0].on if self.switches else False
        for switch in self.switches:
            if switch.first > number:
                break
            state = switch.on
        return state

    def silent_ranges(self, start: int, end: int, timescale: int) -> list[tuple[int, int]]:
        """The parts of [start, end) (a track's ``timescale``) that fall in slate segments."""
        ranges: list[tuple[int, int]] = []
        number = start * 1000 // (self.segment_duration_ms * timescale)
        while (begin := max(start, boundary_time(number, self.segment_duration_ms, timescale))) < end:
            stop = min(end, boundary_time(number + 1, self.segment_duration_ms, timescale))
            if self.on(number):
                if ranges and ranges[-1][1] == begin:
                    ranges[-1] = (ranges[-1][0], stop)
                else:
                    ranges.append((begin, stop))
            number += 1
        return ranges

    def follow(
        self, request: SlateRequest | None, *, availability_start: datetime, current: int | None
    ) -> Switch | None:
        """Takes the channel's newest request; returns the switch it adds (None: nothing changes).
        ``current`` is the segment being encoded: a boundary already passed is too late to share
        with the other encoder, and the switch happens at the next one."""
        if request is None or request == self._request:
            return None
        self._request = request
        first = switch_segment(
            asked=request.asked, availability_start=availability_start, segment_duration_ms=self.segment_duration_ms
        )
        if current is not None and first <= current:
            log.warning(
                "the manual slate %s was read after its boundary (segment %d) had gone by; switching at segment %d",
                "on" if request.on else "off",
                first,
                current + 1,
            )
            first = current + 1
        if self.switches and self.on(first) == request.on:
            return None
        self.switches = [s for s in self.switches if s.first < first]
        switch = Switch(first, request.on)
        self.switches.append(switch)
        return switch

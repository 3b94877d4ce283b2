"""The manual cue (Azure Media Services' StartAdvertisement / EndAdvertisement): an ad break
asked through the channel's control record (``kubecast channel cue``, the operator's
``kubecast.io/cue`` annotation), inserted into the picture as if the contribution had carried it.

A request is asked at a wall-clock time (``CueRequest.asked``).  Both encoders of a pair map that
one time through the channel's availabilityStartTime to the first segment boundary at least
``SWITCH_LEAD_MS`` after it, as they do for the manual slate, and build the same SCTE-35
``splice_insert`` for it (its PTS is the boundary's channel media time at 90 kHz), so they place the
same cue on the same frame and the timeline lists it once.  A break's end goes at least one
segment after its start.  A splice on a boundary needs no IDR of its own (the segment starts with
one) and an ad server can replace whole segments.  From there on the cue takes the path of a
contribution's cue: HLS ``EXT-X-DATERANGE`` (and ``EXT-X-CUE-OUT``/``-IN``), DASH ``EventStream``,
programs' recordings.

The record keeps its newest requests; each encoder acts on each once.  One whose boundary went by
more than a segment ago (the record of a break before this contribution) is old news and skipped;
one read after its boundary but within a segment goes on the next picture, and the log says so."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from kubecast.media.contribution import Cue
from kubecast.media.scte35 import splice_insert_section
from kubecast.media.timeline import boundary_time
from kubecast.storage import CueRequest

from . import metrics
from .manual_slate import switch_segment

log = logging.getLogger("kubecast.encoder")

TIMESCALE = 90_000  # SCTE-35's, and the channel's video media time


def cue_segment(
    request: CueRequest, requests: list[CueRequest], *, availability_start: datetime, segment_ms: int
) -> int:
    """The segment the splice of ``request`` starts (``requests``: the record's, for an end's start)."""
    first = switch_segment(asked=request.asked, availability_start=availability_start, segment_duration_ms=segment_ms)
    if not request.out:
        for start in requests:
            if start.out and start.event_id == request.event_id:
                begun = switch_segment(
                    asked=start.asked, availability_start=availability_start, segment_duration_ms=segment_ms
                )
                first = max(first, begun + 1)
    return first


def manual_cue(request: CueRequest, segment: int, segment_ms: int) -> Cue:
    """The splice of ``request`` at the start of ``segment``, on the channel's 90 kHz media time."""
    time = boundary_time(segment, segment_ms, TIMESCALE)
    duration = None if request.duration_ms is None else request.duration_ms * TIMESCALE // 1000
    section = splice_insert_section(event_id=request.event_id, out=request.out, pts=time, duration=duration)
    return Cue(TIMESCALE, time, request.out, duration, request.event_id, section)


@dataclass
class ManualCues:
    """The requests one contribution has acted on."""

    segment_ms: int
    done: set[tuple[int, bool, datetime]] = field(default_factory=set)

    def follow(
        self, requests: list[CueRequest], *, availability_start: datetime, now: datetime, current: int | None
    ) -> list[tuple[int, Cue]]:
        """The cues of the requests not acted on yet, each with the segment it starts (its time is
        the channel's media time of that boundary).  ``current`` is the segment being encoded
        (None: not known)."""
        cues: list[tuple[int, Cue]] = []
        now_ms = (now - availability_start) // timedelta(milliseconds=1)
        for request in requests:
            key = (request.event_id, request.out, request.asked)
            if key in self.done:
                continue
            self.done.add(key)
            segment = cue_segment(request, requests, availability_start=availability_start, segment_ms=self.segment_ms)
            if (segment + 1) * self.segment_ms < now_ms or (current is not None and segment < current):
                metrics.MANUAL_CUES.labels("old").inc()
                log.info(
                    "manual cue %d: its boundary (segment %d) went by long ago; skipped", request.event_id, segment
                )
                continue
            if current is not None and segment == current:
                metrics.MANUAL_CUES.labels("late").inc()
                log.warning(
                    "manual cue %d was read after its boundary (segment %d) had gone by; placed on the next picture",
                    request.event_id,
                    segment,
                )
            else:
                metrics.MANUAL_CUES.labels("placed").inc()
            cues.append((segment, manual_cue(request, segment, self.segment_ms)))
        return cues

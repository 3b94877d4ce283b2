"""The one rule every ingest applies to an ad marker before the encoders see it.

A SCTE-35 section (from a TS PID, an RTMP ``onCuePoint``) is parsed strictly
(``kubecast.media.scte35``), and the splice it asks for must fall where the encoders can still
act on it: not before the newest frame of the contribution by more than ``MAX_LATE`` (its
pictures are already encoded: an IDR cannot be put there any more) and not more than
``MAX_LEAD`` ahead (SCTE 67 recommends a pre-roll of seconds; hours ahead is a broken clock),
and a break it states may last at most ``MAX_BREAK_SECONDS`` (SCTE-35 allows 26 hours in a
``break_duration`` and 141 days in a ``segmentation_duration``; the record that carries a cue to
the encoders holds 13 hours at 90 kHz, and a longer ad break is a broken marker).
Anything else is refused with a reason that is counted in
``kubecast_ingest_cues_rejected_total{channel,reason}`` and logged once per reason and
contribution: a stream of garbage sections must not flood the log, and it never touches the
media, which goes on as if the section had not been there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kubecast.media.contribution import MAX_CUE_DURATION, Cue
from kubecast.media.scte35 import Scte35Error, parse_splice_info

from . import metrics
from .refusals import Refusals

MAX_LATE_SECONDS = 1
MAX_LEAD_SECONDS = 300
MAX_BREAK_SECONDS = 12 * 3600


@dataclass
class CueGate(Refusals):
    """Judges one contribution's markers."""

    counter = metrics.CUES_REJECTED
    dropping = "an ad marker"

    def section(self, data: bytes, *, timescale: int, now: int | None, to_time: Callable[[int], int]) -> Cue | None:
        """The cue of a SCTE-35 section, or None (refused, or a section that is no splice:
        a splice_null heartbeat, a cancel, a time_signal of no break).  ``now`` is the newest
        frame's time (None: no frame yet); ``to_time`` maps a 90 kHz PTS to the contribution's
        time in ``timescale``."""
        try:
            info = parse_splice_info(data)
        except Scte35Error as error:
            self.refuse(error.reason, str(error))
            return None
        splice = info.splice
        if splice is None:
            return None
        if now is None:
            self.refuse("early", "a splice before the contribution's first frame")
            return None
        time = now if splice.pts is None else to_time(splice.pts)
        duration = None if splice.duration is None else splice.duration * timescale // 90_000
        return self.timed(
            Cue(timescale, time, splice.out, duration, splice.event_id, data), now=now, what="SCTE-35 splice"
        )

    def timed(self, cue: Cue, *, now: int, what: str) -> Cue | None:
        """``cue`` if its time is one the encoders can still act on and the break it states is not
        beyond ``MAX_BREAK_SECONDS``."""
        late = now - cue.splice_time
        if late > MAX_LATE_SECONDS * cue.timescale:
            self.refuse("past", f"a {what} {late / cue.timescale:.3f} s before the newest frame")
            return None
        if -late > MAX_LEAD_SECONDS * cue.timescale:
            self.refuse("ahead", f"a {what} {-late / cue.timescale:.0f} s ahead of the newest frame")
            return None
        longest = min(MAX_BREAK_SECONDS * cue.timescale, MAX_CUE_DURATION)
        if cue.duration is not None and not 0 <= cue.duration <= longest:
            self.refuse("duration", f"a {what} of a {cue.duration / cue.timescale:.0f} s break")
            return None
        return cue

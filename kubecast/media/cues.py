"""Ad markers on the channel timeline: what an encoder placed, and what the timeline lists (pure).

An encoder places every SCTE-35 cue of its contribution on the channel timeline (the live
ladder on the frame it forces an IDR at, pass-through at the cue's exact time) and lists it in
its ``progress.json``; the timeline merge takes the union of both encoders' lists (the two of a
pair place a cue identically, so a cue is listed once) and keeps those that still touch the
window; programs copy them into their recordings; the endpoint renders them into HLS
``EXT-X-DATERANGE`` (and ``EXT-X-CUE-OUT``/``-IN``) and DASH ``EventStream`` elements.
"""

from __future__ import annotations

import base64
from fractions import Fraction

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from .contribution import Cue

MAX_CUES = 100  # listed per timeline: far beyond the breaks of any window, bounded against a flood


class TimelineCue(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    event_id: int  # splice_event_id (segmentation_event_id of a time_signal)
    out: bool  # an ad break starts (out of the network), or ends
    time: int  # channel media time of the splice, in ``timescale``
    timescale: int
    duration: int | None = None  # of the break, in ``timescale``, when the cue states it
    section: str  # the splice_info_section, base64

    @classmethod
    def placed(cls, cue: Cue, *, time: int, timescale: int) -> TimelineCue:
        """``cue`` of the contribution, placed at ``time`` of the channel timeline."""
        duration = None if cue.duration is None else cue.duration * timescale // cue.timescale
        return cls(
            event_id=cue.event_id,
            out=cue.out,
            time=time,
            timescale=timescale,
            duration=duration,
            section=base64.b64encode(cue.section).decode(),
        )

    @property
    def seconds(self) -> Fraction:
        return Fraction(self.time, self.timescale)

    @property
    def duration_seconds(self) -> Fraction | None:
        return None if self.duration is None else Fraction(self.duration, self.timescale)

    @property
    def section_bytes(self) -> bytes:
        return base64.b64decode(self.section)

    @property
    def key(self) -> tuple[Fraction, int, bool]:
        return self.seconds, self.event_id, self.out


def merge_cues(listed: list[TimelineCue], offered: list[TimelineCue], *, since: Fraction | None) -> list[TimelineCue]:
    """``listed`` and ``offered``, each cue once, in time order, without those over before
    ``since`` (the window's start; None: keep all)."""
    cues = {cue.key: cue for cue in listed}
    for cue in offered:
        cues.setdefault(cue.key, cue)
    kept = [cue for cue in cues.values() if since is None or cue.seconds + (cue.duration_seconds or 0) >= since]
    return sorted(kept, key=lambda cue: cue.key)[-MAX_CUES:]

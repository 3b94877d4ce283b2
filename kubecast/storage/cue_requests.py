"""Judging a manual ad break when it is asked (``kubecast channel cue``, the operator's
``kubecast.io/cue`` annotation), before it reaches the control record the encoders follow: a
request they would have to refuse never gets there, and the one who asked learns why at once.

A start names its splice_event_id (or takes the next free one) and a duration from
``MIN_BREAK_SECONDS`` to ``MAX_BREAK_SECONDS``: 0 is no break, and a break of hours is a typing
error rather than an ad break.  An id the record still holds is refused (both encoders would see
two breaks of one id, and the end of one could not say which).  An end names the break it ends,
or ends the newest one not ended yet.  The record keeps the newest ``KEPT`` requests: enough for
the encoders, which poll it twice a second, to see each one, and bounded."""

from __future__ import annotations

import math
from datetime import datetime

from .records import CueRequest

MIN_BREAK_SECONDS = 1
MAX_BREAK_SECONDS = 3600
MAX_EVENT_ID = 0xFFFFFFFF
KEPT = 16


class CueRefused(ValueError):
    """A cue request that is not followed; ``reason`` is the metric's label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _kept(requests: list[CueRequest], request: CueRequest) -> list[CueRequest]:
    return [*requests, request][-KEPT:]


def cue_started(requests: list[CueRequest], *, event_id: int | None, seconds: float, now: datetime) -> list[CueRequest]:
    """``requests`` with a break of ``seconds`` started at ``now`` (``event_id`` None: one more
    than the highest id held); raises ``CueRefused``."""
    if not math.isfinite(seconds) or not MIN_BREAK_SECONDS <= seconds <= MAX_BREAK_SECONDS:
        raise CueRefused(
            "duration", f"a break of {seconds:g} s; it takes {MIN_BREAK_SECONDS} to {MAX_BREAK_SECONDS} seconds"
        )
    if event_id is None:
        event_id = (max((r.event_id for r in requests), default=0) + 1) % (MAX_EVENT_ID + 1)
    if not 0 <= event_id <= MAX_EVENT_ID:
        raise CueRefused("id", f"cue id {event_id}; it takes 0 to {MAX_EVENT_ID} (a splice_event_id)")
    if any(r.event_id == event_id for r in requests):
        raise CueRefused("repeated", f"cue id {event_id} was already used; give each break an id of its own")
    request = CueRequest(event_id=event_id, out=True, asked=now, duration_ms=round(seconds * 1000))
    return _kept(requests, request)


def cue_ended(requests: list[CueRequest], *, event_id: int | None, now: datetime) -> list[CueRequest]:
    """``requests`` with the break ``event_id`` (None: the newest not ended) ended at ``now``;
    raises ``CueRefused``."""
    ended = {r.event_id for r in requests if not r.out}
    started = [r.event_id for r in requests if r.out]
    if event_id is None:
        open_ = [i for i in started if i not in ended]
        if not open_:
            raise CueRefused("unknown", "no break to end: none was started, or every one was ended")
        event_id = open_[-1]
    elif event_id not in started:
        raise CueRefused("unknown", f"no break with cue id {event_id} to end")
    elif event_id in ended:
        raise CueRefused("repeated", f"the break with cue id {event_id} was already ended")
    return _kept(requests, CueRequest(event_id=event_id, out=False, asked=now))

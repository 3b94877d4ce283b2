"""The one rule every ingest applies to a contribution's clock.

A contribution's timestamps may step back a little (B-frames in presentation order, audio and
video interleaved loosely) but never by more than ``MAX_BACKWARDS_MS``, and never leap ahead
by more than ``MAX_JUMP_MS``: either means the encoder's clock restarted or broke.  Taken as
it is, such media would be placed hours away on the channel timeline, or on top of what was
already published; instead that contribution ends, and the encoder's reconnect is placed on
the timeline afresh with a marked discontinuity.
"""

from __future__ import annotations

MAX_JUMP_MS = 10_000
MAX_BACKWARDS_MS = 1_000


class TimestampGuard:
    """The last timestamp (ms) of each kind of a contribution."""

    def __init__(self) -> None:
        self.last: dict[str, int] = {}

    def check(self, kind: str, ms: int) -> str | None:
        """Why ``ms`` cannot follow the last timestamp of ``kind``, or None (and it becomes the last)."""
        last = self.last.get(kind)
        if last is not None and (ms < last - MAX_BACKWARDS_MS or ms > last + MAX_JUMP_MS):
            return f"{kind} timestamp jumped from {last} ms to {ms} ms"
        self.last[kind] = ms
        return None

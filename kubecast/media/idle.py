"""How long a channel has been without a contribution (``spec.idleTimeout``), from its timeline.

The same rule for the operator and for ``kubecast up``: a live timeline is never idle; otherwise
the channel has been idle since the later of when it was started (running) and when its newest
segment ended (segment n ends at availabilityStartTime + (n + 1) x D on the channel's clock).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .timeline import Timeline


def last_media_end(timeline: Timeline | None) -> datetime | None:
    if timeline is None or timeline.availability_start_time is None:
        return None
    newest = max((track.segments[-1].number for track in timeline.tracks if track.segments), default=None)
    if newest is None:
        return None
    return timeline.availability_start_time + timedelta(milliseconds=(newest + 1) * timeline.segment_duration_ms)


def idle_seconds(timeline: Timeline | None, *, running_since: datetime, now: datetime) -> float:
    """Seconds without a contribution, as of ``now``; 0 while one is live."""
    if timeline is not None and timeline.state == "live":
        return 0.0
    since = running_since
    end = last_media_end(timeline)
    if end is not None and end > since:
        since = end
    return max(0.0, (now - since).total_seconds())

"""What a program's recorded timeline holds: its state and recorded range (pure).

One summary for every reader — the operator's ``status.recording``, ``kubecast status`` and
the endpoint's status page — so that the three never disagree on what "recorded" means.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from .timeline import Timeline, TimelineTrack

RecordingState = Literal["Waiting", "Recording", "Stopped"]


@dataclass(frozen=True)
class Recording:
    state: RecordingState
    start: datetime | None = None  # UTC wall clock of the first recorded segment's start
    end: datetime | None = None  # UTC wall clock of the last recorded segment's end
    duration_seconds: float = (
        0.0  # media recorded; a contribution gap is not counted, so it can be less than end - start
    )
    segments: int = 0

    def to_wire(self) -> dict[str, Any]:
        """camelCase, RFC 3339 times: the shape of ``ProgramStatus.recording``."""
        return {
            "state": self.state,
            "start": _rfc3339(self.start),
            "end": _rfc3339(self.end),
            "durationSeconds": self.duration_seconds,
            "segments": self.segments,
        }

    def span(self) -> str | None:
        """``2026-01-01T12:00:20Z – 2026-01-01T12:00:32Z``, or None before anything is recorded."""
        return f"{_rfc3339(self.start)} – {_rfc3339(self.end)}" if self.start and self.end else None

    def amount(self) -> str:
        """``12s, 6 segments``."""
        return f"{_duration(self.duration_seconds)}, {self.segments} segment{'s' if self.segments != 1 else ''}"

    def describe(self) -> str:
        """One line for people: ``Recording 2026-01-01T12:00:20Z – 2026-01-01T12:00:32Z (12s, 6 segments)``."""
        if self.segments == 0:
            return f"{self.state}: nothing recorded yet" if self.state != "Stopped" else "Stopped: nothing was recorded"
        return f"{self.state} {self.span() or 'at no wall-clock time'} ({self.amount()})"


def reference_track(timeline: Timeline) -> TimelineTrack | None:
    """The track whose segments stand for the recording: the first video track, else the first
    audio one (all tracks of a timeline share the segment numbers, video is what viewers see)."""
    for kind in ("video", "audio"):
        track = next((t for t in timeline.tracks if t.info.kind == kind), None)
        if track is not None:
            return track
    return None


def recording_of(timeline: Timeline | None, *, program_stopped: bool = False) -> Recording:
    """The recording a program's timeline (``layout.program_timeline_key``) holds.

    ``Waiting`` until the packager has recorded a segment, ``Recording`` while the timeline is
    not stopped, ``Stopped`` once it is.  A program stopped before it ever recorded has no
    timeline and never will (the packager keeps nothing for it), so ``program_stopped`` makes
    that ``Stopped`` rather than a ``Waiting`` that would wait forever.
    """
    if timeline is None:
        return Recording("Stopped" if program_stopped else "Waiting")
    state: RecordingState = "Stopped" if timeline.state == "stopped" else "Recording"
    track = reference_track(timeline)
    if track is None or not track.segments:
        return Recording(state if state == "Stopped" else "Waiting")
    first, last = track.segments[0], track.segments[-1]
    timescale = track.info.timescale
    start, end = timeline.wall_clock(first.start, timescale), timeline.wall_clock(last.start + last.duration, timescale)
    return Recording(
        state=state,
        start=start.astimezone(timezone.utc) if start else None,
        end=end.astimezone(timezone.utc) if end else None,
        duration_seconds=round(sum(row.duration for row in track.segments) / timescale, 3),
        segments=len(track.segments),
    )


def _rfc3339(moment: datetime | None) -> str | None:
    # Whole seconds, as every other time in the resources' status.
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _duration(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"

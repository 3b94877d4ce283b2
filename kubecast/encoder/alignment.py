"""Multi-bitrate pass-through: publish a rendition only while its key frames match the first.

A player switches renditions at segment boundaries; that only works when segment n starts
at the same media time in every rendition, that is when the contribution's encoder put its
key frames at the same instants in all of them.  Each non-primary rendition's segment waits
here until the primary's segment of the same number is known, then is published if it
starts and ends at the same times (within ``TOLERANCE_TICKS``) and withheld otherwise.  A rendition
that was misaligned once is withheld for the rest of the contribution: one that drifts in
and out would make players switch into broken segments.  Pure: segments in, decisions out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .segmenter import Segment

TOLERANCE_TICKS = 900  # 10 ms at 90 kHz: less than any frame interval


@dataclass
class AlignmentGate:
    primary: str
    _starts: dict[int, tuple[int, int]] = field(default_factory=dict)  # primary's number -> (start, end)
    _first: int | None = None  # the primary's first number: earlier segments have nothing to match
    _waiting: dict[str, list[Segment]] = field(default_factory=dict)
    misaligned: dict[str, str] = field(default_factory=dict)  # track -> why it is withheld

    def offer(self, track: str, segment: Segment) -> list[tuple[str, Segment]]:
        """What may be published now, in order."""
        if track == self.primary:
            self._starts[segment.number] = (segment.start, segment.start + segment.duration)
            self._first = segment.number if self._first is None else self._first
            for number in [n for n in self._starts if n < segment.number - 8]:
                del self._starts[number]
            ready = [(track, segment)]
            for other in list(self._waiting):
                ready += self._release(other)
            return ready
        if track in self.misaligned:
            return []
        self._waiting.setdefault(track, []).append(segment)
        return self._release(track)

    def _release(self, track: str) -> list[tuple[str, Segment]]:
        ready = []
        waiting = self._waiting.get(track, [])
        newest_primary = max(self._starts, default=None)
        while waiting and track not in self.misaligned:
            segment = waiting[0]
            if self._first is not None and segment.number < self._first:
                waiting.pop(0)  # joined before the primary's first segment: nothing to switch from
                continue
            bounds = self._starts.get(segment.number)
            if bounds is None:
                if newest_primary is not None and segment.number < newest_primary:
                    self._withhold(
                        track, f"segment {segment.number} has no key frame at a boundary of the primary rendition"
                    )
                break
            start, end = bounds
            if abs(segment.start - start) > TOLERANCE_TICKS:
                self._withhold(
                    track,
                    f"segment {segment.number} starts {abs(segment.start - start) / 90:.0f} ms away from the primary "
                    "rendition's",
                )
                break
            if not segment.final and abs(segment.start + segment.duration - end) > TOLERANCE_TICKS:
                self._withhold(
                    track,
                    f"segment {segment.number} ends {abs(segment.start + segment.duration - end) / 90:.0f} ms away "
                    "from the primary rendition's",
                )
                break
            ready.append((track, waiting.pop(0)))
        return ready

    def _withhold(self, track: str, reason: str) -> None:
        self.misaligned[track] = (
            f"rendition {track} is not key-frame aligned with {self.primary}: {reason}; it is not published"
        )
        self._waiting.pop(track, None)

    def finish(self) -> list[tuple[str, Segment]]:
        """At the end of the contribution: what can still be matched is published, the rest dropped."""
        ready = []
        for track in list(self._waiting):
            ready += self._release(track)
        self._waiting.clear()
        return ready

    @property
    def aligned(self) -> bool:
        return not self.misaligned

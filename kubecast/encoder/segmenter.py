"""Cutting a track's samples into numbered CMAF segments (pure: samples in, segments out).

A video segment starts at a key frame; segment n begins with the first key frame whose
presentation time is at or after n*D.  The live encoder forces exactly those key frames, so
its segments are exactly D long and numbered without gaps; a pass-through contribution cuts
where its own key frames fall.  An audio segment starts with the first frame at or after the
boundary.  A segment is only complete when the first sample of the next one arrives (that is
when the last sample's duration is known), or when the track is flushed.  At the end of a
contribution every track ends at the same number and time (``epoch_end``).

With ``part_duration_ms`` (a low-latency channel) the open segment is also cut into parts
(``kubecast.media.parts``): part k of segment n starts with the first sample at or after
n*D + k*P and is emitted, as a CMAF chunk, when the first sample after it arrives; the segment's
last part comes just before the segment itself.  The segment is built from the same samples as
always, so it does not depend on its parts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

from kubecast.media.mp4 import Sample, media_segment
from kubecast.media.parts import MAX_PARTS_PER_SEGMENT, part_index
from kubecast.media.timeline import boundary_time, segment_number
from kubecast.media.tracks import TrackInfo

from .timing import ConnectionClock


@dataclass(frozen=True)
class TimedSample:
    decode_time: int  # in the track's timescale, already shifted so that key frames have dts == pts
    composition_offset: int
    keyframe: bool
    data: bytes
    duration: int | None = None  # what the source says; a sample's duration is otherwise up to the next one's


@dataclass(frozen=True)
class Segment:
    number: int
    start: int  # tfdt
    duration: int
    data: bytes  # styp + moof + mdat
    discontinuity: bool
    final: bool = False  # flushed at the end of a contribution: may end before the boundary


@dataclass(frozen=True)
class Part:
    """Part ``index`` of segment ``number``, while that segment is being written (low latency)."""

    number: int
    index: int
    start: int  # tfdt
    duration: int
    data: bytes  # moof + mdat (a CMAF chunk: no styp)
    independent: bool  # starts with a sync sample
    discontinuity: bool  # its segment follows a gap


Emitted = Segment | Part  # what a segmenter hands on, in order: a segment's last part comes before it
PublishTrack = Callable[[TrackInfo, bytes], None]  # a track and its init segment, stored before its first segment
PublishSegment = Callable[[str, Emitted], None]  # (track id, segment or part)


@dataclass(frozen=True)
class PendingEnd:
    """A track's open segment when its contribution ends."""

    number: int
    start: Fraction  # seconds of channel media time
    end: Fraction


@dataclass(frozen=True)
class EpochEnd:
    """Where every track of a contribution ends: segment ``number``, its samples starting
    before ``time`` (None: the whole segment)."""

    number: int
    time: Fraction | None


def epoch_end(tracks: list[PendingEnd | None]) -> EpochEnd | None:
    """One end for every track: the lowest open segment number, cut where the shortest track
    ending in it ends, so no track has a sliver (of a segment, or past the others' end) that the
    others have not.  If a track would have nothing left of that segment, it ends one earlier
    (at the boundary) in every track."""
    pending = [track for track in tracks if track is not None]
    if not pending:
        return None
    number = min(track.number for track in pending)
    last = [track for track in pending if track.number == number]
    cut = min(track.end for track in last)
    if any(track.start >= cut for track in last):
        return EpochEnd(number - 1, None)
    return EpochEnd(number, cut)


@dataclass
class TrackSegmenter:
    timescale: int
    segment_duration_ms: int
    video: bool
    default_duration: int  # used for the last sample when a track is flushed
    # The connection's placement: the first sample sets, by ``ConnectionClock.first_segment``,
    # which segment this track starts with, and the first segment follows a gap when the
    # placement says so.  None: the caller gates the samples itself (the ladder gates the grid
    # its renditions encode).
    clock: ConnectionClock | None = None
    part_duration_ms: int | None = None  # low latency: the open segment is cut into parts this long
    _pending: list[TimedSample] = field(default_factory=list)
    _part_index: int = 0  # of the part being filled
    _part_from: int = 0  # where in _pending that part starts
    _number: int | None = None
    _discontinuity: bool = False
    _last_emitted: int | None = None
    _first: int | None = None  # the first number this track publishes, set by the clock

    def __post_init__(self) -> None:
        self._discontinuity = self.clock is not None and self.clock.discontinuity

    def mark_discontinuity(self) -> None:
        """The next segment follows a gap in the contribution (a reconnect, a jump of its clock)."""
        self._discontinuity = True

    def _starts_new_segment(self, sample: TimedSample) -> bool:
        if self.video and not sample.keyframe:
            return False
        presentation = sample.decode_time + sample.composition_offset
        number = segment_number(presentation, self.segment_duration_ms, self.timescale)
        return self._number is None or number > self._number

    def push(self, sample: TimedSample) -> list[Emitted]:
        out: list[Emitted] = []
        if self.clock is not None:
            presentation = sample.decode_time + sample.composition_offset
            if self._first is None:
                self._first = self.clock.first_segment(presentation, self.timescale, self.segment_duration_ms)
            if segment_number(presentation, self.segment_duration_ms, self.timescale) < self._first:
                return out
        if self._number is None and self.video and not sample.keyframe:
            return out  # a segment cannot start without a key frame
        if self._starts_new_segment(sample):
            if self._pending:
                out += self._close_part(next_decode_time=sample.decode_time)
                out.append(self._emit(next_decode_time=sample.decode_time))
            presentation = sample.decode_time + sample.composition_offset
            number = segment_number(presentation, self.segment_duration_ms, self.timescale)
            if self._last_emitted is not None and number <= self._last_emitted:
                number = self._last_emitted + 1  # never reuse a number, even if timestamps stall
            self._number = number
        elif self._pending and self.part_duration_ms is not None:
            assert self._number is not None  # set with the first pending sample
            window = part_index(
                sample.decode_time,
                number=self._number,
                segment_duration_ms=self.segment_duration_ms,
                part_duration_ms=self.part_duration_ms,
                timescale=self.timescale,
            )
            if window > self._part_index:
                out += self._close_part(next_decode_time=sample.decode_time)
        self._pending.append(sample)
        return out

    @property
    def pending(self) -> PendingEnd | None:
        """Where the samples not yet emitted lie: their segment, first start and end (seconds)."""
        if not self._pending:
            return None
        end = self._pending[-1].decode_time + (self._pending[-1].duration or self.default_duration)
        assert self._number is not None  # set with the first pending sample
        return PendingEnd(
            self._number, Fraction(self._pending[0].decode_time, self.timescale), Fraction(end, self.timescale)
        )

    def finish(self, end: EpochEnd | None) -> list[Emitted]:
        """End of the contribution: the pending segment is emitted up to where every track of
        the channel ends (``epoch_end``), and dropped if it lies beyond."""
        if end is not None and self._number is not None:
            if self._number > end.number:
                self._pending = []
            elif end.time is not None:
                self._pending = [s for s in self._pending if Fraction(s.decode_time, self.timescale) < end.time]
            if not self._pending:
                self._number = None
                self._part_index, self._part_from = 0, 0
                return []
        return self.flush()

    def flush(self) -> list[Emitted]:
        if not self._pending:
            return []
        last = self._pending[-1]
        end = last.decode_time + (last.duration or self.default_duration)
        out = self._close_part(next_decode_time=end)
        out.append(dataclasses.replace(self._emit(next_decode_time=end), final=True))
        self._number = None
        return out

    def _samples(self, pending: list[TimedSample], next_decode_time: int) -> list[Sample]:
        samples = []
        for index, sample in enumerate(pending):
            following = pending[index + 1].decode_time if index + 1 < len(pending) else next_decode_time
            samples.append(
                Sample(
                    max(1, following - sample.decode_time),
                    len(sample.data),
                    sample.composition_offset,
                    sample.keyframe or not self.video,
                )
            )
        return samples

    def _close_part(self, *, next_decode_time: int) -> list[Emitted]:
        """The part being filled, if parts are cut and it holds a sample."""
        if self.part_duration_ms is None or self._part_from >= len(self._pending):
            return []
        assert self._number is not None  # set with the first pending sample
        pending = self._pending[self._part_from :]
        index = min(self._part_index, MAX_PARTS_PER_SEGMENT - 1)
        data = media_segment(
            sequence_number=self._number * MAX_PARTS_PER_SEGMENT + index + 1,
            base_decode_time=pending[0].decode_time,
            samples=self._samples(pending, next_decode_time),
            data=b"".join(s.data for s in pending),
            chunk=True,
        )
        part = Part(
            number=self._number,
            index=index,
            start=pending[0].decode_time,
            duration=next_decode_time - pending[0].decode_time,
            data=data,
            independent=pending[0].keyframe or not self.video,
            discontinuity=self._discontinuity and index == 0,
        )
        self._part_index += 1
        self._part_from = len(self._pending)
        return [part]

    def _emit(self, *, next_decode_time: int) -> Segment:
        pending = self._pending
        assert self._number is not None  # set with the first pending sample
        samples = self._samples(pending, next_decode_time)
        data = media_segment(
            sequence_number=self._number + 1,
            base_decode_time=pending[0].decode_time,
            samples=samples,
            data=b"".join(s.data for s in pending),
        )
        segment = Segment(
            number=self._number,
            start=pending[0].decode_time,
            duration=next_decode_time - pending[0].decode_time,
            data=data,
            discontinuity=self._discontinuity,
        )
        self._discontinuity = False
        self._last_emitted = self._number
        self._pending = []
        self._part_index, self._part_from = 0, 0
        return segment

    @staticmethod
    def boundary(number: int, segment_duration_ms: int, timescale: int) -> int:
        return boundary_time(number, segment_duration_ms, timescale)

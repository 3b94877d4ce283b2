"""What the encoder has yet to store, and how it paces its retries (no I/O, no clock of its own).

While object storage is away the encoder keeps encoding: its segments wait in an upload
queue and are stored, oldest first, once storage answers again.  The queue is bounded so
that a long outage costs at most ``max_segments`` segments of memory per track (the encoder's
``--upload-backlog`` seconds of media): past that, the oldest segment still waiting is dropped
and reported, since a viewer gains nothing from a segment that old and an out-of-memory kill
would lose everything queued.  Everything else in the queue is coalesced: status updates that
follow each other merge into one, and a heartbeat or a thumbnail replaces the one waiting.

A failed write is retried after a delay that doubles from ``initial`` up to ``cap``, each
delay drawn between half of it and all of it (jitter), so two encoders that lost storage at
the same instant do not retry in step, and storage coming back is noticed within ``cap``.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from kubecast.media.cues import TimelineCue
from kubecast.media.metadata import TimelineMetadata
from kubecast.media.tracks import TrackInfo
from kubecast.storage import IngestInfo

from .segmenter import Part, Segment

EncoderState = Literal["waiting", "live", "error"]  # EncoderProgress.state


@dataclass
class Backoff:
    """Delays between attempts of one write: exponential, bounded, jittered."""

    rng: random.Random
    initial: float = 0.2
    cap: float = 2.0
    attempts: int = 0  # failed attempts so far

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.initial * 2.0 ** min(self.attempts, 32))
        self.attempts += 1
        return ceiling / 2 + self.rng.random() * ceiling / 2


@dataclass(frozen=True)
class TrackUpload:
    info: TrackInfo
    init: bytes


@dataclass(frozen=True)
class SegmentUpload:
    track_id: str
    segment: Segment


@dataclass(frozen=True)
class PartUpload:
    """A part of a segment being written (low latency): worth storing only while that segment is open."""

    track_id: str
    part: Part


@dataclass(frozen=True)
class ThumbnailUpload:
    jpeg: bytes


@dataclass(frozen=True)
class Heartbeat:
    """Write progress.json even though nothing changed: it says the encoder is alive."""


@dataclass(frozen=True)
class StatusUpdate:
    """Fields of progress.json to change; None leaves a field as it is."""

    state: EncoderState | None = None
    message: str | None = None
    ingest: IngestInfo | None = None
    speed: float | None = None

    def then(self, later: StatusUpdate) -> StatusUpdate:
        """This update followed by ``later``, as one."""
        return StatusUpdate(
            state=later.state if later.state is not None else self.state,
            message=later.message if later.message is not None else self.message,
            ingest=later.ingest if later.ingest is not None else self.ingest,
            speed=later.speed if later.speed is not None else self.speed,
        )


@dataclass(frozen=True)
class CuePlaced:
    """An ad marker placed on the channel timeline, for progress.json's list."""

    cue: TimelineCue


@dataclass(frozen=True)
class MetadataPlaced:
    """ID3 tags placed on the channel timeline, for progress.json's list."""

    item: TimelineMetadata


Upload = (
    TrackUpload | SegmentUpload | PartUpload | ThumbnailUpload | Heartbeat | StatusUpdate | CuePlaced | MetadataPlaced
)


@dataclass
class UploadQueue:
    """The encoder's writes in order, at most ``max_segments`` segments per track.

    Thread-safe: encoding threads put, the one writer thread takes."""

    max_segments: int
    dropped: list[SegmentUpload] = field(default_factory=list)  # dropped since the caller last took them
    _items: deque[Upload] = field(default_factory=deque)
    _segments: dict[str, int] = field(default_factory=dict)  # track id -> segments waiting
    # track id -> the newest segment a part was taken of (parts of a track are taken in order):
    # the rest of that segment's parts are never dropped (see drop_parts_before).
    _parts_begun: dict[str, int] = field(default_factory=dict)
    _closed: bool = False
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        if self.max_segments < 1:
            raise ValueError("the upload queue must hold at least one segment per track")

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    def segments_waiting(self) -> int:
        with self._cond:
            return sum(self._segments.values())

    def put(self, item: Upload) -> None:
        with self._cond:
            items = self._items
            if isinstance(item, SegmentUpload):
                items.append(item)
                self._segments[item.track_id] = self._segments.get(item.track_id, 0) + 1
                if self._segments[item.track_id] > self.max_segments:
                    self._drop_oldest(item.track_id)
                self._drop_parts_before(item.track_id, item.segment.number)
            elif isinstance(item, StatusUpdate) and items and isinstance(items[-1], StatusUpdate):
                items[-1] = items[-1].then(item)
            elif isinstance(item, Heartbeat):
                if not any(isinstance(waiting, Heartbeat) for waiting in items):
                    items.append(item)
            elif isinstance(item, ThumbnailUpload):
                self._remove(lambda waiting: isinstance(waiting, ThumbnailUpload))
                items.append(item)
            elif isinstance(item, TrackUpload):
                if item not in items:  # a reconnecting contribution announces the same track again
                    items.append(item)
            else:
                items.append(item)
            self._cond.notify()

    def get(self, timeout: float | None = None) -> Upload | None:
        """The oldest write; None once closed and empty (or when ``timeout`` passes first)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self._closed, timeout):
                return None
            if not self._items:
                return None
            item = self._items.popleft()
            if isinstance(item, SegmentUpload):
                self._segments[item.track_id] -= 1
            elif isinstance(item, PartUpload):
                self._parts_begun[item.track_id] = item.part.number
            return item

    def take_segments(self, limit: int) -> list[SegmentUpload]:
        """Up to ``limit`` segments that wait at the head of the queue, at once (none if
        something else comes first): they can be stored side by side."""
        with self._cond:
            taken: list[SegmentUpload] = []
            while self._items and len(taken) < limit and isinstance(self._items[0], SegmentUpload):
                item = self._items.popleft()
                assert isinstance(item, SegmentUpload)
                self._segments[item.track_id] -= 1
                taken.append(item)
            return taken

    def take_parts(self, limit: int, *, wait: float = 0.0) -> list[PartUpload]:
        """Up to ``limit`` parts that wait at the head of the queue, at once; with ``wait``, waiting
        that long at most for one to arrive (none if something else comes first)."""
        with self._cond:
            if wait > 0:
                self._cond.wait_for(lambda: self._items or self._closed, wait)
            taken: list[PartUpload] = []
            while self._items and len(taken) < limit and isinstance(self._items[0], PartUpload):
                item = self._items.popleft()
                assert isinstance(item, PartUpload)
                self._parts_begun[item.track_id] = item.part.number
                taken.append(item)
            return taken

    def drop_parts_before(self, track_id: str, number: int) -> None:
        """Segment ``number`` of the track is complete: parts of earlier segments still waiting are
        late for any low-latency player (the whole segments are on their way), so they are not
        stored, and never listed; except the rest of a segment whose first parts were taken
        already.  What is listed of a segment must add up to it: an LL-DASH response sending it
        part by part ends at the first part that never comes (``kubecast.endpoint.chunked``),
        leaving the player a hole the whole stored segment cannot fill (it asks for the segment
        once), and LL-HLS lists no part of a segment whose parts do not add up."""
        with self._cond:
            self._drop_parts_before(track_id, number)

    def _drop_parts_before(self, track_id: str, number: int) -> None:
        begun = self._parts_begun.get(track_id)
        self._remove(
            lambda waiting: (
                isinstance(waiting, PartUpload)
                and waiting.track_id == track_id
                and waiting.part.number < number
                and waiting.part.number != begun
            )
        )

    def close(self) -> None:
        """No more puts are expected: ``get`` returns None once the queue is empty."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def take_dropped(self) -> list[SegmentUpload]:
        with self._cond:
            dropped, self.dropped = self.dropped, []
            return dropped

    def _drop_oldest(self, track_id: str) -> None:
        index = next(
            i
            for i, waiting in enumerate(self._items)
            if isinstance(waiting, SegmentUpload) and waiting.track_id == track_id
        )
        dropped = self._items[index]
        assert isinstance(dropped, SegmentUpload)
        del self._items[index]
        self._segments[track_id] -= 1
        self.dropped.append(dropped)
        # Two status updates that the dropped segment kept apart are now neighbours: merge them,
        # so that what waits beside the segments stays bounded too.
        if 0 < index < len(self._items):
            before, after = self._items[index - 1], self._items[index]
            if isinstance(before, StatusUpdate) and isinstance(after, StatusUpdate):
                self._items[index - 1] = before.then(after)
                del self._items[index]

    def _remove(self, matches: Callable[[Upload], bool]) -> None:
        kept = [waiting for waiting in self._items if not matches(waiting)]
        self._items.clear()
        self._items.extend(kept)

    def snapshot(self) -> list[Upload]:
        """What waits, oldest first."""
        with self._cond:
            return list(self._items)


def max_segments_for(backlog_seconds: float, segment_duration_ms: int) -> int:
    """How many segments per track ``backlog_seconds`` of media are (at least one)."""
    return max(1, int(backlog_seconds * 1000 // segment_duration_ms))

"""The encoder's one writer to object storage.

Every write goes through one thread and one queue, in order, so a segment is always stored
before ``progress.json`` lists it, and encoding threads never wait on storage.  A failed
write is retried (storage outages are transient) rather than dropped: losing a segment
silently is the one thing the pipeline must not do.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from kubecast.media.tracks import SegmentRecord, TrackInfo
from kubecast.storage import EncoderProgress, IngestInfo, Store, layout

from . import metrics
from .segmenter import Segment

log = logging.getLogger("kubecast.encoder")

RECENT_SEGMENTS = 30  # per track in progress.json: a packager restarted within a minute catches up
HEARTBEAT_SECONDS = 2.0


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


class Publisher:
    def __init__(self, *, store: Store, channel: str, instance: str, segment_duration_ms: int):
        self.store = store
        self.channel = channel
        self.instance = instance
        previous = self._read_previous()
        self.progress = EncoderProgress(
            channel=channel,
            instance=instance,
            session=uuid.uuid4().hex[:12],
            state="waiting",
            updated=now_utc(),
            availability_start_time=previous.availability_start_time if previous else None,
            segment_duration_ms=segment_duration_ms,
            segments={
                track: records[-RECENT_SEGMENTS:] for track, records in (previous.segments if previous else {}).items()
            },
        )
        self.last_written = max((r[-1].number for r in self.progress.segments.values() if r), default=None)
        self._queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue()  # (kind, *arguments); None stops
        self._stored_inits: set[str] = set()
        self._thread = threading.Thread(target=self._run, name=f"publisher-{channel}-{instance}", daemon=True)
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    def _read_previous(self) -> EncoderProgress | None:
        data = self.store.get_sync(layout.progress_key(self.channel, self.instance))
        if data is None:
            return None
        try:
            return EncoderProgress.from_json(data)
        except ValueError:
            log.warning("ignoring an unreadable progress.json of %s/%s", self.channel, self.instance)
            return None

    # -- called from any thread --
    def set_availability_start(self, start: datetime) -> None:
        """The channel's media time 0 (``ChannelClock``), recorded in the next progress write."""
        self.progress.availability_start_time = start

    def start(self) -> None:
        self._thread.start()
        self._heartbeat.start()
        self._queue.put(("progress",))

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._queue.put(("progress",))
        self._queue.put(None)
        self._thread.join(timeout)

    def track(self, info: TrackInfo, init: bytes) -> None:
        self._queue.put(("track", info, init))

    def segment(self, track_id: str, segment: Segment) -> None:
        self._queue.put(("segment", track_id, segment))

    def thumbnail(self, jpeg: bytes) -> None:
        self._queue.put(("thumbnail", jpeg))

    def status(
        self,
        *,
        state: str | None = None,
        message: str | None = None,
        ingest: IngestInfo | None = None,
        speed: float | None = None,
        clear_tracks: bool = False,
    ) -> None:
        self._queue.put(("status", state, message, ingest, speed, clear_tracks))

    # -- the writer thread --
    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self._queue.put(("progress",))

    def _put(self, key: str, data: bytes) -> None:
        delay = 0.2
        while True:
            try:
                self.store.put_sync(key, data)
                return
            except Exception as error:  # noqa: BLE001 - any backend error is retried
                metrics.STORE_ERRORS.inc()
                log.warning("storing %s failed (%s); retrying in %.1fs", key, error, delay)
                if self._stop.is_set() and delay > 5:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self._handle(item)
                # Several tracks finish a segment at once: list them with one progress write.
                if self._queue.empty():
                    self.progress.updated = now_utc()
                    self._put(layout.progress_key(self.channel, self.instance), self.progress.to_json())
            except Exception:  # noqa: BLE001 - the writer must outlive one bad item
                log.exception("encoder publisher failed on %s", item[0])

    def _handle(self, item: tuple[Any, ...]) -> None:
        kind = item[0]
        progress = self.progress
        if kind == "track":
            _, info, init = item
            key = layout.init_key(self.channel, self.instance, info.id, info.init)
            if key not in self._stored_inits:
                self._put(key, init)
                self._stored_inits.add(key)
            progress.tracks = [t for t in progress.tracks if t.id != info.id] + [info]
        elif kind == "segment":
            _, track_id, segment = item
            self._put(layout.segment_key(self.channel, self.instance, track_id, segment.number), segment.data)
            records = progress.segments.setdefault(track_id, [])
            records.append(
                SegmentRecord(
                    segment.number,
                    segment.start,
                    segment.duration,
                    len(segment.data),
                    segment.discontinuity,
                    segment.final,
                )
            )
            del records[:-RECENT_SEGMENTS]
            self.last_written = max(self.last_written or 0, segment.number)
            metrics.SEGMENTS.labels(track_id).inc()
        elif kind == "thumbnail":
            self._put(layout.thumbnail_key(self.channel, self.instance), item[1])
            progress.thumbnail_updated = now_utc()
        elif kind == "status":
            _, state, message, ingest, speed, clear_tracks = item
            if state is not None:
                progress.state = state
            if message is not None:
                progress.message = message
            if ingest is not None:
                progress.ingest = ingest
            if speed is not None:
                progress.speed = speed
            if clear_tracks:
                progress.tracks = []

"""The encoder's one writer to object storage.

Every write goes through one thread and one queue, in order, so a segment is always stored
before ``progress.json`` lists it, and encoding threads never wait on storage.  A failed
write is retried (storage outages are transient) with a jittered, bounded backoff rather
than dropped: losing a segment silently is the one thing the pipeline must not do.  While
storage is away the queue grows up to the upload backlog (``uploads.py``); past it the
oldest waiting segments are dropped, counted and logged, so memory stays bounded.

A low-latency channel's parts have a writer of their own (``parts_writer.py``).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from kubecast.media.cues import TimelineCue
from kubecast.media.metadata import TimelineMetadata
from kubecast.media.tracks import SegmentRecord, TrackInfo
from kubecast.outage import Outage, left_out_note
from kubecast.storage import EncoderProgress, IngestInfo, Store, layout, storage_full

from . import metrics
from .parts_writer import PartsWriter
from .segmenter import Emitted, Part
from .uploads import (
    Backoff,
    CuePlaced,
    EncoderState,
    Heartbeat,
    MetadataPlaced,
    SegmentUpload,
    StatusUpdate,
    ThumbnailUpload,
    TrackUpload,
    Upload,
    UploadQueue,
    max_segments_for,
)

log = logging.getLogger("kubecast.encoder")

RECENT_SEGMENTS = 30  # per track in progress.json: a packager restarted within a minute catches up
RECENT_CUES = 20  # ad markers in progress.json: the packager lists them within seconds
RECENT_METADATA = 50  # ID3 tags in progress.json, likewise: 25 a second between two reads of a packager
# While a backlog drains, progress.json is written after this many stored segments at the latest,
# so that no segment falls out of its recent list before the packager has read a copy naming it.
LIST_EVERY = RECENT_SEGMENTS // 3
# Segments waiting side by side are stored this many at a time: each write costs a round trip,
# and a ladder's renditions finish their segments together (with 500 ms per request, one at a
# time would not keep up with three renditions of 2 s segments).
UPLOAD_CONCURRENCY = 4
HEARTBEAT_SECONDS = 2.0
DEFAULT_BACKLOG_SECONDS = 60.0  # of media per track: twice a 30 s storage outage
STOP_ATTEMPTS = 5  # a stopping encoder gives up a write after this many failures (~5 s)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


class Publisher:
    def __init__(
        self,
        *,
        store: Store,
        channel: str,
        instance: str,
        segment_duration_ms: int,
        backlog_seconds: float = DEFAULT_BACKLOG_SECONDS,
        rng: random.Random | None = None,
        part_duration_ms: int | None = None,
    ):
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
            cues=previous.cues[-RECENT_CUES:] if previous else [],
            metadata=previous.metadata[-RECENT_METADATA:] if previous else [],
        )
        # The highest segment number this encoder made, stored or still waiting to be: a new
        # contribution is placed after it.
        self.last_written = max((r[-1].number for r in self.progress.segments.values() if r), default=None)
        self._queue = UploadQueue(max_segments=max_segments_for(backlog_seconds, segment_duration_ms))
        self._rng = rng or random.Random()
        self._unlisted = 0  # segments stored since progress.json last listed them
        self._progress_changed = False  # something progress.json reports was done since it was written
        self._parts_writer: PartsWriter | None = None
        if part_duration_ms is not None:
            self._parts_writer = PartsWriter(
                channel=channel,
                instance=instance,
                session=self.progress.session,
                part_duration_ms=part_duration_ms,
                concurrency=UPLOAD_CONCURRENCY,
                put=self._put,
                tracks=lambda: self.progress.tracks,
            )
        self._outage = Outage()
        self._stored_inits: set[str] = set()
        self._uploads = ThreadPoolExecutor(UPLOAD_CONCURRENCY, thread_name_prefix=f"upload-{channel}-{instance}")
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
        if self._parts_writer is not None:
            self._parts_writer.start()
        self._heartbeat.start()
        self._queue.put(Heartbeat())

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._queue.put(Heartbeat())
        self._queue.close()
        if self._parts_writer is not None:
            self._parts_writer.close()
        self._thread.join(timeout)
        if self._parts_writer is not None:
            self._parts_writer.join(timeout)
        self._uploads.shutdown(wait=False)

    def track(self, info: TrackInfo, init: bytes) -> None:
        self._queue.put(TrackUpload(info, init))

    def segment(self, track_id: str, segment: Emitted) -> None:
        if isinstance(segment, Part):
            # parts come only from a segmenter given a part duration, which this encoder passes on
            if self._parts_writer is not None:
                self._parts_writer.part(track_id, segment)
            return
        self.last_written = max(self.last_written or 0, segment.number)
        self._queue.put(SegmentUpload(track_id, segment))
        if self._parts_writer is not None:
            self._parts_writer.segment_queued(track_id, segment.number)
        for dropped in self._queue.take_dropped():
            metrics.SEGMENTS_DROPPED.labels(dropped.track_id).inc()
            log.warning(
                "upload backlog of %s/%s full (%d segments per track): dropped segment %d of %s, never stored",
                self.channel,
                self.instance,
                self._queue.max_segments,
                dropped.segment.number,
                dropped.track_id,
            )
        metrics.UPLOAD_BACKLOG.set(self._queue.segments_waiting())

    def cue(self, cue: TimelineCue) -> None:
        self._queue.put(CuePlaced(cue))

    def metadata(self, item: TimelineMetadata) -> None:
        self._queue.put(MetadataPlaced(item))

    def thumbnail(self, jpeg: bytes) -> None:
        self._queue.put(ThumbnailUpload(jpeg))

    def status(
        self,
        *,
        state: EncoderState | None = None,
        message: str | None = None,
        ingest: IngestInfo | None = None,
        speed: float | None = None,
    ) -> None:
        self._queue.put(StatusUpdate(state=state, message=message, ingest=ingest, speed=speed))

    # -- the writer thread --
    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self._queue.put(Heartbeat())

    def _put(self, key: str, data: bytes, kind: str) -> None:
        backoff = Backoff(self._rng)
        while True:
            try:
                self.store.put_sync(key, data)
            except Exception as error:  # noqa: BLE001 - any backend error is retried
                full = storage_full(error)
                metrics.STORE_ERRORS.labels("full" if full else "unavailable").inc()
                delay = backoff.next_delay()
                self._report_failure(key, error, full=full)
                if self._stop.is_set() and backoff.attempts >= STOP_ATTEMPTS:
                    raise
                time.sleep(delay)
            else:
                metrics.STORE_WRITES.labels(kind).inc()
                if (lasted := self._outage.ended()) is not None:
                    log.info(
                        "storage takes writes of %s/%s again after %.1f s; %d segments waiting",
                        self.channel,
                        self.instance,
                        lasted,
                        self._queue.segments_waiting(),
                    )
                return

    def _report_failure(self, key: str, error: BaseException, *, full: bool) -> None:
        if (left_out := self._outage.failed()) is None:
            return
        what = "the store is full (no space left on device)" if full else f"storage fails ({_first_line(error)})"
        log.warning(
            "%s: %s not stored; %s/%s keeps encoding and retries, %d segments waiting (at most %d per track)%s",
            what,
            key,
            self.channel,
            self.instance,
            self._queue.segments_waiting(),
            self._queue.max_segments,
            left_out_note(left_out),
        )

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                if isinstance(item, SegmentUpload):
                    self._store_segments([item, *self._queue.take_segments(UPLOAD_CONCURRENCY - 1)])
                    self._progress_changed = True
                else:
                    self._handle(item)
                    self._progress_changed = True
                # Several tracks finish a segment at once: list them with one progress write.
                if self._progress_changed and (len(self._queue) == 0 or self._unlisted >= LIST_EVERY):
                    self.progress.updated = now_utc()
                    self._put(layout.progress_key(self.channel, self.instance), self.progress.to_json(), "progress")
                    self._unlisted = 0
                    self._progress_changed = False
            except Exception:  # noqa: BLE001 - the writer must outlive one bad item
                log.exception("encoder publisher failed on %s", type(item).__name__)
            metrics.UPLOAD_BACKLOG.set(self._queue.segments_waiting())

    def _store_segments(self, uploads: list[SegmentUpload]) -> None:
        """Store the segments side by side, then record them (in order) for progress.json."""

        def store(upload: SegmentUpload) -> None:
            number = upload.segment.number
            self._put(
                layout.segment_key(self.channel, self.instance, upload.track_id, number), upload.segment.data, "segment"
            )

        if len(uploads) == 1:
            store(uploads[0])
        else:
            list(self._uploads.map(store, uploads))  # every one stored (or the first error raised)
        for upload in uploads:
            segment = upload.segment
            records = self.progress.segments.setdefault(upload.track_id, [])
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
            if self._parts_writer is not None:
                self._parts_writer.segment_stored(upload.track_id, segment.number)
            self._unlisted += 1
            metrics.SEGMENTS.labels(upload.track_id).inc()

    def _handle(self, item: Upload) -> None:
        progress = self.progress
        if isinstance(item, TrackUpload):
            info = item.info
            key = layout.init_key(self.channel, self.instance, info.id, info.init)
            if key not in self._stored_inits:
                self._put(key, item.init, "init")
                self._stored_inits.add(key)
            # in place: a track described again (its captions found) keeps its position
            if any(t.id == info.id for t in progress.tracks):
                progress.tracks = [info if t.id == info.id else t for t in progress.tracks]
            else:
                progress.tracks.append(info)
        elif isinstance(item, CuePlaced):
            progress.cues = [*progress.cues, item.cue][-RECENT_CUES:]
        elif isinstance(item, MetadataPlaced):
            progress.metadata = [*progress.metadata, item.item][-RECENT_METADATA:]
        elif isinstance(item, ThumbnailUpload):
            self._put(layout.thumbnail_key(self.channel, self.instance), item.jpeg, "thumbnail")
            progress.thumbnail_updated = now_utc()
        elif isinstance(item, StatusUpdate):
            if item.state is not None:
                progress.state = item.state
            if item.message is not None:
                progress.message = item.message
            if item.ingest is not None:
                progress.ingest = item.ingest
            if item.speed is not None:
                progress.speed = item.speed

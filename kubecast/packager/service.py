"""The packager's loop: poll the encoders' progress, merge, replace the timeline.

It assumes it is the timeline's only writer: the operator runs one packager replica per
channel and local mode one process.  It keeps nothing that is not in storage: on start it
reads the timeline back and continues from it, and because encoders keep their last ~30
segments in progress.json, a packager restarted within about a minute catches up without
losing a segment.  It also records the channel's programs (``programs.py``) and, every
``RETENTION_INTERVAL``, deletes the segments no window needs any more (``retention.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from kubecast.media.merge import merge
from kubecast.media.timeline import Timeline
from kubecast.outage import Outage, left_out_note
from kubecast.storage import EncoderProgress, Store, layout

from . import metrics
from .programs import ProgramRecorder
from .retention import clean

log = logging.getLogger("kubecast.packager")

HEARTBEAT = timedelta(seconds=2)
PROGRAM_INTERVAL = timedelta(seconds=1)  # programs are listed and recorded at most this often
RETENTION_INTERVAL = timedelta(seconds=30)


def _signature(timeline: Timeline) -> tuple[object, ...]:
    """What readers care about apart from the segments: a change here is worth a write."""
    return (
        timeline.state,
        timeline.thumbnail_source,
        timeline.hls_start_offset_ms,
        tuple((i, h.state, h.ingest_connected, h.last_segment) for i, h in sorted(timeline.encoders.items())),
        tuple((c["type"], c["status"], c["reason"]) for c in timeline.conditions),
        tuple((t.info.id, t.info.init) for t in timeline.tracks),
    )


class Packager:
    def __init__(
        self,
        *,
        store: Store,
        channel: str,
        instances: list[str],
        segment_duration_ms: int,
        window_ms: int,
        hls_start_offset_ms: int | None = None,
        poll_interval: float = 0.1,
    ):
        self.store = store
        self.channel = channel
        self.instances = instances
        self.segment_duration_ms = segment_duration_ms
        self.window_ms = window_ms
        self.hls_start_offset_ms = hls_start_offset_ms
        self.poll_interval = poll_interval
        self.timeline: Timeline | None = None
        self._written_at: datetime | None = None
        self._cache: dict[str, tuple[str | None, EncoderProgress | None]] = {}
        self.programs = ProgramRecorder(store, channel)
        self._programs_at: datetime | None = None
        self._cleaned_at: datetime | None = None

    async def load(self) -> None:
        data = await self.store.get(layout.timeline_key(self.channel))
        if data is not None:
            try:
                self.timeline = Timeline.from_json(data)
                log.info("continuing the timeline of %s at generation %d", self.channel, self.timeline.generation)
            except ValueError as error:
                log.error("the stored timeline of %s is unreadable (%s); starting a new one", self.channel, error)

    async def _read_progress(self, instance: str) -> EncoderProgress | None:
        key = layout.progress_key(self.channel, instance)
        info = await self.store.head(key)
        if info is None:
            return None
        cached = self._cache.get(instance)
        if cached and cached[0] == info.etag and info.etag is not None:
            return cached[1]
        data = await self.store.get(key)
        if data is None:
            return None
        try:
            progress = EncoderProgress.from_json(data)
        except ValueError as error:
            metrics.READ_ERRORS.labels(instance).inc()
            log.warning("unreadable progress of %s/%s: %s", self.channel, instance, error)
            return cached[1] if cached else None
        self._cache[instance] = (info.etag, progress)
        return progress

    async def step(self, now: datetime | None = None) -> bool:
        """One poll; returns whether the timeline was written."""
        now = now or datetime.now(timezone.utc)
        # Side by side: with slow storage (hundreds of milliseconds a request) one poll costs one
        # round trip, not one per encoder.
        read = await asyncio.gather(*(self._read_progress(instance) for instance in self.instances))
        progress = dict(zip(self.instances, read))
        before = _signature(self.timeline) if self.timeline else None
        previous_failovers = self.timeline.failovers if self.timeline else None
        result = merge(
            self.timeline,
            progress,
            now=now,
            channel=self.channel,
            segment_duration_ms=self.segment_duration_ms,
            window_ms=self.window_ms,
        )
        timeline = result.timeline
        timeline.hls_start_offset_ms = self.hls_start_offset_ms
        due = self._written_at is None or now - self._written_at >= HEARTBEAT
        if not (result.changed or due or before != _signature(timeline)):
            self.timeline = timeline
            return False
        timeline.generation = (self.timeline.generation if self.timeline else 0) + 1
        await self.store.put(layout.timeline_key(self.channel), timeline.to_json())
        listed = datetime.now(timezone.utc)
        self.timeline, self._written_at = timeline, now
        metrics.WRITES.inc()
        metrics.DUPLICATES.inc(result.duplicates)
        for track_id, segment in result.published:
            metrics.PUBLISHED.labels(track_id, segment.source).inc()
            track = next(t for t in timeline.tracks if t.info.id == track_id)
            end = timeline.wall_clock(segment.start + segment.duration, track.info.timescale)
            if end is not None:
                metrics.PUBLISH_LATENCY.observe(max(0.0, (listed - end).total_seconds()))
        for track_id, old, new in result.failovers:
            log.warning("failover on %s/%s: segments now from encoder %s (was %s)", self.channel, track_id, new, old)
        if previous_failovers is not None and timeline.failovers > previous_failovers:
            metrics.FAILOVERS.inc(timeline.failovers - previous_failovers)
        return True

    async def record_programs(self, now: datetime | None = None) -> None:
        now = now or datetime.now(timezone.utc)
        if self._programs_at is None or now - self._programs_at >= PROGRAM_INTERVAL:
            self._programs_at = now
            await self.programs.step(self.timeline, now)
        if self._cleaned_at is None or now - self._cleaned_at >= RETENTION_INTERVAL:
            self._cleaned_at = now
            recordings = await self.programs.kept()
            if recordings is not None:
                await clean(self.store, self.timeline, recordings)

    async def run(self, stop: asyncio.Event, on_first_write: Callable[[], None] | None = None) -> None:
        await self.load()
        storage_outage, programs_outage = Outage(), Outage()
        while not stop.is_set():
            try:
                if await self.step() and on_first_write is not None:
                    on_first_write()
                    on_first_write = None
                if (lasted := storage_outage.ended()) is not None:
                    log.info("packager of %s works again after %.1f s", self.channel, lasted)
            except Exception:  # noqa: BLE001 - a storage hiccup must not end the channel's packager
                if (left_out := storage_outage.failed()) is not None:
                    log.exception("packager step failed for %s%s", self.channel, left_out_note(left_out))
            try:
                await self.record_programs()
            except Exception:  # noqa: BLE001 - a broken program must not stop the live channel
                if (left_out := programs_outage.failed()) is not None:
                    log.exception("recording the programs of %s failed%s", self.channel, left_out_note(left_out))
            try:
                await asyncio.wait_for(stop.wait(), self.poll_interval)
            except asyncio.TimeoutError:
                pass
        await self.step()  # a final write with the state as the encoders left it
        try:
            # A channel stopped on a cluster: the operator turned its Programs' records Stopped
            # just before this pod was told to go, and no packager is left to freeze them after.
            await self.programs.step(self.timeline, datetime.now(timezone.utc))
        except Exception:  # noqa: BLE001 - the next packager of the channel records them
            log.exception("recording the programs of %s at shutdown failed", self.channel)

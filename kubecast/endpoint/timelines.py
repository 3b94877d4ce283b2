"""Timelines as the endpoint sees them: read from storage, shared briefly between requests, and
carried on by the endpoint itself while the packager does not keep them fresh.

Many players ask for the same manifests at once; each timeline is read at most every
``ttl`` seconds per process, and rendered manifests are kept per timeline version, so a
burst of requests costs one storage read and one render.

Why the endpoint merges.  The packager is one process per channel, and a hung packager (a
frozen pod, a stuck storage write) is worse than a dead one: nothing restarts it while its
timeline stops growing and every player stalls although every segment is stored.  A second
packager with a lease in storage would fail over only after the lease expires and needs a
conditional write on every backend.  Instead, when the stored timeline of a live channel is
older than ``stale_after_ms`` (the packager writes it at every segment and at least every 2 s),
each endpoint replica reads the encoders' ``progress.json`` and extends the stored timeline
with ``kubecast.media.merge.merge``, the packager's own function, in memory and read-only
(and serves the result when it lists segments the stored timeline lacks).
Nothing is written, so replicas never compete, and there is no second merge to drift from the
first.  Replicas agree without talking to each other: they merge the same stored objects, the
merge's hold makes the copy listed under each number independent of when a replica read the
progress, and what a replica serves comes from reads that began at most ``ttl`` before the
request arrived (counted from when a read began, not from when a busy event loop got to its
answer), much less than the time a player waits between two playlist reloads (half a segment at least), so a player
alternating between replicas never gets an older playlist than the one before it.  A replica
keeps merging for ``stale_after_ms`` after the packager's timeline is fresh again, and never
serves a timeline shorter than one it served, so the hand-back to the packager (whose first
write may have read the progress a moment before an endpoint did) cannot step back either.
The merge reaches as far back as the encoders' progress (its last 30 segments per track), so
an outage longer than that leaves a gap marked as a discontinuity.

A running program's DVR window lists what the channel's timeline lists.  The packager records
programs after it writes the channel's timeline, at most every second (and not at all while
hung), so whenever the channel timeline a replica serves (the packager's, or its own merge)
lists segments the stored recording lacks, the replica grows the recording over it with the
packager's own ``record`` (``kubecast.storage.programs``), in memory and read-only, until the
stored recording has caught up.  The newest segment of a program's playlist is then the newer
of the stored recording's and the channel's, and neither steps back between replicas, so
neither does the playlist: not through a hung packager, and not at the hand-back, when one
replica still merging had grown the recording while another, done merging, would have served
the packager's recording a second behind the channel.  A program the packager has not begun to
record waits for it: where it starts is the packager's to write.  One stopped meanwhile goes on
as if running until the packager freezes it, which first records what the channel lists by
then, so it never ends short of a playlist a player was served.

While storage is slow or away, a timeline (or an encoder's progress) that cannot be read
within ``READ_DEADLINE`` is served from the last copy this process read (players keep playing
what it lists, which was stored before it was listed), and storage is asked again after
``RETRY_AFTER_FAILURE``, not on every request.

Every name and Host header in this cache comes from a request, so nothing here grows with the
names strangers make up: a timeline that was found is kept (storage bounds how many there are),
one that was not is remembered only among the ``MISSES_KEPT`` most recent misses, a name's lock
lives while a read of it is in flight, and rendered manifests are kept up to ``RENDERED_BYTES``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TypeVar, cast

from kubecast.media.merge import merge
from kubecast.media.parts import EncoderParts
from kubecast.media.timeline import Timeline
from kubecast.outage import Outage, left_out_note
from kubecast.storage import EncoderProgress, ProgramRecord, Store, layout
from kubecast.storage.programs import record as record_program

from . import metrics

log = logging.getLogger("kubecast.endpoint")

T = TypeVar("T")

READ_DEADLINE = 2.0  # seconds; a player's playlist request must not wait on storage longer
RETRY_AFTER_FAILURE = 1.0
MISSES_KEPT = 1024  # names read recently and not found (a player polling a program not yet recorded)
RENDERED_BYTES = 32 << 20  # bytes of rendered manifests kept, least recently used first out
# How old an encoder's parts.json may be when a low-latency request reads it: a part is listed
# every 500 ms or so, and a player waits for the next one, so this is what a replica adds to its
# wait (a local folder answers in about a millisecond, S3 in tens).
PARTS_TTL = 0.05
# An encoder with no parts.json (not started, or a single-encoder run) is looked for again only
# this often: finding it late delays nothing a player waits for, and each look is a GET.
MISSING_PARTS_TTL = 1.0


def stale_after_ms(segment_duration_ms: int) -> int:
    """How old a live channel's stored timeline may be before the endpoint merges for itself:
    the packager writes it at every segment (and at least every 2 s), so one write missed and a
    second more means the packager is hung, dead or cut off from storage."""
    return min(segment_duration_ms, 2000) + 1000


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def newest_number(timeline: Timeline) -> int:
    return max((t.segments[-1].number for t in timeline.tracks if t.segments), default=-1)


def _writable_copy(timeline: Timeline) -> Timeline:
    """A copy ``record`` may grow: it appends to the tracks and their rows in place (a copy of
    the rows' columns, 34 bytes a row)."""
    tracks = [track.model_copy(update={"segments": track.segments.copy()}) for track in timeline.tracks]
    return timeline.model_copy(update={"tracks": tracks})


@dataclass
class _CarriedProgram:
    timeline: Timeline
    # (generation, updated) of the stored recording, then of the channel timeline, it grew from
    made_from: tuple[int, datetime, int, datetime]


class KeyedLocks:
    """One asyncio lock per name, which exists only while someone holds it or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}  # name -> (lock, holders and waiters)

    def __len__(self) -> int:
        return len(self._locks)

    @asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(name, (None, 0))
        lock = lock or asyncio.Lock()
        self._locks[name] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[name]
            if users == 1:
                del self._locks[name]
            else:
                self._locks[name] = (lock, users - 1)


class RenderedManifests:
    """Rendered manifests, encoded once (every request then gets the same bytes), by key, each
    with the timeline version it was rendered from, least recently used first out once they add
    up to more than ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._texts: OrderedDict[tuple[str, ...], tuple[tuple[object, ...], bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._texts)

    def get(self, key: tuple[str, ...], version: tuple[object, ...]) -> bytes | None:
        found = self._texts.get(key)
        if found is None or found[0] != version:
            return None
        self._texts.move_to_end(key)
        return found[1]

    def put(self, key: tuple[str, ...], version: tuple[object, ...], text: bytes) -> None:
        old = self._texts.pop(key, None)
        if old is not None:
            self.size -= len(old[1])
        self._texts[key] = (version, text)
        self.size += len(text)
        while self.size > self.max_bytes and len(self._texts) > 1:
            _, (_, evicted) = self._texts.popitem(last=False)
            self.size -= len(evicted)


@dataclass
class _Merged:
    timeline: Timeline
    made_at: float  # monotonic, when the merge began (its progress reads were no older)
    stored: Timeline  # the packager's timeline it was made from: a newer read of it calls for a new merge
    merging_until: float  # monotonic: keep merging until then, though the stored timeline is fresh


class TimelineCache:
    def __init__(self, store: Store, *, ttl: float = 0.25, clock: Callable[[], datetime] = _utc_now):
        self.store = store
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[str, tuple[float, object]] = {}  # name -> (read at, parsed object); found ones only
        self._misses: OrderedDict[str, float] = OrderedDict()  # name -> read at, for names not found
        self._locks = KeyedLocks()
        self._rendered = RenderedManifests(RENDERED_BYTES)
        self._merged: dict[str, _Merged] = {}
        self._programs: dict[str, _CarriedProgram] = {}  # locator -> the window carried on and served
        self._read_outage = Outage()

    async def program(self, locator: str) -> ProgramRecord | None:
        return await self._read(f"locator:{locator}", layout.locator_key(locator), ProgramRecord.from_json)

    async def get_program(self, locator: str) -> Timeline | None:
        """The recorded timeline of the program a locator names (None: no such program)."""
        record = await self.program(locator)
        if record is None:
            self._programs.pop(locator, None)
            return None
        stored = await self._read(
            f"program:{locator}", layout.program_timeline_key(record.channel, record.name), Timeline.from_json
        )
        if stored is None or stored.state != "live":
            self._programs.pop(locator, None)
            return stored
        # Read through ``get``, which notices a stale channel timeline and merges, even when
        # every viewer of the channel watches a program and none its live URLs.
        channel = await self.get(record.channel)
        carried = self._programs.get(locator)
        ahead = max(newest_number(channel) if channel is not None else -1,
                    newest_number(carried.timeline) if carried is not None else -1)  # fmt: skip
        if channel is None or ahead <= newest_number(stored):
            self._programs.pop(locator, None)  # the packager's recording has caught up: serve what it wrote
            return stored
        made_from = (stored.generation, stored.updated, channel.generation, channel.updated)
        if carried is not None and carried.made_from == made_from:
            return carried.timeline  # the same inputs: the same window, rendered once
        # Stopped but not yet frozen by the packager: it will take what the channel lists first.
        running = record if record.state == "Running" else record.model_copy(update={"state": "Running"})
        grown, _ = record_program(_writable_copy(stored), running, channel, self.clock())
        if grown is None or (carried is not None and newest_number(grown) < newest_number(carried.timeline)):
            return carried.timeline if carried is not None else stored
        self._programs[locator] = _CarriedProgram(grown, made_from)
        return grown

    async def get(self, channel: str, *, fresh: bool = False) -> Timeline | None:
        """The channel's timeline: the stored one, or, while the packager does not keep it
        fresh, the stored one carried on with the encoders' progress.  ``fresh``: read and
        merge now, not within ``ttl``: another replica may have listed a segment this one has
        not seen yet, and a player sent here for it must not get a 404."""
        if fresh:
            self._entries.pop(channel, None)
            self._misses.pop(channel, None)
            if channel in self._merged:
                self._merged[channel].made_at = float("-inf")
        stored = await self._read(channel, layout.timeline_key(channel), Timeline.from_json)
        if stored is None or stored.state != "live":
            self._merged.pop(channel, None)
            return stored
        age = self.clock() - stored.updated
        grace = stale_after_ms(stored.segment_duration_ms) / 1000
        merged = self._merged.get(channel)
        if age > timedelta(seconds=grace):
            if merged is None:
                log.warning(
                    "the timeline of %s was last written %.1f s ago: merging the encoders' progress here",
                    channel,
                    age.total_seconds(),
                )
            merging_until = time.monotonic() + grace
        elif merged is not None and time.monotonic() < merged.merging_until:
            merging_until = merged.merging_until
        else:
            if merged is not None:
                del self._merged[channel]
                log.info("the timeline of %s is fresh again: serving the packager's", channel)
            return stored
        return await self._merge(channel, stored, merging_until)

    async def _merge(self, channel: str, stored: Timeline, merging_until: float) -> Timeline:
        arrived = time.monotonic()  # as in ``_read``: a merge is as old as the moment it began
        merged = self._merged.get(channel)
        if merged is not None and merged.stored is stored and arrived - merged.made_at < self.ttl:
            merged.merging_until = merging_until  # fresh enough: no lock to take, as in the common case below
            return merged.timeline
        async with self._locks.hold(f"merge:{channel}"):
            merged = self._merged.get(channel)
            if merged is not None and merged.stored is stored and arrived - merged.made_at < self.ttl:
                merged.merging_until = merging_until
                return merged.timeline
            began = time.monotonic()
            # Carry on from whichever is further along: the packager's timeline, or what this
            # replica already served (the merge only appends, so either gives the same rows).
            base = stored
            if merged is not None and newest_number(merged.timeline) > newest_number(stored):
                base = merged.timeline
            instances = sorted(set(stored.encoders) | (set(base.encoders)))
            read = await asyncio.gather(*(self._read_progress(channel, instance) for instance in instances))
            progress = dict(zip(instances, read))
            result = merge(
                base,
                progress,
                now=self.clock(),
                channel=channel,
                segment_duration_ms=stored.segment_duration_ms,
                window_ms=stored.window_ms,
            )
            metrics.TIMELINE_MERGES.inc()
            # Only new segments are worth departing from what the packager wrote: with the
            # encoders gone too, its last word on the channel stands.
            timeline = result.timeline if newest_number(result.timeline) > newest_number(stored) else stored
            self._merged[channel] = _Merged(timeline, made_at=began, stored=stored, merging_until=merging_until)
            return timeline

    async def parts(self, channel: str, instance: str) -> EncoderParts | None:
        """An encoder's live edge (low-latency channels); None: it cuts no parts, or storage has none."""
        key, name = layout.parts_key(channel, instance), f"parts:{channel}/{instance}"
        last = self._entry(name)
        ttl = MISSING_PARTS_TTL if last is not None and last[1] is None else PARTS_TTL
        try:
            return await self._read(name, key, EncoderParts.from_json, ttl=ttl)
        except Exception:  # noqa: BLE001 - never read and storage away: no parts from this encoder
            return None

    async def _read_progress(self, channel: str, instance: str) -> EncoderProgress | None:
        # Through the same reader as the timeline: a torn read keeps the last good copy, and
        # storage that is away costs a player no more than the timeline read already did.
        key = layout.progress_key(channel, instance)
        try:
            return await self._read(f"progress:{channel}/{instance}", key, EncoderProgress.from_json)
        except Exception:  # noqa: BLE001 - never read and storage away: this encoder has nothing to add
            return None

    def _entry(self, name: str) -> tuple[float, object] | None:
        """(read at, parsed object or None for not found) of the last read of a name, if any."""
        entry = self._entries.get(name)
        if entry is not None:
            return entry
        missed_at = self._misses.get(name)
        return None if missed_at is None else (missed_at, None)

    def _remember(self, name: str, read_at: float, found: object) -> None:
        if found is not None:
            self._entries[name] = (read_at, found)
            self._misses.pop(name, None)
            return
        self._entries.pop(name, None)
        self._misses[name] = read_at
        self._misses.move_to_end(name)
        while len(self._misses) > MISSES_KEPT:
            self._misses.popitem(last=False)

    async def _read(self, name: str, key: str, parse: Callable[[bytes], T], *, ttl: float | None = None) -> T | None:
        # An entry is as old as the moment its read *began*: a read that waited on a busy event
        # loop (or a slow store) after storage answered must not pass for a fresh one, or a
        # replica could answer a player with a timeline older than the other replica's last answer.
        # A request that waited here for someone else's read takes it if that read began at most
        # ``ttl`` before the request arrived.
        ttl = self.ttl if ttl is None else ttl
        arrived = time.monotonic()
        entry = self._entry(name)
        if entry and arrived - entry[0] < ttl:
            return cast("T | None", entry[1])  # a name's entry is made by its own kind's parse
        async with self._locks.hold(name):
            entry = self._entry(name)
            if entry and arrived - entry[0] < ttl:
                return cast("T | None", entry[1])
            began = time.monotonic()
            metrics.INDEX_READS.labels(name.split(":")[0] if ":" in name else "timeline").inc()
            try:
                data = await asyncio.wait_for(self.store.get(key), READ_DEADLINE)
            except Exception as error:  # noqa: BLE001 - storage away: answer with what we have, if anything
                if entry is None:
                    raise
                metrics.STALE_READS.inc()
                now = time.monotonic()
                if (left_out := self._read_outage.failed()) is not None:
                    log.warning(
                        "storage read of %s failed (%r); serving the last copy read%s",
                        key,
                        error,
                        left_out_note(left_out),
                    )
                self._remember(name, now - ttl + RETRY_AFTER_FAILURE, entry[1])
                return cast("T | None", entry[1])
            timeline: T | None = None
            if data is not None:
                try:
                    timeline = parse(data)
                except ValueError:
                    timeline = cast("T | None", entry[1]) if entry else None  # a torn read never replaces a good copy
            self._remember(name, began, timeline)
            return timeline

    def rendered(self, key: tuple[str, ...], timeline: Timeline, render: Callable[[], str]) -> tuple[bytes, bool]:
        """(UTF-8 text, cache hit) for a manifest of a timeline version: rendered and encoded
        once per version, then the same bytes for every request.  The version is the
        generation and the time of the write (or of the endpoint's own merge): a program
        deleted and made again under the same locator starts counting generations from 1 again."""
        version = (timeline.generation, timeline.updated)
        cached = self._rendered.get(key, version)
        if cached is not None:
            return cached, True
        text = render().encode()
        self._rendered.put(key, version, text)
        return text, False

"""Timelines as the endpoint sees them: read from storage, shared briefly between requests.

Many players ask for the same manifests at once; each timeline is read at most every
``ttl`` seconds per process, and rendered manifests are kept per timeline generation, so a
burst of requests costs one storage read and one render.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar, cast

from kubecast.media.timeline import Timeline
from kubecast.storage import ProgramRecord, Store, layout

T = TypeVar("T")


class TimelineCache:
    def __init__(self, store: Store, *, ttl: float = 0.25):
        self.store = store
        self.ttl = ttl
        self._entries: dict[str, tuple[float, object]] = {}  # name -> (read at, parsed object or None)
        self._locks: dict[str, asyncio.Lock] = {}
        self._rendered: dict[tuple[str, ...], tuple[tuple[object, ...], str]] = {}

    async def program(self, locator: str) -> ProgramRecord | None:
        return await self._read(f"locator:{locator}", layout.locator_key(locator), ProgramRecord.from_json)

    async def get_program(self, locator: str) -> Timeline | None:
        """The recorded timeline of the program a locator names (None: no such program)."""
        record = await self.program(locator)
        if record is None:
            return None
        return await self._read(
            f"program:{locator}", layout.program_timeline_key(record.channel, record.name), Timeline.from_json
        )

    async def get(self, channel: str) -> Timeline | None:
        return await self._read(channel, layout.timeline_key(channel), Timeline.from_json)

    async def _read(self, name: str, key: str, parse: Callable[[bytes], T]) -> T | None:
        channel = name
        entry = self._entries.get(channel)
        if entry and time.monotonic() - entry[0] < self.ttl:
            return cast("T | None", entry[1])  # a name's entry is made by its own kind's parse
        lock = self._locks.setdefault(channel, asyncio.Lock())
        async with lock:
            entry = self._entries.get(channel)
            if entry and time.monotonic() - entry[0] < self.ttl:
                return cast("T | None", entry[1])
            data = await self.store.get(key)
            timeline: T | None = None
            if data is not None:
                try:
                    timeline = parse(data)
                except ValueError:
                    timeline = cast("T | None", entry[1]) if entry else None  # a torn read never replaces a good copy
            self._entries[channel] = (time.monotonic(), timeline)
            return timeline

    def rendered(self, key: tuple[str, ...], timeline: Timeline, render: Callable[[], str]) -> tuple[str, bool]:
        """(text, cache hit) for a manifest of a timeline version.  The version is the
        generation and the time of the write: a program deleted and made again under the same
        locator starts counting generations from 1 again."""
        version = (timeline.generation, timeline.updated)
        cached = self._rendered.get(key)
        if cached and cached[0] == version:
            return cached[1], True
        text = render()
        self._rendered[key] = (version, text)
        return text, False

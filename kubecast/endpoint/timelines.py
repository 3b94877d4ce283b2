"""Timelines as the endpoint sees them: read from storage, shared briefly between requests.

Many players ask for the same manifests at once; each timeline is read at most every
``ttl`` seconds per process, and rendered manifests are kept per timeline generation, so a
burst of requests costs one storage read and one render.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from kubecast.media.timeline import Timeline
from kubecast.storage import Store, layout


class TimelineCache:
    def __init__(self, store: Store, *, ttl: float = 0.25):
        self.store = store
        self.ttl = ttl
        self._entries: dict[str, tuple[float, Timeline | None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._rendered: dict[tuple, tuple[int, str]] = {}

    async def get(self, channel: str) -> Timeline | None:
        entry = self._entries.get(channel)
        if entry and time.monotonic() - entry[0] < self.ttl:
            return entry[1]
        lock = self._locks.setdefault(channel, asyncio.Lock())
        async with lock:
            entry = self._entries.get(channel)
            if entry and time.monotonic() - entry[0] < self.ttl:
                return entry[1]
            data = await self.store.get(layout.timeline_key(channel))
            timeline = None
            if data is not None:
                try:
                    timeline = Timeline.from_json(data)
                except ValueError:
                    timeline = entry[1] if entry else None  # a torn read never replaces a good copy
            self._entries[channel] = (time.monotonic(), timeline)
            return timeline

    def rendered(self, key: tuple, generation: int, render: Callable[[], str]) -> tuple[str, bool]:
        """(text, cache hit) for a manifest of a timeline generation."""
        cached = self._rendered.get(key)
        if cached and cached[0] == generation:
            return cached[1], True
        text = render()
        self._rendered[key] = (generation, text)
        return text, False

"""Immutable objects as the endpoint serves them: from memory while they are hot.

Every viewer of a live channel asks for the few segments at the live edge, and a CDN that
misses asks for each of them again from every edge at once.  Media objects never change once
stored (and a remuxed TS segment is a pure function of them), so one storage read (or one
remux) per object per replica is enough: a least-recently-used map bounded in bytes keeps the
recent ones, and concurrent misses of one key wait on a single load (request collapsing)
rather than each going to S3.  What is not found is never remembered: an object a request
could not find may be stored a moment later.

Each object's ETag is derived from its bytes, so every replica and every backend (a local
folder, S3, GCS, Azure) gives the same object the same validator, as a CDN in front of
several replicas expects.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

from . import metrics


@dataclass(frozen=True)
class CachedObject:
    data: bytes
    etag: str


def etag_of(data: bytes) -> str:
    return '"' + hashlib.blake2b(data, digest_size=12).hexdigest() + '"'


class ObjectCache:
    """Least-recently-used bytes, at most ``max_bytes`` of them; an object larger than a
    quarter of that is served but not kept, so that one huge object cannot empty the cache."""

    def __init__(self, *, max_bytes: int):
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[Hashable, CachedObject] = OrderedDict()
        self._loading: dict[Hashable, asyncio.Future[CachedObject | None]] = {}

    async def get(self, key: Hashable, load: Callable[[], Awaitable[bytes | None]]) -> CachedObject | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            metrics.OBJECT_CACHE.labels("hit").inc()
            return entry
        task = self._loading.get(key)
        if task is None:
            metrics.OBJECT_CACHE.labels("miss").inc()
            task = asyncio.ensure_future(self._load(key, load))
            self._loading[key] = task
            task.add_done_callback(lambda _done: self._loading.pop(key, None))
        else:
            metrics.OBJECT_CACHE.labels("collapsed").inc()
        # shield: one viewer that hangs up must not cancel the load the others wait on
        return await asyncio.shield(task)

    async def _load(self, key: Hashable, load: Callable[[], Awaitable[bytes | None]]) -> CachedObject | None:
        data = await load()
        if data is None:
            return None
        entry = CachedObject(data, etag_of(data))
        if len(data) <= self.max_bytes // 4:
            self._entries[key] = entry
            self.size += len(data)
            while self.size > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self.size -= len(evicted.data)
            metrics.OBJECT_CACHE_BYTES.set(self.size)
        return entry

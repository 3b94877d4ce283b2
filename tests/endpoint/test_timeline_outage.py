"""The endpoint while storage is away: it answers with the last timeline it read, quickly, and
asks storage again after a pause rather than on every request."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY
from timeline_fixtures import ladder_timeline

from kubecast.endpoint import app as endpoint_app
from kubecast.endpoint import timelines
from kubecast.endpoint.app import make_app
from kubecast.endpoint.timelines import TimelineCache
from kubecast.outage import Outage
from kubecast.storage import Store, layout


class AwayStore(Store):
    """A memory store whose reads fail (``mode="fail"``) or hang (``mode="hang"``) while away."""

    def __init__(self) -> None:
        super().__init__("memory://")
        self.mode: str | None = None
        self.reads = 0

    async def get(self, key: str) -> bytes | None:
        self.reads += 1
        if self.mode == "fail":
            raise ConnectionError("storage unreachable (test)")
        if self.mode == "hang":
            await asyncio.sleep(3600)
        return await super().get(key)


def stale_reads() -> float:
    return REGISTRY.get_sample_value("kubecast_endpoint_stale_timeline_reads_total") or 0.0


@pytest.mark.parametrize("mode", ["fail", "hang"])
async def test_the_last_timeline_read_is_served_while_storage_is_away(mode, monkeypatch):
    monkeypatch.setattr(timelines, "READ_DEADLINE", 0.2)
    store = AwayStore()
    await store.put(layout.timeline_key("news"), ladder_timeline().to_json())
    cache = TimelineCache(store, ttl=0.01)
    first = await cache.get("news")
    assert first is not None and first.generation == 3
    before = stale_reads()
    store.mode = mode
    await asyncio.sleep(0.02)
    started = time.monotonic()
    again = await cache.get("news")
    assert again == first
    assert time.monotonic() - started < 1.0, "a player must not wait on storage that does not answer"
    assert stale_reads() == before + 1
    reads = store.reads
    for _ in range(20):  # requests right after a failure do not go to storage again
        assert await cache.get("news") == first
    assert store.reads == reads
    store.mode = None
    await asyncio.sleep(timelines.RETRY_AFTER_FAILURE + 0.05)
    newer = ladder_timeline()
    newer.generation = 4
    await store.put(layout.timeline_key("news"), newer.to_json())
    assert (await cache.get("news")).generation == 4  # storage is back: the new copy is read


async def test_a_timeline_never_read_is_not_invented_while_storage_is_away():
    store = AwayStore()
    store.mode = "fail"
    with pytest.raises(ConnectionError):
        await TimelineCache(store).get("news")


async def test_segment_requests_failing_while_storage_is_away_log_one_traceback_per_pause(caplog, monkeypatch):
    """Every viewer's every request fails while storage is away: each is a 503 with Retry-After,
    but only the first gives a traceback; the next one after the pause says how many were left out."""
    now = [0.0]  # the throttle's own clock, so that a slow machine cannot pass the pause in mid-burst
    failures = Outage(every=10.0, clock=lambda: now[0])
    monkeypatch.setattr(endpoint_app, "_failures", failures)
    store = AwayStore()
    await store.put(layout.timeline_key("news"), ladder_timeline().to_json())
    async with TestClient(TestServer(make_app(store))) as client:
        playlist = await client.get("/live/news/index.m3u8")
        assert playlist.status == 200
        store.mode = "fail"
        caplog.clear()
        for _ in range(25):
            response = await client.get("/live/news/v720/12.m4s")
            assert response.status == 503 and response.headers["Retry-After"] == "1"
        tracebacks = [r for r in caplog.records if r.exc_info and r.getMessage().startswith("request ")]
        assert len(tracebacks) == 1, [r.getMessage() for r in tracebacks]
        now[0] += 10.5
        assert (await client.get("/live/news/v720/12.m4s")).status == 503
        tracebacks = [r for r in caplog.records if r.exc_info and r.getMessage().startswith("request ")]
        assert len(tracebacks) == 2 and "24 more failures not shown" in tracebacks[1].getMessage()


class LateAnswerStore(Store):
    """A memory store that reads at once but hands the first answer over ``delay`` seconds later,
    as a busy event loop does to a read that storage answered quickly."""

    def __init__(self, delay: float) -> None:
        super().__init__("memory://")
        self.delay = delay

    async def get(self, key: str) -> bytes | None:
        data = await super().get(key)
        delay, self.delay = self.delay, 0.0
        await asyncio.sleep(delay)
        return data


@pytest.mark.parametrize("packager", ["writing", "hung"])
async def test_a_read_answered_late_is_as_old_as_when_it_began(packager):
    """Two replicas behind a balancer: a player's next reload may land on the replica whose last
    read began before the packager's write.  Served as fresh for ``ttl`` after it finally returned,
    that read would step the player's playlist back; counted from when it began, it is read again."""
    store = LateAnswerStore(delay=0.3)
    await store.put(layout.timeline_key("news"), ladder_timeline().to_json())
    written = ladder_timeline().updated
    # "hung": the stored timeline is old, so the endpoint merges the encoders' progress onto it.
    cache = TimelineCache(
        store, ttl=0.1, clock=lambda: written if packager == "writing" else written + timedelta(hours=1)
    )
    reading = asyncio.create_task(cache.get("news"))
    await asyncio.sleep(0.05)
    newer = ladder_timeline()
    newer.generation = 4
    await store.put(layout.timeline_key("news"), newer.to_json())  # written while the old answer was on its way
    assert (await reading).generation == 3
    assert (await cache.get("news")).generation == 4

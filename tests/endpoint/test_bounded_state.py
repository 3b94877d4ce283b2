"""What the endpoint keeps per name stays bounded however many names strangers make up: every
channel name, program locator and Host header comes from a request, and an endpoint that kept
something for each would grow until it is killed."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient, TestServer
from timeline_fixtures import ladder_timeline

from kubecast.endpoint import timelines
from kubecast.endpoint.app import make_app
from kubecast.endpoint.live import TIMELINES
from kubecast.endpoint.timelines import KeyedLocks, RenderedManifests, TimelineCache
from kubecast.storage import Store, layout


async def test_names_not_found_are_remembered_only_among_the_latest(monkeypatch):
    monkeypatch.setattr(timelines, "MISSES_KEPT", 50)
    store = Store("memory://")
    await store.put(layout.timeline_key("news"), ladder_timeline().to_json())
    cache = TimelineCache(store, ttl=60)
    assert await cache.get("news") is not None
    for n in range(2000):
        assert await cache.get(f"made-up-{n}") is None
        assert await cache.program(f"locator-{n}") is None
    assert len(cache._misses) == 50
    assert set(cache._entries) == {"news"}
    assert len(cache._locks) == 0
    assert "locator:locator-1999" in cache._misses  # the latest misses are still answered from memory
    reads = store.get
    monkeypatch.setattr(store, "get", lambda key: (_ for _ in ()).throw(AssertionError(f"read {key}")))
    assert await cache.program("locator-1999") is None
    monkeypatch.setattr(store, "get", reads)


async def test_a_name_found_after_a_miss_is_kept_and_one_gone_is_forgotten():
    store = Store("memory://")
    cache = TimelineCache(store, ttl=0)
    assert await cache.get("news") is None
    await store.put(layout.timeline_key("news"), ladder_timeline().to_json())
    assert await cache.get("news") is not None
    assert "news" in cache._entries and "news" not in cache._misses
    await store.delete(layout.timeline_key("news"))
    assert await cache.get("news") is None
    assert "news" not in cache._entries and "news" in cache._misses


async def test_a_lock_lives_only_while_a_read_holds_or_waits_for_it():
    locks = KeyedLocks()
    order = []

    async def reader(name: str, delay: float) -> None:
        async with locks.hold(name):
            order.append(name)
            await asyncio.sleep(delay)

    first = asyncio.create_task(reader("a", 0.05))
    await asyncio.sleep(0)
    second = asyncio.create_task(reader("a", 0))
    await asyncio.sleep(0.01)
    assert len(locks) == 1 and order == ["a"]  # the second waits on the first's lock
    await asyncio.gather(first, second)
    assert len(locks) == 0 and order == ["a", "a"]
    for n in range(1000):
        async with locks.hold(f"name-{n}"):
            pass
    assert len(locks) == 0


def test_rendered_manifests_stay_within_their_size():
    rendered = RenderedManifests(max_bytes=10_000)
    for n in range(1000):
        rendered.put(("news", "hls", f"host-{n}"), (1,), b"x" * 900)
    assert rendered.size <= 10_000 and len(rendered) == 11
    assert rendered.get(("news", "hls", "host-999"), (1,)) == b"x" * 900
    assert rendered.get(("news", "hls", "host-999"), (2,)) is None  # another version of the timeline
    assert rendered.get(("news", "hls", "host-0"), (1,)) is None


async def test_made_up_host_headers_and_names_do_not_grow_the_endpoint(monkeypatch):
    monkeypatch.setattr(timelines, "RENDERED_BYTES", 20_000)
    monkeypatch.setattr(timelines, "MISSES_KEPT", 20)
    store = Store("memory://")
    await store.put(layout.timeline_key("news"), ladder_timeline().to_json())
    app = make_app(store)
    async with TestClient(TestServer(app)) as client:
        cache = app[TIMELINES]
        for n in range(300):
            response = await client.get("/live/news/v720/index.m3u8", headers={"Host": f"cdn-{n}.example"})
            assert response.status == 200
            response = await client.get(f"/live/made-up-{n}/index.m3u8")
            assert response.status == 404
            response = await client.get(f"/p{n}/manifest.m3u8")
            assert response.status == 404
        assert cache._rendered.size <= 20_000
        assert len(cache._misses) <= 20
        assert len(cache._locks) == 0

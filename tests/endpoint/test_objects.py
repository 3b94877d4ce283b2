"""The endpoint's object cache: one load per object however many ask, bounded in bytes."""

import asyncio

from kubecast.endpoint.objects import ObjectCache, etag_of


class CountingLoader:
    def __init__(self, data: bytes | None, *, gate: asyncio.Event | None = None):
        self.data, self.gate, self.calls = data, gate, 0

    async def __call__(self):
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        return self.data


async def test_concurrent_misses_share_one_load():
    gate = asyncio.Event()
    load = CountingLoader(b"segment", gate=gate)
    cache = ObjectCache(max_bytes=1 << 20)
    waiters = [asyncio.ensure_future(cache.get("k", load)) for _ in range(20)]
    await asyncio.sleep(0)
    gate.set()
    found = await asyncio.gather(*waiters)
    assert load.calls == 1 and {f.data for f in found} == {b"segment"}
    assert (await cache.get("k", load)).etag == etag_of(b"segment") and load.calls == 1, "then served from memory"


async def test_a_cancelled_viewer_does_not_cancel_the_others_load():
    gate = asyncio.Event()
    load = CountingLoader(b"x", gate=gate)
    cache = ObjectCache(max_bytes=1 << 20)
    first, second = asyncio.ensure_future(cache.get("k", load)), asyncio.ensure_future(cache.get("k", load))
    await asyncio.sleep(0)
    first.cancel()
    gate.set()
    assert (await second).data == b"x" and load.calls == 1


async def test_not_found_is_not_remembered():
    cache = ObjectCache(max_bytes=1 << 20)
    assert await cache.get("k", CountingLoader(None)) is None
    assert (await cache.get("k", CountingLoader(b"stored since"))).data == b"stored since"


async def test_least_recently_used_objects_go_first_and_the_bound_holds():
    cache = ObjectCache(max_bytes=1000)
    for key in "abc":
        await cache.get(key, CountingLoader(bytes(250)))
    await cache.get("a", CountingLoader(None))  # a hit: "a" is now the most recent
    await cache.get("d", CountingLoader(bytes(250)))
    await cache.get("e", CountingLoader(bytes(250)))
    assert cache.size <= 1000
    reload = CountingLoader(bytes(250))
    await cache.get("b", reload)
    assert reload.calls == 1, "b was the least recently used"
    kept = CountingLoader(None)
    assert await cache.get("a", kept) is not None and kept.calls == 0


async def test_an_object_over_a_quarter_of_the_bound_is_served_not_kept():
    cache = ObjectCache(max_bytes=1000)
    await cache.get("small", CountingLoader(bytes(100)))
    assert (await cache.get("huge", CountingLoader(bytes(600)))).data == bytes(600)
    assert cache.size == 100
    again = CountingLoader(bytes(600))
    await cache.get("huge", again)
    assert again.calls == 1


async def test_a_failed_load_reaches_every_waiter_and_is_retried_next_time():
    cache = ObjectCache(max_bytes=1000)

    async def broken():
        raise OSError("storage unreachable")

    for _ in range(2):
        try:
            await cache.get("k", broken)
        except OSError as error:
            assert "unreachable" in str(error)
        else:
            raise AssertionError("the error must reach the caller")
    assert (await cache.get("k", CountingLoader(b"back"))).data == b"back"

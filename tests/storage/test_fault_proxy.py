"""The storage client through the fault proxy in front of moto's S3: a throttling store is ridden
out by the client's own short retries; an outage is reported within seconds, not minutes."""

from __future__ import annotations

import asyncio
import time

import pytest
from faultproxy import FaultProxy

from kubecast.storage import Store


@pytest.fixture
def proxied(s3_endpoint, s3_store_url, monkeypatch):
    with FaultProxy(s3_endpoint, seed=1) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        yield proxy, Store(s3_store_url)


def test_requests_pass_through_unchanged(proxied):
    proxy, store = proxied
    store.put_sync("channels/c/a.m4s", b"\x00\x01" * 1000)
    assert store.get_sync("channels/c/a.m4s") == b"\x00\x01" * 1000
    assert [info.key for info in store.list_sync("channels/c")] == ["channels/c/a.m4s"]
    info = asyncio.run(store.head("channels/c/a.m4s"))
    assert info is not None and info.size == 2000
    assert store.put_new_sync("channels/c/clock.json", b"1") and not store.put_new_sync("channels/c/clock.json", b"2")
    assert proxy.counts.forwarded >= 5 and proxy.counts.failed == proxy.counts.reset == 0


def test_occasional_503s_are_retried_by_the_client(proxied):
    proxy, store = proxied
    proxy.failure_rate = 0.3
    for n in range(20):
        store.put_sync(f"channels/c/{n}.m4s", bytes([n]) * 100)
    assert all(store.get_sync(f"channels/c/{n}.m4s") == bytes([n]) * 100 for n in range(20))
    assert proxy.counts.failed > 5


def test_an_outage_fails_fast_and_ends(proxied):
    proxy, store = proxied
    store.put_sync("channels/c/before", b"x")
    proxy.outage(3)
    started = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017 - whatever the client raises for a reset connection
        store.put_sync("channels/c/during", b"x")
    assert time.monotonic() - started < 3, "one call must give up within seconds"
    assert proxy.counts.reset >= 1
    time.sleep(max(0.0, started + 3.2 - time.monotonic()))
    store.put_sync("channels/c/after", b"x")
    assert store.get_sync("channels/c/after") == b"x"


def test_added_latency_is_per_request(proxied):
    proxy, store = proxied
    proxy.latency = 0.3
    started = time.monotonic()
    store.put_sync("channels/c/slow", b"x")
    store.get_sync("channels/c/slow")
    assert time.monotonic() - started >= 0.6

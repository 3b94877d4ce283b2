"""An HTTP proxy in front of a storage server (moto's S3) whose faults a test switches on and off.

Every component reaches storage through it (``AWS_ENDPOINT_URL`` names the proxy), so a fault
hits encoders, packager and endpoint alike, on the real S3 wire protocol:

- ``outage(seconds)``: every request, on new and kept-alive connections, has its connection
  reset without an answer, as when the storage service is gone; with ``silent=True`` requests
  get no answer at all until the outage ends (then the reset), as when packets are dropped;
- ``latency``: seconds added before each request is forwarded;
- ``failure_rate``: the share of requests answered ``503 SlowDown`` (as S3 throttles), drawn
  from a seeded generator; the seed is printed, and ``KUBECAST_FAULT_SEED`` repeats it.

The proxy runs its own event loop in a thread; the counters say what it did.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from yarl import URL

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}
SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
)


@dataclass
class Counts:
    forwarded: int = 0
    reset: int = 0  # connections cut during an outage
    failed: int = 0  # answered 503


class FaultProxy:
    def __init__(self, target: str, *, seed: int | None = None, name: str = "storage faults"):
        self.target = target.rstrip("/")
        self.seed = seed if seed is not None else int(os.environ.get("KUBECAST_FAULT_SEED", random.randrange(1 << 30)))
        print(f"{name}: fault seed {self.seed} (KUBECAST_FAULT_SEED={self.seed} repeats this run)", flush=True)
        self.rng = random.Random(self.seed)
        self.latency = 0.0
        self.failure_rate = 0.0
        self.counts = Counts()
        self._down_until = 0.0
        self._silent = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def outage(self, seconds: float, *, silent: bool = False) -> None:
        """Cut storage off for ``seconds`` from now."""
        self._silent = silent
        self._down_until = time.monotonic() + seconds

    @property
    def down(self) -> bool:
        return time.monotonic() < self._down_until

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(
            auto_decompress=False, timeout=aiohttp.ClientTimeout(total=60), skip_auto_headers={"Content-Type"}
        )
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        if self.down:
            if self._silent:
                await asyncio.sleep(max(0.0, self._down_until - time.monotonic()))
            return self._reset(request)
        if self.latency:
            await asyncio.sleep(self.latency)
            if self.down:
                return self._reset(request)
        if self.failure_rate and self.rng.random() < self.failure_rate:
            self.counts.failed += 1
            await request.read()
            return web.Response(status=503, body=SLOW_DOWN, content_type="application/xml")
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        assert self._session is not None
        async with self._session.request(
            request.method,
            URL(f"{self.target}{request.raw_path}", encoded=True),  # the path and query exactly as signed
            headers=headers,
            data=body if body else None,
            allow_redirects=False,
        ) as upstream:
            data = await upstream.read()
            self.counts.forwarded += 1
            return web.Response(
                status=upstream.status,
                body=data,
                # Content-Length kept: a HEAD answer's is the object's size, which the client reads.
                headers={k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP - {"content-length"}},
            )

    def _reset(self, request: web.Request) -> web.StreamResponse:
        self.counts.reset += 1
        transport = request.transport
        if transport is not None:
            transport.abort()  # the client sees its connection reset; nothing is answered
        return web.Response(status=503)

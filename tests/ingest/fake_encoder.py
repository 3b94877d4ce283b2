"""An encoder's contribution port that only records what the ingest sends (for ingest tests)."""

from __future__ import annotations

import asyncio

from kubecast.media.contribution import parse_hello
from kubecast.media.flv import FlvReader


class FakeEncoder:
    def __init__(self):
        self.contributions: list[bytearray] = []
        self.ended = 0
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> tuple[str, int]:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[:2]

    async def _serve(self, reader, writer) -> None:
        received = bytearray()
        self.contributions.append(received)
        while data := await reader.read(65536):
            received += data
        self.ended += 1
        writer.close()

    def hello(self, index: int = -1):
        data = bytes(self.contributions[index])
        return parse_hello(data[: data.index(b"\n") + 1])

    def tags(self, index: int = -1) -> list:
        data = bytes(self.contributions[index])
        reader = FlvReader()
        reader.feed(data[data.index(b"\n") + 1 :])
        return list(reader.tags())

    async def wait(self, predicate, timeout: float = 10.0) -> None:
        async def poll():
            while not predicate():
                await asyncio.sleep(0.02)
        await asyncio.wait_for(poll(), timeout)

    async def stop(self) -> None:
        self.server.close()

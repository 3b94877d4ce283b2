"""An encoder's contribution port that only records what the ingest sends (for ingest tests)."""

from __future__ import annotations

import asyncio

from kubecast.media.contribution import CodecConfig, EndOfStream, Frame, RecordReader, parse_hello


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

    def all_records(self, index: int = -1) -> list[CodecConfig | Frame | EndOfStream]:
        data = bytes(self.contributions[index])
        end_of_hello = data.find(b"\n")
        if end_of_hello < 0:  # the connection is open but its hello line has not fully arrived yet
            return []
        reader = RecordReader()
        reader.feed(data[end_of_hello + 1 :])
        return list(reader.records())

    def records(self, index: int = -1) -> list[CodecConfig | Frame]:
        """The configurations and frames of a contribution (without its end-of-stream record)."""
        return [r for r in self.all_records(index) if not isinstance(r, EndOfStream)]

    def frames(self, index: int = -1, kind: int | None = None) -> list[Frame]:
        return [r for r in self.records(index) if isinstance(r, Frame) and (kind is None or r.kind == kind)]

    async def wait(self, predicate, timeout: float = 10.0) -> None:
        async def poll():
            while not predicate():
                await asyncio.sleep(0.02)

        await asyncio.wait_for(poll(), timeout)

    async def stop(self) -> None:
        self.server.close()

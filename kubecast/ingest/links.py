"""Forwarding a contribution to an encoder: one TCP link per encoder address.

A link never slows the publisher down: frames go into a bounded queue, and a link that falls
behind (its encoder is too slow or gone) is dropped and reconnected.  Every (re)connection
starts with the hello line, the FLV header and the latest metadata and sequence headers, so
the encoder can always decode what follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from kubecast.media.contribution import Hello
from kubecast.media.flv import FLV_HEADER, FlvTag

from . import metrics

log = logging.getLogger("kubecast.ingest")

QUEUE_TAGS = 3000  # ~30 s of a typical contribution: a longer stall is a dead encoder


class EncoderLink:
    def __init__(self, *, address: tuple[str, int], hello: Hello, headers: dict[str, FlvTag]):
        self.address = address
        self.hello = hello
        self.headers = headers  # shared with the session: the latest metadata and sequence headers
        self.queue: asyncio.Queue = asyncio.Queue(QUEUE_TAGS)  # FlvTag, _RECONNECT or None (end)
        self.task = asyncio.create_task(self._run(), name=f"link-{hello.channel}-{address[1]}")
        self.connected = False

    def send(self, tag: FlvTag) -> None:
        try:
            self.queue.put_nowait(tag)
        except asyncio.QueueFull:
            log.warning("encoder %s:%d of %s is not keeping up; dropping the link", *self.address, self.hello.channel)
            metrics.LINK_FAILURES.labels(self.hello.channel).inc()
            self._drain()
            self.queue.put_nowait(_RECONNECT)

    def _drain(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()

    async def close(self) -> None:
        """End the contribution on the encoder's side (EOF makes it flush its last segments).

        What is still queued goes first: the last frames complete the last segment."""
        try:
            self.queue.put_nowait(None)
        except asyncio.QueueFull:
            self._drain()
            self.queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self.task), 3)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            self.task.cancel()

    async def _run(self) -> None:
        delay = 0.2
        while True:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(*self.address), 5)
            except (OSError, asyncio.TimeoutError) as error:
                metrics.LINK_FAILURES.labels(self.hello.channel).inc()
                log.warning("cannot reach encoder %s:%d of %s (%s); retrying", *self.address, self.hello.channel, error)
                if await self._wait_or_stop(delay):
                    return
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.2
            self.connected = True
            try:
                writer.write(self.hello.encode() + FLV_HEADER + b"".join(tag.encode() for tag in self.headers.values()))
                while True:
                    tag = await self.queue.get()
                    if tag is None:
                        writer.write_eof()
                        await writer.drain()
                        return
                    if tag is _RECONNECT:
                        break
                    if writer.transport.is_closing() or reader.at_eof():
                        raise ConnectionError("the encoder closed the connection")
                    writer.write(tag.encode())
                    if writer.transport.get_write_buffer_size() > 1 << 20:
                        await writer.drain()
            except (OSError, ConnectionError) as error:
                metrics.LINK_FAILURES.labels(self.hello.channel).inc()
                log.warning("link to encoder %s:%d of %s broke (%s); reconnecting", *self.address, self.hello.channel, error)
            finally:
                self.connected = False
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

    async def _wait_or_stop(self, delay: float) -> bool:
        """Sleep between attempts; True when the publish ended meanwhile."""
        try:
            tag = await asyncio.wait_for(self.queue.get(), delay)
        except asyncio.TimeoutError:
            return False
        if tag is None:
            return True
        self._drain()  # frames queued while no encoder listened cannot be decoded later anyway
        return False


_RECONNECT = object()  # a queue item that makes the link reconnect

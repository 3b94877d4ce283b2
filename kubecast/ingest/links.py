"""Forwarding a contribution to an encoder: one TCP link per encoder address.

A link never slows the publisher down: frames go into a bounded queue, and a link that falls
behind (its encoder is too slow or gone) is dropped and reconnected.  Every (re)connection
starts with the hello line and the latest codec configuration of every track, so the encoder
can always decode what follows.  The end of a publish is an end-of-stream record, so the encoder
tells a contribution that ended from one whose link broke.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from kubecast.media.contribution import CodecConfig, Cue, EndOfStream, Frame, Hello, Kind, Metadata, encode_record

from . import metrics

log = logging.getLogger("kubecast.ingest")

QUEUE_RECORDS = 3000  # ~30 s of a typical contribution: a longer stall is a dead encoder


class _Reconnect:
    """A queue item that makes the link reconnect."""


_RECONNECT = _Reconnect()
_Item = CodecConfig | Frame | Cue | Metadata | _Reconnect | None  # None: the publish ended


class _Continue:
    """What ``_split_at_end`` returns for a batch of records only."""


CONTINUE = _Continue()


def _split_at_end(
    items: list[_Item],
) -> tuple[list[CodecConfig | Frame | Cue | Metadata], _Reconnect | _Continue | None, list[_Item]]:
    """The records up to the first end of the publish or reconnect, that item (``CONTINUE`` if
    there is none), and what was queued after it."""
    records: list[CodecConfig | Frame | Cue | Metadata] = []
    for index, item in enumerate(items):
        if item is None or isinstance(item, _Reconnect):
            return records, item, items[index + 1 :]
        records.append(item)
    return records, CONTINUE, []


class EncoderLink:
    def __init__(self, *, address: tuple[str, int], hello: Hello, headers: dict[tuple[Kind, int], CodecConfig]) -> None:
        self.address = address
        self.hello = hello
        self.headers = headers  # shared with the publication: the latest configuration of every track
        self.queue: asyncio.Queue[_Item] = asyncio.Queue(QUEUE_RECORDS)
        self.task = asyncio.create_task(self._run(), name=f"link-{hello.channel}-{address[1]}")
        self.connected = False
        self._carried: list[_Item] = []  # taken from the queue after a reconnect, not yet sent

    def send(self, record: CodecConfig | Frame | Cue | Metadata) -> None:
        try:
            self.queue.put_nowait(record)
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
                delay = min(delay * 2, 1.0)  # an encoder back from a restart is reached within a second
                continue
            delay = 0.2
            self.connected = True
            try:
                writer.write(self.hello.encode() + b"".join(encode_record(c) for c in self.headers.values()))
                while True:
                    # Everything queued goes out in one write: a publisher forwards several records
                    # at once (an MPEG-TS batch, a fragment's samples), and a wake-up and a send per
                    # record was a measurable part of the ingest's cost.
                    items, self._carried = self._carried or [await self.queue.get()], []
                    while not self.queue.empty():
                        items.append(self.queue.get_nowait())
                    records, end, self._carried = _split_at_end(items)
                    if records:
                        if writer.transport.is_closing() or reader.at_eof():
                            raise ConnectionError("the encoder closed the connection")
                        writer.write(b"".join([encode_record(record) for record in records]))
                    if end is None:
                        writer.write(encode_record(EndOfStream()))
                        writer.write_eof()
                        await writer.drain()
                        return
                    if isinstance(end, _Reconnect):
                        break
                    if writer.transport.get_write_buffer_size() > 1 << 20:
                        await writer.drain()
            except (OSError, ConnectionError) as error:
                metrics.LINK_FAILURES.labels(self.hello.channel).inc()
                log.warning(
                    "link to encoder %s:%d of %s broke (%s); reconnecting", *self.address, self.hello.channel, error
                )
            finally:
                self.connected = False
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

    async def _wait_or_stop(self, delay: float) -> bool:
        """Sleep the whole delay between attempts, however many frames arrive meanwhile (each
        arrival used to end the wait, so a gone encoder was retried and logged at the frame rate);
        True when the publish ended meanwhile. The frames are dropped: without those before them,
        the encoder could not decode them later anyway."""
        carried, self._carried = self._carried, []
        if any(item is None for item in carried):
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        while (remaining := deadline - loop.time()) > 0:
            try:
                item = await asyncio.wait_for(self.queue.get(), remaining)
            except asyncio.TimeoutError:
                return False
            if item is None:
                return True
        return False

"""The link from a publication to one encoder: records queued together go out in one write, in order."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from fake_encoder import FakeEncoder
from helpers import free_port

from kubecast.ingest import links, metrics
from kubecast.ingest.links import EncoderLink
from kubecast.media.contribution import CodecConfig, EndOfStream, Frame, Hello, Kind

HELLO = Hello(channel="cam", protocol="UDP", session="s1")
CONFIG = CodecConfig(Kind.VIDEO, 0, b"\x01avcC")


def frame(number: int) -> Frame:
    return Frame(Kind.VIDEO, 0, 90_000, number * 3000, 0, None, number == 0, number.to_bytes(4, "big"))


@pytest.fixture
async def encoder():
    fake = FakeEncoder()
    address = await fake.start()
    yield fake, address
    await fake.stop()


async def test_records_queued_at_once_arrive_in_order_then_the_end(encoder):
    fake, address = encoder
    link = EncoderLink(address=address, hello=HELLO, headers={(Kind.VIDEO, 0): CONFIG})
    for number in range(200):  # all queued before the link has even connected
        link.send(frame(number))
    await link.close()
    await fake.wait(lambda: fake.ended == 1)
    assert fake.all_records() == [CONFIG, *(frame(n) for n in range(200)), EndOfStream()]


async def test_a_link_that_falls_behind_starts_over_with_what_came_after(encoder, monkeypatch):
    """The queue overflows before the link connects: what was queued is dropped, the link
    reconnects, and the records sent after the overflow still reach the encoder, then the end."""
    fake, address = encoder
    monkeypatch.setattr(links, "QUEUE_RECORDS", 5)
    link = EncoderLink(address=address, hello=HELLO, headers={(Kind.VIDEO, 0): CONFIG})
    for number in range(8):  # the sixth overflows the queue
        link.send(frame(number))
    await link.close()
    await fake.wait(lambda: fake.ended == 2)
    assert fake.all_records(0) == [CONFIG], "the first connection is dropped with nothing sent"
    assert fake.all_records(1) == [CONFIG, frame(6), frame(7), EndOfStream()]


async def test_an_encoder_that_is_gone_is_retried_with_backoff_not_at_the_frame_rate():
    """Frames keep arriving while the encoder is unreachable: the link still waits 0.2, 0.4, 0.8 s
    then 1 s between attempts (each frame used to cut the wait short: an attempt and a log line per frame),
    and the end of the publish still ends the link at once."""
    hello = Hello(channel="gone-encoder", protocol="UDP", session="s1")
    failures = metrics.LINK_FAILURES.labels("gone-encoder")
    before = failures._value.get()
    link = EncoderLink(address=("127.0.0.1", free_port()), hello=hello, headers={(Kind.VIDEO, 0): CONFIG})
    loop = asyncio.get_running_loop()
    sending = loop.time()
    for number in range(120):  # 1.2 s of frames at 100 per second
        link.send(frame(number))
        await asyncio.sleep(0.01)
    attempts, elapsed = failures._value.get() - before, loop.time() - sending
    backoff = list(itertools.accumulate(min(0.2 * 2**n, 1.0) for n in range(60)))
    allowed = 1 + sum(at <= elapsed for at in backoff)  # attempts at 0, 0.2, 0.6, 1.4, 2.4 ... s
    assert 2 <= attempts <= allowed, f"{attempts} attempts in {elapsed:.1f} s"
    started = loop.time()
    await link.close()
    assert link.task.done() and loop.time() - started < 1.0

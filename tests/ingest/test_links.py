"""The link from a publication to one encoder: records queued together go out in one write, in order."""

from __future__ import annotations

import pytest
from fake_encoder import FakeEncoder

from kubecast.ingest import links
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

"""The RTMP pieces without sockets: AMF0, handshake, chunk stream, session state machine."""

from __future__ import annotations

import os
import struct
from datetime import datetime, timezone

import pytest

from kubecast.ingest.rtmp import amf0, chunks
from kubecast.ingest.rtmp.handshake import HANDSHAKE_SIZE, SERVER_KEY, client_c1, find_client_digest, server_response
from kubecast.ingest.rtmp.session import Media, Phase, ProtocolError, PublishRequest, RtmpSession, Unpublished

# -- AMF0 --------------------------------------------------------------------------------------


def test_amf0_round_trip():
    values = [
        "connect",
        1,
        2.5,
        True,
        None,
        amf0.UNDEFINED,
        {"app": "live", "nested": {"x": [1, "two"]}},
        amf0.EcmaArray(width=1280, height=720),
        "é" * 70000,
        datetime(2026, 1, 1, tzinfo=timezone.utc),
    ]
    decoded = amf0.decode_all(amf0.encode_all(*values))
    assert decoded == values
    assert isinstance(decoded[7], amf0.EcmaArray)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x02\x00\x10abc", "truncated"),
        (b"\x00\x00\x00", "truncated"),
        (b"\x11", "unsupported AMF0 type marker 0x11"),
        (b"\x03\x00\x01a", "truncated"),
        (b"\x0a\xff\xff\xff\xff", "longer than its message"),
        (b"\x02\x00\x02\xff\xfe", "not UTF-8"),
        (b"\x0b" + struct.pack(">dh", 1e300, 0), "out of range"),  # found by bench/fuzz.py: was an OverflowError
        (b"\x0b" + struct.pack(">dh", float("nan"), 0), "out of range"),
    ],
)
def test_amf0_bad_input(data, message):
    with pytest.raises(amf0.AmfError, match=message):
        amf0.decode_all(data)


def test_amf0_nesting_is_bounded():
    with pytest.raises(amf0.AmfError, match="too deep"):
        amf0.decode_all(b"\x0a\x00\x00\x00\x01" * 40 + b"\x05")


# -- handshake ---------------------------------------------------------------------------------


@pytest.mark.parametrize("schema", [0, 1])
def test_digest_handshake_is_recognised_and_answered(schema):
    c1 = client_c1(digest=True, schema=schema)
    found = find_client_digest(c1)
    assert found is not None and found[0] == schema
    response = server_response(b"\x03" + c1)
    assert len(response) == 1 + 2 * HANDSHAKE_SIZE and response[0] == 3
    import hashlib
    import hmac

    s2 = response[1 + HANDSHAKE_SIZE :]
    key = hmac.new(SERVER_KEY, found[1], hashlib.sha256).digest()
    assert s2[-32:] == hmac.new(key, s2[:-32], hashlib.sha256).digest(), "S2 is signed with the client's digest"


def test_simple_handshake_echoes_c1():
    c1 = client_c1(digest=False)
    assert find_client_digest(c1) is None
    assert server_response(b"\x03" + c1)[1 + HANDSHAKE_SIZE :] == c1


# -- chunk stream ------------------------------------------------------------------------------


def chunk(fmt: int, csid: int, header: bytes, payload: bytes) -> bytes:
    return bytes([(fmt << 6) | csid]) + header + payload


def test_messages_across_chunks_with_every_header_type():
    reader = chunks.ChunkReader()
    body = bytes(range(200))
    data = chunk(
        0, 4, (1000).to_bytes(3, "big") + (200).to_bytes(3, "big") + bytes([9]) + struct.pack("<I", 1), body[:128]
    )
    data += chunk(3, 4, b"", body[128:])  # continuation
    data += chunk(1, 4, (33).to_bytes(3, "big") + (3).to_bytes(3, "big") + bytes([8]), b"abc")  # new message, delta
    data += chunk(2, 4, (40).to_bytes(3, "big"), b"def")  # same length and type, new delta
    data += chunk(3, 4, b"", b"ghi")  # type 3 starting a message repeats the delta
    messages = []
    for byte in data:  # arrival byte by byte must not matter
        messages += reader.feed(bytes([byte]))
    assert [(m.type, m.timestamp, m.body) for m in messages] == [
        (9, 1000, body),
        (8, 1033, b"abc"),
        (8, 1073, b"def"),
        (8, 1113, b"ghi"),
    ]


def test_extended_timestamps_and_two_byte_chunk_stream_ids():
    reader = chunks.ChunkReader()
    message = chunks.Message(9, 1, 0x01234567, b"x" * 300)
    data = chunks.encode_message(message, chunk_size=128, csid=6)
    assert reader.feed(data) == [message]
    header = bytes([0x01, 0x10, 0x00]) + b"\x00\x00\x05" + b"\x00\x00\x02" + bytes([8]) + b"\x00" * 4 + b"hi"
    assert reader.feed(header)[0].body == b"hi"


def test_set_chunk_size_applies_to_the_next_chunk():
    reader = chunks.ChunkReader()
    data = chunks.encode_message(chunks.Message(1, 0, 0, struct.pack(">I", 4096)), chunk_size=128, csid=2)
    data += chunks.encode_message(chunks.Message(9, 1, 0, b"y" * 3000), chunk_size=4096, csid=6)
    messages = reader.feed(data)
    assert reader.chunk_size == 4096 and messages[-1].body == b"y" * 3000


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            chunks.encode_message(chunks.Message(1, 0, 0, struct.pack(">I", 0)), chunk_size=128, csid=2),
            "absurd chunk size 0",
        ),
        (
            chunks.encode_message(chunks.Message(1, 0, 0, struct.pack(">I", 0x7FFFFFFF)), chunk_size=128, csid=2),
            "absurd chunk size",
        ),
        (chunk(1, 5, b"\x00" * 7, b""), "starts with a type 1 header"),
        (chunk(0, 5, b"\x00\x00\x00" + (9 * 1024 * 1024).to_bytes(3, "big") + b"\x09" + b"\x00" * 4, b""), "exceeds"),
    ],
)
def test_chunk_stream_violations(data, message):
    with pytest.raises(chunks.ChunkError, match=message):
        chunks.ChunkReader().feed(data)


def test_unfinished_messages_are_bounded_over_all_chunk_streams():
    """Each chunk stream may hold one unfinished message of up to 8 MiB; together they may not
    hold more than two such (64 of them would be 512 MiB for one connection)."""
    size = 4 * 1024 * 1024
    data = chunks.encode_message(chunks.Message(1, 0, 0, struct.pack(">I", size)), chunk_size=128, csid=2)
    first_chunks = [
        chunks.encode_message(chunks.Message(9, 1, 0, b"v" * 2 * size), chunk_size=size, csid=csid)[: 12 + size]
        for csid in range(4, 9)
    ]
    reader = chunks.ChunkReader()
    reader.feed(data + b"".join(first_chunks[:4]))  # 16 MiB held: the limit
    with pytest.raises(chunks.ChunkError, match="unfinished messages"):
        reader.feed(first_chunks[4])
    whole = chunks.ChunkReader()  # finished messages release what they held: 24 MiB in 8 MiB messages pass
    whole.feed(data)
    frame = chunks.encode_message(chunks.Message(9, 1, 0, b"v" * 2 * size), chunk_size=size, csid=6)
    assert [len(m.body) for m in whole.feed(frame + frame + frame)] == [2 * size] * 3


def test_truncated_chunk_waits_for_more():
    data = chunks.encode_message(chunks.Message(9, 1, 0, b"z" * 100), chunk_size=128, csid=6)
    reader = chunks.ChunkReader()
    assert reader.feed(data[:-1]) == []
    assert reader.feed(data[-1:])[0].body == b"z" * 100


class _CountingBuffer(bytearray):
    """Counts the bytes each prefix deletion leaves behind: what a plain memmove trim copies
    (CPython's bytearray happens to advance a start pointer instead; other runtimes copy)."""

    moved = 0

    def __delitem__(self, key: int | slice) -> None:
        if isinstance(key, slice) and key.start is None and key.stop:
            self.moved += max(0, len(self) - key.stop)
        super().__delitem__(key)


def test_a_large_buffered_input_is_trimmed_once_per_feed_not_once_per_chunk():
    message = chunks.encode_message(chunks.Message(9, 1, 0, b"v" * 1000), chunk_size=128, csid=6)
    data = message * 1000  # 1 MB, 8000 chunks, arriving in one read
    reader = chunks.ChunkReader()
    reader._buffer = buffer = _CountingBuffer()  # the seam: the reader's only state that grows with the input
    tail = b"\x06"  # the first byte of a next chunk, left in the buffer
    assert len(reader.feed(data + tail)) == 1000
    # a trim per chunk would move about len(data)**2 / 2 / 129 bytes (4 GB); one per feed moves the tail
    assert buffer.moved == len(tail)
    assert bytes(buffer) == tail
    assert [m.body for m in reader.feed(message[1:])] == [b"v" * 1000]


# -- session -----------------------------------------------------------------------------------


def command(*values, stream_id: int = 0, chunk_size: int = 128) -> bytes:
    return chunks.encode_message(
        chunks.Message(chunks.COMMAND_AMF0, stream_id, 0, amf0.encode_all(*values)), chunk_size=chunk_size, csid=3
    )


def open_session() -> RtmpSession:
    session = RtmpSession()
    session.feed(b"\x03" + client_c1(digest=True))
    session.feed(os.urandom(HANDSHAKE_SIZE))
    assert session.phase is Phase.OPEN
    session.take_outgoing()
    return session


def replies(session: RtmpSession) -> list:
    reader = chunks.ChunkReader()
    out = []
    for message in reader.feed(session.take_outgoing()):
        if message.type == chunks.COMMAND_AMF0:
            out.append(amf0.decode_all(message.body))
    return out


def publish(session: RtmpSession, name: str = "news/key") -> list:
    session.feed(command("connect", 1, {"app": "live", "tcUrl": "rtmp://x/live"}))
    assert replies(session)[0][3]["code"] == "NetConnection.Connect.Success"
    session.feed(
        command("releaseStream", 2, None, name) + command("FCPublish", 3, None, name) + command("createStream", 4, None)
    )
    assert replies(session)[-1] == ["_result", 4, None, 1]
    return session.feed(command("publish", 5, None, name + "?token=1", "live", stream_id=1))


def test_publishing_session():
    session = open_session()
    events = publish(session)
    assert events == [PublishRequest(app="live", name="news/key")]
    session.accept()
    assert replies(session)[-1][3]["code"] == "NetStream.Publish.Start"
    video = chunks.encode_message(
        chunks.Message(chunks.VIDEO, 1, 40, b"\x17\x00\x00\x00\x00config"), chunk_size=128, csid=6
    )
    metadata = chunks.encode_message(
        chunks.Message(
            chunks.DATA_AMF0, 1, 0, amf0.encode_all("@setDataFrame", "onMetaData", amf0.EcmaArray(width=1280))
        ),
        chunk_size=128,
        csid=4,
    )
    events = session.feed(metadata + video)
    assert events[0] == Media(chunks.DATA_AMF0, 0, amf0.encode_all("onMetaData", amf0.EcmaArray(width=1280)))
    assert events[1] == Media(chunks.VIDEO, 40, b"\x17\x00\x00\x00\x00config")
    assert session.feed(command("FCUnpublish", 6, None, "key") + command("deleteStream", 7, None, 1)) == [Unpublished()]


def test_rejected_publish_tells_the_publisher_why():
    session = open_session()
    publish(session)
    session.reject("wrong stream key for channel news")
    status = replies(session)[-1][3]
    assert (status["level"], status["code"]) == ("error", "NetStream.Publish.BadName")
    assert session.phase is Phase.CLOSED


@pytest.mark.parametrize(
    ("feed", "message"),
    [
        (lambda s: s.feed(command("publish", 5, None, "key", "live")), "before connect"),
        (
            lambda s: s.feed(command("connect", 1, {"app": "live"}) + command("publish", 5, None, "key")),
            "before createStream",
        ),
        (
            lambda s: s.feed(
                chunks.encode_message(chunks.Message(chunks.VIDEO, 1, 0, b"\x17\x01"), chunk_size=128, csid=6)
            ),
            "media before a successful publish",
        ),
        (
            lambda s: s.feed(
                chunks.encode_message(
                    chunks.Message(chunks.COMMAND_AMF0, 0, 0, b"\x02\x00\x07connect\x42"), chunk_size=128, csid=3
                )
            ),
            "bad command",
        ),
        (
            lambda s: s.feed(
                chunks.encode_message(chunks.Message(chunks.COMMAND_AMF0, 0, 0, amf0.encode(5)), chunk_size=128, csid=3)
            ),
            "command without a name",
        ),
    ],
)
def test_protocol_violations_close_the_connection(feed, message):
    with pytest.raises(ProtocolError, match=message):
        feed(open_session())


def test_wrong_rtmp_version_and_garbage_handshake():
    with pytest.raises(ProtocolError, match="version 71"):
        RtmpSession().feed(b"GET / HTTP/1.1\r\n" + b"x" * 2000)


def test_acknowledgements_follow_the_window():
    session = open_session()
    session.feed(
        chunks.encode_message(
            chunks.Message(chunks.WINDOW_ACK_SIZE, 0, 0, struct.pack(">I", 1000)), chunk_size=128, csid=2
        )
    )
    publish(session)
    session.accept()
    session.take_outgoing()
    session.feed(
        chunks.encode_message(chunks.Message(chunks.AUDIO, 1, 0, b"\xaf\x01" + b"a" * 1200), chunk_size=128, csid=6)
    )
    acks = [m for m in chunks.ChunkReader().feed(session.take_outgoing()) if m.type == chunks.ACKNOWLEDGEMENT]
    assert acks and struct.unpack(">I", acks[0].body)[0] == session.reader.bytes_received

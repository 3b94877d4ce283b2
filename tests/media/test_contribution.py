"""The internal contribution's records: one writer, one reader, nothing lost between them."""

from __future__ import annotations

import random

import pytest

from kubecast.media.contribution import (
    MAX_SAMPLE,
    CodecConfig,
    Cue,
    EndOfStream,
    Frame,
    Hello,
    HelloError,
    Kind,
    RecordError,
    RecordReader,
    encode_record,
    language_tag,
    parse_hello,
)

RECORDS = [
    CodecConfig(Kind.VIDEO, 0, b"\x01\x64\x00\x1f avcC"),
    CodecConfig(Kind.AUDIO, 0, b"\x11\x90"),
    CodecConfig(Kind.AUDIO, 1, b"\x11\x90", "spa"),  # a second audio track, named by an MPEG-TS PMT
    CodecConfig(Kind.AUDIO, 2, b"\x11\x90", "pt-BR"),
    # Smooth's 10 MHz clock at an absolute time far beyond 32 bits, a negative composition offset.
    Frame(Kind.VIDEO, 2, 10_000_000, 17_000_000_000_000_000, -333_333, 333_334, True, b"\x00\x00\x00\x02\x65\x88"),
    Frame(Kind.VIDEO, 0, 15360, -1024, 1024, None, False, b"nal"),  # the time before 0 of a stream with B-frames
    Frame(Kind.AUDIO, 0, 90_000, 1920, 0, 1920, True, b""),
    Frame(Kind.VIDEO, 255, 1000, 2**40, 66, None, False, bytes(range(256)) * 40),
    Cue(90_000, 2**35 + 7, True, 30 * 90_000, 0xFFFFFFFF, b"\xfc\x30section"),
    Cue(1000, -40, False, None, 0, b""),  # an RTMP cue just before the first frame, without a section
    EndOfStream(),
]


def test_every_record_survives_the_wire_in_any_chunking():
    wire = b"".join(encode_record(record) for record in RECORDS)
    chunking = random.Random(17)
    for _ in range(20):
        reader, out, position = RecordReader(), [], 0
        while position < len(wire):
            size = chunking.choice((1, 2, 7, 29, 4096))
            reader.feed(wire[position : position + size])
            out += list(reader.records())
            position += size
        assert out == RECORDS and reader.pending == 0


def test_a_truncated_record_waits_for_the_rest():
    wire = encode_record(RECORDS[2])
    reader = RecordReader()
    reader.feed(wire[:-1])
    assert list(reader.records()) == [] and reader.pending == len(wire) - 1
    reader.feed(wire[-1:])
    assert list(reader.records()) == [RECORDS[2]]


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"FLV\x01\x05", "unknown record type 70"),
        (bytes([2, 9]) + bytes(30), "unknown track kind 9"),
        (bytes([1, 0, 0, 0, 0, 0, 0, 0]), "unknown track kind 0"),
        (bytes([2, 1, 0, 0]) + bytes(4) + bytes(22), "timescale 0"),
        (bytes([2, 1, 0, 0x80, 0, 0, 3, 0xE8]) + bytes(22), "unknown frame flags"),
        (bytes([2, 1, 0, 1, 0, 0, 3, 0xE8]) + bytes(16) + (MAX_SAMPLE + 1).to_bytes(4, "big"), "exceeds the limit"),
        (bytes([1, 1, 0, 0]) + (1 << 20).to_bytes(4, "big"), "exceeds the limit"),
        (bytes([1, 2, 1, 36]) + (2).to_bytes(4, "big"), "a language of 36 bytes"),
        (bytes([1, 2, 1, 3]) + (2).to_bytes(4, "big") + b'e"n\x11\x90', "malformed language"),
        (bytes([1, 2, 1, 3]) + (2).to_bytes(4, "big") + b"ENG\x11\x90", "malformed language"),
        (encode_record(EndOfStream()) + encode_record(RECORDS[0]), "after the end-of-stream"),
        (bytes([4, 0x04]) + bytes(24), "unknown cue flags"),
        (bytes([4, 0x01]) + bytes(24), "timescale 0"),
        (bytes([4, 0, 0, 0, 0, 1]) + bytes(8) + (5).to_bytes(4, "big") + bytes(6), "does not know"),
        (bytes([4, 0, 0, 0, 0, 1]) + bytes(16) + (4097).to_bytes(2, "big"), "exceeds the limit"),
    ],
)
def test_malformed_input_is_a_record_error(wire, message):
    reader = RecordReader()
    reader.feed(wire)
    with pytest.raises(RecordError, match=message):
        list(reader.records())


def test_hello_line():
    hello = Hello(channel="news", protocol="RTMP", session="s1")
    assert parse_hello(hello.encode()) == hello
    for bad in (
        b"GET / HTTP/1.1\r\n",
        b"KUBECAST-CONTRIBUTION 2 {nope}\n",
        b"KUBECAST-CONTRIBUTION 2 {\"x\": 1}\n",
        b"KUBECAST-CONTRIBUTION 2 {\"channel\": \"news\", \"protocol\": \"RTMP\", \"session\": \"s1\"}\n",
        b"KUBECAST-CONTRIBUTION 1 {\"channel\": \"news\", \"protocol\": \"RTMP\", \"session\": \"s1\"}\n",
    ):
        with pytest.raises(HelloError):
            parse_hello(bad)


@pytest.mark.parametrize(
    ("raw", "tag"),
    [
        (b"eng", "eng"),
        (b"SPA", "spa"),  # an ISO 639 code's case carries nothing
        (b"en-GB", "en-GB"),
        (b"und", None),  # undetermined: no language
        (b"\x00\x00\x00", None),
        (b'en"', None),  # would break out of the manifests' quotes
        (b"e", None),
        (b"\xe9ng", None),
        ("x" * 40, None),
    ],
)
def test_language_tags_are_what_manifests_can_quote(raw, tag):
    assert language_tag(raw) == tag


def test_a_config_with_a_language_that_is_no_tag_cannot_be_made():
    with pytest.raises(ValueError, match="not a language tag"):
        CodecConfig(Kind.AUDIO, 1, b"\x11\x90", 'en" URI="x')

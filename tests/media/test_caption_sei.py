"""CEA-608 in H.264 SEI (kubecast.media.captions) against what GStreamer writes and FFmpeg reads:
the parser finds in GStreamer's samples exactly the caption bytes FFmpeg's decoder finds, and the
SEI we write is read back by FFmpeg's decoder unchanged.  Malformed input is a ``CaptionError``."""

from __future__ import annotations

import random
import struct
from fractions import Fraction

import av
import pytest
from captioned import captioned_ts

from kubecast.media.captions import (
    CaptionError,
    _escape,
    _unescape,
    cc_data_of_sample,
    cc_data_of_sei,
    channels_of,
    insert_sei,
    sei_nal,
    valid_triplets,
)
from kubecast.media.h264 import to_length_prefixed


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return captioned_ts(tmp_path_factory.mktemp("captions"), seconds=5, size=(160, 90))


def decoded_triplets(path) -> list[bytes]:
    """FFmpeg's reading: each picture's A/53 side data, in presentation order."""
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            found = frame.side_data.get(av.sidedata.sidedata.Type.A53_CC)
            out.append(bytes(found) if found is not None else b"")
    return out


def samples(path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [to_length_prefixed(bytes(p)) for p in container.demux(video=0) if p.size]


def test_the_parser_reads_what_ffmpeg_reads_from_gstreamer_sei(source):
    # x264enc's ultrafast preset has no B-frames: decode order is presentation order
    ours = [cc_data_of_sample(sample) for sample in samples(source)]
    theirs = decoded_triplets(source)
    assert len(ours) == len(theirs) == 150
    assert ours == theirs
    text = valid_triplets(b"".join(ours))
    assert len(text) >= 3 * 15, "the pairs of the caption"
    assert channels_of(text) == {"CC1"}


def test_the_sei_we_write_is_what_ffmpeg_decodes(source):
    captions = [valid_triplets(t) for t in decoded_triplets(source)]
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 160, 90, "yuv420p"
    encoder.time_base, encoder.framerate = Fraction(1, 30), Fraction(30)
    encoder.options = {"preset": "ultrafast", "bf": "0", "a53cc": "0"}
    encoder.flags |= av.codec.context.Flags.global_header
    encoder.open()
    packets = []
    for index in range(len(captions)):
        frame = av.VideoFrame(160, 90, "yuv420p")
        frame.pts = index
        packets += encoder.encode(frame)
    packets += encoder.encode(None)
    decoder = av.CodecContext.create("h264", "r")
    decoder.extradata = encoder.extradata
    read_back = []
    for packet in packets:
        data = to_length_prefixed(bytes(packet))
        if captions[packet.pts]:
            data = insert_sei(data, sei_nal(captions[packet.pts]))
            assert cc_data_of_sample(data) == captions[packet.pts]
        annexb = b"".join(b"\x00\x00\x00\x01" + data[i + 4 : i + 4 + n] for i, n in _nal_lengths(data))
        for frame in decoder.decode(av.Packet(annexb)):
            found = frame.side_data.get(av.sidedata.sidedata.Type.A53_CC)
            read_back.append(bytes(found) if found is not None else b"")
    for frame in decoder.decode(None):
        found = frame.side_data.get(av.sidedata.sidedata.Type.A53_CC)
        read_back.append(bytes(found) if found is not None else b"")
    assert read_back == captions


def _nal_lengths(data: bytes) -> list[tuple[int, int]]:
    out, position = [], 0
    while position < len(data):
        (length,) = struct.unpack_from(">I", data, position)
        out.append((position, length))
        position += 4 + length
    return out


def test_emulation_prevention_round_trips():
    rng = random.Random(7)
    for _ in range(200):
        rbsp = bytes(rng.choice([0, 0, 0, 1, 2, 3, 0x80, 0xFF]) for _ in range(rng.randint(0, 40)))
        escaped = _escape(rbsp)
        assert b"\x00\x00\x00" not in escaped and b"\x00\x00\x01" not in escaped and b"\x00\x00\x02" not in escaped
        assert _unescape(escaped) == rbsp


def test_a_caption_pair_with_start_code_bytes_survives():
    triplets = bytes([0xFC, 0x00, 0x00, 0xFC, 0x01, 0x00])  # zero bytes as a hostile (or odd) source sends
    nal = sei_nal(triplets)
    assert b"\x00\x00\x01" not in nal and cc_data_of_sei(nal) == triplets


def test_channels_come_from_control_codes_with_odd_parity():
    assert channels_of(bytes([0xFC, 0x94, 0x2C])) == {"CC1"}  # erase displayed memory, field 1, channel 1
    assert channels_of(bytes([0xFC, 0x1C, 0x2C])) == {"CC2"}  # 0x1C: data channel 2
    assert channels_of(bytes([0xFC, 0x14, 0x2C])) == set(), "even parity: not read"
    assert channels_of(bytes([0xFD, 0x15, 0x2C])) == {"CC3"}
    assert channels_of(bytes([0xFD, 0x9D, 0x2C])) == {"CC4"}
    assert channels_of(bytes([0xF8, 0x94, 0x2C])) == set(), "not valid"
    assert channels_of(bytes([0xFC, 0xC8, 0x45])) == set(), "text names no channel"
    assert channels_of(bytes([0xFE, 0x94, 0x2C])) == set(), "DTVCC, not 608"


@pytest.mark.parametrize(
    "sample, reason",
    [
        (struct.pack(">I", 10) + b"\x06\x04", "NAL unit of 10 bytes"),
        (b"\x00\x00", "length cut short"),
        (struct.pack(">I", 0), "NAL unit of 0 bytes"),
        (struct.pack(">I", 3) + b"\x06\x04\xff", "cut short in its header"),
        (struct.pack(">I", 5) + b"\x06\x04\x20\xb5\x00", "SEI message of 32 bytes"),
    ],
)
def test_malformed_samples_are_refused_with_a_reason(sample, reason):
    with pytest.raises(CaptionError, match=reason):
        cc_data_of_sample(sample)


def test_a_cc_count_beyond_the_data_is_refused():
    nal = bytearray(sei_nal(bytes([0xFC, 0x94, 0x2C])))
    nal[nal.index(b"GA94") + 5] = 0x40 | 31  # cc_count 31, one triplet present
    with pytest.raises(CaptionError, match="31 triplets cut short"):
        cc_data_of_sei(bytes(nal))


def test_random_bytes_raise_nothing_but_caption_errors(source):
    rng = random.Random(19)
    real = [s for s in samples(source) if cc_data_of_sample(s)][:20]
    for _ in range(3000):
        data = bytearray(rng.choice(real))
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        try:
            channels_of(cc_data_of_sample(bytes(data[: rng.randint(0, len(data))])))
        except CaptionError:
            pass

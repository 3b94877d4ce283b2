"""Inputs the fuzzers (``bench/fuzz.py``) found that escaped a parser as something other than its
declared error, or never ended: each is now refused with that error, or counted as damage."""

from __future__ import annotations

import struct

import pytest
from ts_packets import AUDIO_PID, PMT_PID, VIDEO_PID, packet, pat, pes, pmt

from kubecast.media.fmp4 import parse_fragment, parse_init
from kubecast.media.h264 import H264Error, avcc_from_annexb
from kubecast.media.mp4 import Mp4Error, box, full_box
from kubecast.media.mpegts import TsDemuxer

# -- MPEG-TS -----------------------------------------------------------------------------------


def test_a_new_pmt_that_drops_a_pid_while_its_frame_arrives_neither_raises_nor_loses_the_frame() -> None:
    demuxer = TsDemuxer()
    frames = demuxer.feed(
        pat()
        + pmt([(0x1B, VIDEO_PID)], 0)
        + packet(VIDEO_PID, pes(9000, 9000, b"\x00\x00\x01\x09"), start=True, counter=0)
        + pmt([(0x0F, AUDIO_PID)], 1)
    )
    frames += demuxer.flush()  # was a KeyError: the frame's PID no longer listed
    assert [(frame.kind, frame.pid, frame.pts) for frame in frames] == [("video", VIDEO_PID, 9000)]


def test_damaged_tables_and_pes_headers_are_counted_not_raised() -> None:
    demuxer = TsDemuxer()
    short_pmt = packet(PMT_PID, b"\x00\x02\xb0\x09" + b"\x00" * 9, start=True, counter=0)  # length 9: no PCR PID field
    frames = demuxer.feed(pat() + short_pmt)  # was an IndexError
    assert frames == [] and demuxer.streams == {}
    frames = demuxer.feed(
        pmt([(0x1B, VIDEO_PID)], 1)
        + packet(VIDEO_PID, pes(9000, 9000, b"x", declared=4), start=True, counter=0)  # ends inside its header
        + packet(VIDEO_PID, pes(10 * 3600 * 90_000, 3000, b"y"), start=True, counter=1)
    )  # PTS hours after DTS
    frames += demuxer.flush()
    assert demuxer.stats.malformed_pes == 1, "the PES cut inside its own header was an IndexError"
    assert [(frame.pts, frame.dts) for frame in frames] == [(3000, 3000)], (
        "an absurd composition offset broke FLV's 24 bits"
    )


def test_parameter_sets_too_short_for_an_avcc_record_are_an_h264_error() -> None:
    with pytest.raises(H264Error, match="without SPS or PPS"):
        avcc_from_annexb(
            b"\x00\x00\x00\x01\x67\x64\x00\x00\x00\x01\x68\xee"
        )  # SPS without profile/level: was an IndexError


# -- fragmented MP4 ----------------------------------------------------------------------------


def trak(tkhd: bytes) -> bytes:
    stsd = full_box(
        b"stsd", 0, 0, struct.pack(">I", 1), box(b"mp4a", b"\x00" * 28, full_box(b"esds", 0, 0, b"\x03\x80"))
    )
    mdia = box(
        b"mdia",
        full_box(b"mdhd", 0, 0, struct.pack(">IIII", 0, 0, 48000, 0)),
        full_box(b"hdlr", 0, 0, b"\x00" * 4 + b"soun"),
        box(b"minf", box(b"stbl", stsd)),
    )
    return box(b"trak", tkhd, mdia)


@pytest.mark.parametrize(
    "tkhd", [box(b"tkhd", b"\x00"), full_box(b"tkhd", 0, 0, b"\x00" * 20)], ids=["truncated tkhd", "truncated esds"]
)
def test_an_init_segment_whose_boxes_end_early_is_an_mp4_error(tkhd: bytes) -> None:
    with pytest.raises(
        Mp4Error, match="truncated"
    ):  # was struct.error / IndexError: a 500 that left the push registered
        parse_init(box(b"moov", trak(tkhd)))


def test_a_trun_of_four_billion_empty_samples_is_refused_at_once() -> None:
    tfhd = full_box(b"tfhd", 0, 0x020000 | 0x08 | 0x10, struct.pack(">III", 1, 1, 0))  # default duration 1, size 0
    traf = box(
        b"traf",
        tfhd,
        full_box(b"tfdt", 1, 0, struct.pack(">Q", 0)),
        full_box(b"trun", 0, 0, struct.pack(">I", 0xFFFFFFFF)),
    )
    with pytest.raises(Mp4Error, match="4294967295 samples"):  # was a hang, then memory for four billion samples
        parse_fragment(box(b"moof", full_box(b"mfhd", 0, 0, struct.pack(">I", 1)), traf), box(b"mdat"))

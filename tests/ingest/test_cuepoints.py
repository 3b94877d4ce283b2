"""RTMP ``onCuePoint`` data messages into ad markers: YouTube's cue point, Adobe's cue point
carrying a SCTE-35 section (built by threefive), and Adobe's SpliceOut/SpliceIn; anything broken
is a ``CuePointError`` with a reason word, and cue points of no ad break are None."""

from __future__ import annotations

import base64
import zlib

import pytest
from helpers import threefive_splice_insert

from kubecast.ingest.cues import CueGate
from kubecast.ingest.rtmp import amf0
from kubecast.ingest.rtmp.cuepoints import PREFIX, CuePoint, CuePointError, parse_cue_point
from kubecast.ingest.rtmp.server import cue_record
from kubecast.ingest.rtmp.session import CueData
from kubecast.media.contribution import Cue
from kubecast.media.scte35 import parse_splice_info


def message(point: object) -> bytes:
    return amf0.encode_all("onCuePoint", point)


YOUTUBE = {
    "type": "com.youtube.cuepoint",
    "version": "0.1",
    "pre_roll_time_sec": 2.56,
    "cue_point_start": True,
    "break_duration_sec": 30,
    "splice_event_id": 0,
}


def test_youtubes_cue_point_starts_a_break_after_its_pre_roll():
    point = parse_cue_point(message(YOUTUBE), timestamp=10_000)
    assert point is not None and (point.time, point.out, point.duration, point.event_id) == (12_560, True, 30_000, 0)
    splice = parse_splice_info(point.section).splice
    assert splice is not None and (splice.out, splice.duration, splice.pts) == (True, 30 * 90_000, 12_560 * 90)
    back = parse_cue_point(message({**YOUTUBE, "cue_point_start": False, "pre_roll_time_sec": 0}), timestamp=20_000)
    assert back is not None and (back.time, back.out, back.duration) == (20_000, False, None)


def test_adobes_cue_point_carrying_a_threefive_section_is_timed_by_the_cue_points_time():
    out = threefive_splice_insert(event_id=4077, out=True, pts_seconds=1234.5, duration=6.0)
    point = {"name": "scte35", "time": 21.5, "type": "event", "parameters": {"scte35": out}}
    assert parse_cue_point(message(point), timestamp=20_000) == CuePoint(
        21_500, True, 6_000, 4077, base64.b64decode(out)
    ), "the section's PTS is on the sender's TS clock: the cue point's time places it"
    back = threefive_splice_insert(event_id=4077, out=False, pts_seconds=1240.5, duration=None)
    parsed = parse_cue_point(message({"name": "scte35", "scte35": back}), timestamp=27_000)
    assert parsed is not None and (parsed.time, parsed.out, parsed.event_id) == (27_000, False, 4077)


def test_adobes_splice_out_and_in_spelled_out():
    point = {
        "name": "ad",
        "time": 5.0,
        "type": "event",
        "parameters": {"type": "SpliceOut", "id": "a2", "duration": 15},
    }
    parsed = parse_cue_point(message(point), timestamp=4_000)
    assert parsed is not None and (parsed.time, parsed.out, parsed.duration) == (5_000, True, 15_000)
    assert parsed.event_id == zlib.crc32(b"a2")
    back = {"name": "ad", "parameters": {"type": "SpliceIn", "id": "a2"}}
    assert parse_cue_point(message(back), timestamp=20_000).event_id == parsed.event_id, "the in pairs with its out"
    unknown = {"name": "ad", "parameters": {"type": "SpliceOut", "id": 9, "duration": 0}}
    assert parse_cue_point(message(unknown), timestamp=0).duration is None, "0: the duration is not known"


SECTION = threefive_splice_insert(event_id=1, out=True, pts_seconds=1.0, duration=2.0)
_raw = bytearray(base64.b64decode(SECTION))
_raw[-1] ^= 0xFF
DAMAGED = base64.b64encode(_raw).decode()
SPLICE_NULL = "/DARAAAAAAAAAP/wAAAAAHpPv/8="  # SCTE 35 2023 section 14.1


@pytest.mark.parametrize(
    "point",
    [
        {"name": "chapter 2", "time": 12.0, "type": "navigation", "parameters": {}},
        {"name": "scte35", "parameters": {"scte35": SPLICE_NULL}},
    ],
    ids=["a chapter", "a splice_null heartbeat"],
)
def test_cue_points_of_no_ad_break_are_none(point):
    assert parse_cue_point(message(point), timestamp=0) is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (PREFIX + b"\x03\x00\x04time\x00\x40", "amf"),
        (PREFIX, "cuepoint"),
        (message("not an object"), "cuepoint"),
        (message({**YOUTUBE, "break_duration_sec": "thirty"}), "cuepoint"),
        (message({**YOUTUBE, "break_duration_sec": 0}), "cuepoint"),
        (message({**YOUTUBE, "pre_roll_time_sec": float("nan")}), "cuepoint"),
        (message({**YOUTUBE, "cue_point_start": 1}), "cuepoint"),
        (message({**YOUTUBE, "splice_event_id": 2**40}), "cuepoint"),
        (message({"name": "x", "time": -1.0, "parameters": {"type": "SpliceIn", "id": 1}}), "cuepoint"),
        (message({"name": "x", "time": 1e12, "parameters": {"type": "SpliceIn", "id": 1}}), "cuepoint"),
        (message({"name": "x", "parameters": {"type": "SpliceIn"}}), "cuepoint"),
        (message({"name": "x", "parameters": "SpliceOut"}), "cuepoint"),
        (message({"name": "scte35", "parameters": {"scte35": "not base64!"}}), "base64"),
        (message({"name": "scte35", "parameters": {"scte35": 5}}), "base64"),
        (message({"name": "scte35", "parameters": {"scte35": DAMAGED}}), "crc"),
        (message({"name": "scte35", "parameters": {"scte35": SECTION[:-3]}}), "base64"),
    ],
)
def test_broken_cue_points_are_refused_with_a_reason(body, reason):
    with pytest.raises(CuePointError) as refused:
        parse_cue_point(body, timestamp=0)
    assert refused.value.reason == reason


def test_the_gate_places_cue_points_on_the_frames_clock_and_refuses_untimely_ones():
    gate = CueGate()
    cue = cue_record(gate, CueData(10_000, message(YOUTUBE)), newest=10_033)
    assert isinstance(cue, Cue) and (cue.timescale, cue.splice_time, cue.duration) == (1000, 12_560, 30_000)
    assert cue_record(gate, CueData(0, message(YOUTUBE)), newest=None) is None
    late = {**YOUTUBE, "pre_roll_time_sec": 0}
    assert cue_record(gate, CueData(10_000, message(late)), newest=12_000) is None
    ahead = {**YOUTUBE, "pre_roll_time_sec": 400}
    assert cue_record(gate, CueData(10_000, message(ahead)), newest=10_000) is None
    assert cue_record(gate, CueData(10_000, PREFIX + b"\x05\x05"), newest=10_000) is None
    assert [reason for reason, _ in gate.refusals] == ["early", "past", "ahead", "cuepoint"]

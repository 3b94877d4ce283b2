"""The manual cue's pure rules: what a request may ask (judged before it reaches the record),
where both encoders of a pair place it (the same boundary, the same section), and what an
encoder does with a request read twice, late, or long after its boundary."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import threefive

from kubecast.encoder.manual_cue import ManualCues, cue_segment
from kubecast.media.scte35 import parse_splice_info
from kubecast.storage import CueRefused, CueRequest, cue_ended, cue_started
from kubecast.storage.cue_requests import KEPT

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
D = 2000


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def refusal(call) -> str:
    with pytest.raises(CueRefused) as refused:
        call()
    return refused.value.reason


def test_a_break_takes_one_second_to_an_hour_and_an_id_of_its_own():
    cues = cue_started([], event_id=7, seconds=30, now=at(10))
    assert cues == [CueRequest(event_id=7, out=True, asked=at(10), duration_ms=30_000)]
    assert cue_started(cues, event_id=None, seconds=0.5 + 1, now=at(11))[-1].event_id == 8, "the next free id"
    for seconds in (0, 0.2, -5, 3601, 7 * 3600, float("nan"), float("inf")):
        assert refusal(lambda: cue_started(cues, event_id=9, seconds=seconds, now=at(12))) == "duration", seconds
    assert refusal(lambda: cue_started(cues, event_id=7, seconds=30, now=at(12))) == "repeated"
    assert refusal(lambda: cue_started(cues, event_id=2**32, seconds=30, now=at(12))) == "id"


def test_an_end_names_its_break_or_ends_the_newest_one_still_open():
    cues = cue_started(cue_started([], event_id=1, seconds=60, now=at(0)), event_id=2, seconds=60, now=at(5))
    ended = cue_ended(cues, event_id=None, now=at(20))
    assert ended[-1] == CueRequest(event_id=2, out=False, asked=at(20))
    assert cue_ended(ended, event_id=None, now=at(21))[-1].event_id == 1
    assert refusal(lambda: cue_ended(ended, event_id=2, now=at(21))) == "repeated"
    assert refusal(lambda: cue_ended(ended, event_id=5, now=at(21))) == "unknown"
    assert refusal(lambda: cue_ended([], event_id=None, now=at(21))) == "unknown"


def test_the_record_keeps_the_newest_requests_only():
    cues: list[CueRequest] = []
    for n in range(KEPT + 5):
        cues = cue_started(cues, event_id=None, seconds=10, now=at(n))
    assert len(cues) == KEPT and cues[-1].event_id == KEPT + 5 and cues[0].event_id == 6


def test_both_encoders_place_the_same_splice_insert_on_the_same_boundary():
    cues = cue_started([], event_id=42, seconds=30, now=at(100.3))
    a, b = ManualCues(D), ManualCues(D)
    # One reads it at once, the other a segment later: the same boundary (100.3 + 3 -> 104 s).
    placed_a = a.follow(cues, availability_start=START, now=at(100.4), current=50)
    placed_b = b.follow(cues, availability_start=START, now=at(101.9), current=51)
    assert placed_a == placed_b
    ((segment, cue),) = placed_a
    assert segment == 52
    assert (cue.timescale, cue.splice_time, cue.out, cue.duration, cue.event_id) == (
        90_000,
        104 * 90_000,
        True,
        30 * 90_000,
        42,
    )
    splice = parse_splice_info(cue.section).splice
    assert splice is not None and (splice.event_id, splice.out, splice.pts, splice.duration) == (
        42,
        True,
        104 * 90_000,
        30 * 90_000,
    )
    # A decoder nobody here wrote reads the same splice_insert.
    section = threefive.Cue(cue.section)
    section.decode()
    command = section.command
    assert command.command_type == 5 and command.splice_event_id == 42 and command.out_of_network_indicator
    assert command.pts_time == pytest.approx(104.0) and command.break_duration == pytest.approx(30.0)


def test_an_end_goes_at_least_a_segment_after_its_start_and_says_back_in():
    cues = cue_started([], event_id=3, seconds=30, now=at(100.0))
    cues = cue_ended(cues, event_id=3, now=at(100.5))
    assert [cue_segment(r, cues, availability_start=START, segment_ms=D) for r in cues] == [52, 53]
    placed = ManualCues(D).follow(cues, availability_start=START, now=at(100.6), current=50)
    assert [(n, c.out, c.splice_time, c.duration) for n, c in placed] == [
        (52, True, 104 * 90_000, 30 * 90_000),
        (53, False, 106 * 90_000, None),
    ]
    splice = parse_splice_info(placed[1][1].section).splice
    assert splice is not None and not splice.out and splice.event_id == 3


def test_a_request_is_acted_on_once_and_an_old_one_not_at_all():
    cues = cue_started([], event_id=1, seconds=10, now=at(100.0))
    follower = ManualCues(D)
    assert len(follower.follow(cues, availability_start=START, now=at(100.1), current=50)) == 1
    assert follower.follow(cues, availability_start=START, now=at(100.6), current=50) == [], "read twice"
    # A contribution that starts well after the break (a record from before it) places nothing.
    assert ManualCues(D).follow(cues, availability_start=START, now=at(300), current=None) == []
    assert ManualCues(D).follow(cues, availability_start=START, now=at(104.5), current=53) == []
    # Read within the segment its boundary began: placed (the ladder puts it on its next picture).
    assert len(ManualCues(D).follow(cues, availability_start=START, now=at(104.5), current=52)) == 1

"""The manual slate's pure rules: which boundary a switch asked at a wall-clock time lands on
(the same for both encoders of a pair), which segments and samples carry the card and silence,
and what a late reader does."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import av

from kubecast.encoder.audio import silence
from kubecast.encoder.manual_slate import SWITCH_LEAD_MS, SlateSchedule, Switch, switch_segment
from kubecast.storage import SlateRequest, slate_switched

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
D = 2000


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def test_a_switch_lands_on_the_first_boundary_past_the_lead():
    assert SWITCH_LEAD_MS == 3000
    assert switch_segment(asked=at(10.0), availability_start=START, segment_duration_ms=D) == 7  # 13 s -> 14 s
    assert switch_segment(asked=at(11.0), availability_start=START, segment_duration_ms=D) == 7  # 14 s exactly
    assert switch_segment(asked=at(11.001), availability_start=START, segment_duration_ms=D) == 8
    assert switch_segment(asked=at(10.0), availability_start=START, segment_duration_ms=1000) == 13


def test_both_encoders_of_a_pair_switch_at_the_same_segment_whenever_they_read_the_request():
    request = SlateRequest(on=True, asked=at(100.3))
    a, b = SlateSchedule(D), SlateSchedule(D)
    assert a.follow(request, availability_start=START, current=50) == Switch(52, True)
    assert b.follow(request, availability_start=START, current=51) == Switch(52, True)
    assert [a.on(n) for n in (50, 51, 52, 60)] == [b.on(n) for n in (50, 51, 52, 60)] == [False, False, True, True]


def test_switching_off_returns_to_the_picture_at_its_own_boundary():
    schedule = SlateSchedule(D)
    schedule.follow(SlateRequest(on=True, asked=at(100.0)), availability_start=START, current=50)
    assert schedule.follow(SlateRequest(on=False, asked=at(110.0)), availability_start=START, current=55) == Switch(
        57, False
    )
    assert [schedule.on(n) for n in (51, 52, 56, 57, 90)] == [False, True, True, False, False]


def test_a_request_read_twice_or_asking_what_is_so_changes_nothing():
    schedule = SlateSchedule(D)
    request = SlateRequest(on=True, asked=at(100.0))
    assert schedule.follow(request, availability_start=START, current=50) is not None
    assert schedule.follow(request, availability_start=START, current=51) is None
    assert schedule.follow(None, availability_start=START, current=52) is None
    assert schedule.switches == [Switch(52, True)]
    # The writers keep the request in force when asked again: its boundary does not move.
    assert slate_switched(request, on=True, now=at(200)) is request
    assert slate_switched(None, on=False, now=at(200)) is None
    assert slate_switched(request, on=False, now=at(200)) == SlateRequest(on=False, asked=at(200))


def test_a_contribution_that_starts_under_a_request_shows_what_it_asked():
    on_long_ago = SlateSchedule(D)
    on_long_ago.follow(SlateRequest(on=True, asked=at(10.0)), availability_start=START, current=None)
    assert on_long_ago.on(500)
    off_long_ago = SlateSchedule(D)
    off_long_ago.follow(SlateRequest(on=False, asked=at(10.0)), availability_start=START, current=None)
    assert not off_long_ago.on(500)
    # Off asked a moment ago: the slate stays until the boundary, as on the other encoder.
    off_now = SlateSchedule(D)
    off_now.follow(SlateRequest(on=False, asked=at(1000.0)), availability_start=START, current=None)
    assert off_now.on(501) and not off_now.on(502)
    assert not SlateSchedule(D).on(3)


def test_a_reader_past_the_boundary_switches_at_its_next_one():
    schedule = SlateSchedule(D)
    assert schedule.follow(SlateRequest(on=True, asked=at(100.0)), availability_start=START, current=60) == Switch(
        61, True
    )


def test_the_silent_samples_are_those_of_slate_segments():
    schedule = SlateSchedule(1000, [Switch(3, True), Switch(5, False)])
    rate = 48_000
    assert schedule.silent_ranges(2 * rate, 3 * rate - 1, rate) == []
    assert schedule.silent_ranges(3 * rate - 100, 3 * rate + 924, rate) == [(3 * rate, 3 * rate + 924)]
    assert schedule.silent_ranges(2 * rate, 6 * rate, rate) == [(3 * rate, 5 * rate)]
    assert schedule.silent_ranges(5 * rate - 24, 5 * rate + 1000, rate) == [(5 * rate - 24, 5 * rate)]


def test_silence_zeroes_exactly_the_samples_asked():
    frame = av.AudioFrame(format="fltp", layout="stereo", samples=1024)
    for plane in frame.planes:
        plane.update(b"\x00\x00\x80\x3f" * (plane.buffer_size // 4))  # 1.0 everywhere
    frame.pts = 1000
    silence(frame, [(1100, 1200), (2000, 3000)])
    for plane in frame.planes:
        samples = bytes(plane)[: 4 * 1024]
        values = [samples[i : i + 4] for i in range(0, len(samples), 4)]
        assert all(v == bytes(4) for v in values[100:200]) and all(v == bytes(4) for v in values[1000:])
        assert all(v == b"\x00\x00\x80\x3f" for v in values[:100] + values[200:1000])

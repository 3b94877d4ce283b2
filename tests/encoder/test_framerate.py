"""The constant-frame-rate grid: rates, timescales, slots, segments, repeats and drops."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from kubecast.encoder.framerate import FrameGrid, FrameRateConverter, choose_frame_rate, snap_rate, video_timescale

NTSC = Fraction(30000, 1001)


@pytest.mark.parametrize(
    ("rate", "timescale", "ticks"),
    [
        (Fraction(30), 90000, 3000),
        (Fraction(25), 90000, 3600),
        (Fraction(60), 90000, 1500),
        (Fraction(24), 90000, 3750),
        (NTSC, 90000, 3003),
        (Fraction(60000, 1001), 60000, 1001),
        (Fraction(24000, 1001), 24000, 1001),
        (Fraction(7), 7, 1),
    ],
)
def test_the_timescale_makes_a_slot_a_whole_number_of_ticks(rate, timescale, ticks):
    grid = FrameGrid(rate, 2000)
    assert (grid.timescale, grid.slot_ticks) == (timescale, ticks)
    assert video_timescale(rate) == timescale


@pytest.mark.parametrize("rate", [Fraction(30), Fraction(25), NTSC, Fraction(60000, 1001), Fraction(24000, 1001)])
@pytest.mark.parametrize("segment_ms", [2000, 1000, 6000])
def test_segments_start_at_the_first_slot_at_or_after_each_boundary(rate, segment_ms):
    grid = FrameGrid(rate, segment_ms)
    boundary = lambda n: n * segment_ms * grid.timescale // 1000  # noqa: E731 - n*D in the track's timescale
    for n in range(0, 400):
        first = grid.first_slot(n)
        assert grid.time_of(first) >= boundary(n) > grid.time_of(first - 1)
        assert grid.segment_of(first) == n and grid.segment_of(first - 1) == n - 1
        duration = grid.time_of(grid.first_slot(n + 1)) - grid.time_of(first)
        assert abs(duration - segment_ms * grid.timescale // 1000) < grid.slot_ticks, "within one slot of D"
        if (rate * segment_ms / 1000).denominator == 1:
            assert duration == segment_ms * grid.timescale // 1000, "exactly D where the rate divides it"


def test_millisecond_and_jittered_timestamps_map_one_to_one():
    grid = FrameGrid(Fraction(30), 2000)
    jitter = random.Random(17)
    for times in (
        [round(k * 1000 / 30) * 90 for k in range(300)],  # RTMP: 33, 33, 34 ms
        [round((k * 1000 / 30 + jitter.uniform(-5, 5)) * 90) for k in range(300)],  # a clock jittering by 5 ms
    ):
        converter = FrameRateConverter(max_fill=120)
        placed = [converter.place(grid.slot_of(t)) for t in times]
        assert [p.slot for p in placed] == list(range(300))
        assert not any(p.repeat for p in placed)


def test_a_lost_picture_is_repeated_and_a_surplus_one_dropped():
    converter = FrameRateConverter(max_fill=120)
    assert converter.place(10).slot == 10
    gap = converter.place(13)
    assert list(gap.repeat) == [11, 12] and gap.slot == 13, "slots 11 and 12 repeat picture 10"
    late = converter.place(13)
    assert late.slot is None and not late.repeat, "a second picture for slot 13 is dropped"
    assert converter.place(14).slot == 14


def test_a_jump_of_the_clock_is_not_filled():
    converter = FrameRateConverter(max_fill=120)
    converter.place(0)
    jump = converter.place(5000)
    assert jump.jumped and not jump.repeat and jump.slot == 5000
    back = converter.place(100)
    assert back.jumped and back.slot == 100


def test_the_rate_the_stream_states_is_taken_when_its_pictures_agree():
    ntsc_ms = [round(k * 1001 / 30) * 90 for k in range(8)]  # 29.97 fps in milliseconds
    assert choose_frame_rate(signalled=NTSC, times=ntsc_ms[:4]) is None, "too few pictures to check it"
    assert choose_frame_rate(signalled=NTSC, times=ntsc_ms) == NTSC
    # An encoder that wrote its time base (1/1000) in the SPS: measured over a second instead.
    thirty = [k * 3000 for k in range(31)]
    assert choose_frame_rate(signalled=Fraction(500), times=thirty[:8]) is None
    assert choose_frame_rate(signalled=Fraction(500), times=thirty) == 30
    assert choose_frame_rate(signalled=None, times=thirty[:20]) is None
    assert choose_frame_rate(signalled=None, times=thirty[:20], final=True) == 30
    assert choose_frame_rate(signalled=None, times=[], final=True) == 30


def test_measured_rates_snap_to_broadcast_rates():
    assert snap_rate(Fraction(2997, 100)) == NTSC
    assert snap_rate(Fraction(3010, 100)) == 30
    assert snap_rate(Fraction(1250, 100)) == 12 or snap_rate(Fraction(1250, 100)) == 13
    assert snap_rate(Fraction(500)) == 120

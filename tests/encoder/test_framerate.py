"""The constant-frame-rate grid: rates, timescales, slots, segments, repeats and drops."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from kubecast.encoder.framerate import (
    FrameGrid,
    FrameRateConverter,
    choose_frame_rate,
    fit_rate,
    snap_rate,
    video_timescale,
)

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


def jittered(rate: Fraction, *, count: int, jitter_ms: float, seed: int, milliseconds: bool = False) -> list[int]:
    """90 kHz presentation times of ``count`` pictures at ``rate``, each moved by up to
    ``jitter_ms`` either way, rounded to whole milliseconds as RTMP does when asked."""
    shake = random.Random(seed)
    times = [float(k / rate * 1000) + shake.uniform(-jitter_ms, jitter_ms) for k in range(count)]
    return [round(t) * 90 if milliseconds else round(t * 90) for t in times]


def decided(times: list[int]) -> Fraction | None:
    """The rate as the ladder decides it: with each new picture, until it has seen enough."""
    return next(
        (rate for n in range(1, len(times) + 1) if (rate := choose_frame_rate(signalled=None, times=times[:n]))), None
    )


@pytest.mark.parametrize("seed", range(25))
def test_a_second_of_30_fps_jittering_by_5_ms_is_30_fps(seed):
    # The two ends of a second alone put this anywhere in 29.7 .. 30.3 fps (29.97 about half the time).
    assert decided(jittered(Fraction(30), count=40, jitter_ms=5, seed=seed, milliseconds=True)) == 30


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(
    ("rate", "jitter_ms", "milliseconds"),
    [
        (NTSC, 0, True),  # RTMP's millisecond rounding of a true 29.97 source
        (NTSC, 0.5, False),
        (Fraction(60000, 1001), 0, True),
        (Fraction(24000, 1001), 0, True),
        (Fraction(60), 2, True),
        (Fraction(25), 5, True),
        (Fraction(24), 5, False),
        (Fraction(50), 3, True),
    ],
)
def test_each_standard_rate_is_told_from_its_sibling(seed, rate, jitter_ms, milliseconds):
    times = jittered(rate, count=int(rate) + 10, jitter_ms=jitter_ms, seed=seed, milliseconds=milliseconds)
    assert decided(times) == rate


def test_the_fit_uses_every_picture_and_says_how_far_it_may_be_off():
    exact = fit_rate([k * 3003 for k in range(31)])
    assert exact is not None and exact.rate == NTSC and exact.error == 0
    shaky = fit_rate(jittered(Fraction(30), count=31, jitter_ms=5, seed=3))
    assert shaky is not None and 0.01 < shaky.error < 0.1, "about 0.17 % of 30 fps from 31 pictures"
    longer = fit_rate(jittered(Fraction(30), count=301, jitter_ms=5, seed=3))
    assert longer is not None and longer.error < shaky.error / 20, "n^(3/2): ten times the pictures, 30 times closer"
    assert fit_rate([5]) is None and fit_rate([7, 7, 7]) is None


def test_an_odd_rate_snaps_to_the_nearest_whole_rate_whatever_its_error():
    assert snap_rate(Fraction(1250, 100), 1.0) in (12, 13)
    assert snap_rate(Fraction(2990, 100), 0.5) == 30, "29.97 and 30 both possible: the whole rate"
    assert snap_rate(Fraction(2997, 100), 0.001) == NTSC

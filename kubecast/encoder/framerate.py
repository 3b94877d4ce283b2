"""Constant frame rate on an exact grid of the channel clock (pure).

A live-encoded rendition has one picture per *slot*: slot k starts at k / rate seconds of
channel media time, and every sample lasts one slot.  A contribution's pictures rarely sit
exactly there (RTMP's millisecond timestamps alternate 33 and 34 ms at 30 fps; an encoder's
clock jitters), so each picture goes to the slot nearest its presentation time, the way a
broadcast frame-rate converter does: a slot no picture reached repeats the previous picture
(*duplicated*), a picture whose slot is already taken is *dropped*.  A source at the output
rate with jitter under half a frame interval maps one to one.

The track's timescale is chosen per rate so that a slot is a whole number of ticks: 90 kHz
where it divides (24, 25, 29.97, 30, 50, 60 fps ...: 3003 ticks at 29.97), the rate's own
numerator otherwise (60000 for 59.94 fps and 24000 for 23.976, a slot of 1001).  Segment n then
starts at the first slot at or after n*D, and lasts within one slot of D; for rates that divide D
exactly, every segment is D.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

SOURCE_TIMESCALE = 90_000  # the decoder's presentation times (channel media time)
COMMON_RATES = (
    Fraction(24000, 1001),
    Fraction(24),
    Fraction(25),
    Fraction(30000, 1001),
    Fraction(30),
    Fraction(50),
    Fraction(60000, 1001),
    Fraction(60),
)
MAX_RATE = 120
MEASURE_SECONDS = Fraction(1)  # measured over this much media when the stream does not say
CROSS_CHECK_FRAMES = 8  # a signalled rate is checked against this many pictures' times


def video_timescale(rate: Fraction) -> int:
    """A timescale in which one slot of ``rate`` is a whole number of ticks."""
    if (SOURCE_TIMESCALE / rate).denominator == 1:
        return SOURCE_TIMESCALE
    return rate.numerator


@dataclass(frozen=True)
class RateFit:
    """A frame rate measured from pictures' times, and how far it may be off (one standard error)."""

    rate: Fraction
    error: float


def fit_rate(times: list[int], timescale: int = SOURCE_TIMESCALE) -> RateFit | None:
    """Pictures per second: the least-squares line through the pictures' times (any order, one
    picture per index), with the standard error of that rate from the scatter around the line.

    The line uses every picture, not only the first and the last: with timestamps jittering by
    +-5 ms, the two ends alone put a second of 30 fps anywhere between 29.7 and 30.3, while the
    fit's error shrinks with the number of pictures to the power 3/2."""
    ordered = sorted(times)
    count = len(ordered)
    if count < 2 or ordered[-1] == ordered[0]:
        return None
    middle = Fraction(count - 1, 2)
    mean = Fraction(sum(ordered), count)
    spread = Fraction(count * (count * count - 1), 12)  # sum of (k - middle)^2
    slope = sum((k - middle) * (time - mean) for k, time in enumerate(ordered)) / spread  # ticks per picture
    if slope <= 0:
        return None
    scatter = sum((time - mean - slope * (k - middle)) ** 2 for k, time in enumerate(ordered))
    slope_error = math.sqrt(scatter / (count - 2) / spread) if count > 2 else 0.0
    rate = timescale / slope
    return RateFit(rate, float(rate) * slope_error / float(slope))


def snap_rate(rate: Fraction, error: float = 0.0) -> Fraction:
    """A measured rate as the broadcast rate it is (within 0.5 %), or the nearest whole rate.

    ``error`` is the measurement's standard error.  A rate and its 1000/1001 sibling (30 and
    29.97) are 0.1 % apart; when both lie within three errors of the measurement, it cannot
    tell them apart and the whole rate is taken: a source whose clock jitters by milliseconds is
    a software clock counting whole rates, while a true 29.97 source (a camera, a broadcast
    encoder, or RTMP's millisecond rounding of one) has times precise enough to be told apart."""
    near = [common for common in COMMON_RATES if abs(rate - common) <= common / 200]
    if not near:
        return Fraction(min(MAX_RATE, max(1, round(rate))))
    undecided = [common for common in near if abs(float(rate - common)) <= 3 * error]
    if len(undecided) > 1:
        return min(undecided, key=lambda common: common.denominator)
    return min(near, key=lambda common: abs(rate - common))


def choose_frame_rate(*, signalled: Fraction | None, times: list[int], final: bool = False) -> Fraction | None:
    """The output rate, or None while more pictures are needed to decide.

    ``signalled`` is what the H.264 stream says (its SPS timing information); it is taken when
    the pictures' own spacing agrees within 10 % (an encoder that wrote its time base there
    rather than its frame rate does not).  Otherwise the rate is measured over a second of
    pictures (``fit_rate``) and snapped to a standard rate (``snap_rate``).  ``final``: no more
    pictures will come, decide with what there is.
    """
    fit = fit_rate(times)
    measured = fit.rate if fit is not None else None
    plausible = signalled is not None and 1 <= signalled <= MAX_RATE
    if plausible and len(times) >= CROSS_CHECK_FRAMES:
        assert signalled is not None
        if measured is not None and abs(measured - signalled) <= signalled / 10:
            return signalled
    span = Fraction(max(times) - min(times), SOURCE_TIMESCALE) if times else Fraction(0)
    if fit is not None and (span >= MEASURE_SECONDS or final):
        return snap_rate(fit.rate, fit.error)
    if final:
        return signalled if plausible else Fraction(30)
    return None


@dataclass(frozen=True)
class FrameGrid:
    """Slots of one rate on the channel timeline, in the track's timescale."""

    rate: Fraction
    segment_duration_ms: int
    part_duration_ms: int | None = None  # low latency: each segment is also cut into parts this long

    @property
    def timescale(self) -> int:
        return video_timescale(self.rate)

    @property
    def slot_ticks(self) -> int:
        ticks = self.timescale / self.rate
        assert ticks.denominator == 1
        return int(ticks)

    def slot_of(self, time: int, timescale: int = SOURCE_TIMESCALE) -> int:
        """The slot nearest ``time`` (a tie goes to the later slot)."""
        return math.floor(Fraction(time, timescale) * self.rate + Fraction(1, 2))

    def time_of(self, slot: int) -> int:
        return slot * self.slot_ticks

    def segment_of(self, slot: int) -> int:
        """The segment [n*D, (n+1)*D) that slot's start falls in."""
        return math.floor(Fraction(slot) / self.rate * 1000 / self.segment_duration_ms)

    def first_slot(self, segment: int) -> int:
        """The first slot at or after n*D: where segment n starts."""
        return math.ceil(Fraction(segment * self.segment_duration_ms, 1000) * self.rate)


@dataclass(frozen=True)
class Placed:
    """What one picture of the contribution becomes on the grid."""

    repeat: range  # slots the previous picture fills again first (duplicated)
    slot: int | None  # this picture's slot, None if it is dropped
    jumped: bool = False  # the contribution's time jumped: nothing was filled across the gap


class FrameRateConverter:
    """Assigns the contribution's pictures to slots, in decode order of their output."""

    def __init__(self, *, max_fill: int):
        self.max_fill = max_fill  # a longer hole is a jump in the contribution's time, not lost pictures
        self.next_slot: int | None = None

    def place(self, slot: int) -> Placed:
        if self.next_slot is None:
            self.next_slot = slot + 1
            return Placed(range(0), slot)
        if slot < self.next_slot:
            if slot < self.next_slot - self.max_fill:  # time went back far: a new start
                self.next_slot = slot + 1
                return Placed(range(0), slot, jumped=True)
            return Placed(range(0), None)
        if slot - self.next_slot > self.max_fill:
            self.next_slot = slot + 1
            return Placed(range(0), slot, jumped=True)
        repeat = range(self.next_slot, slot)
        self.next_slot = slot + 1
        return Placed(repeat, slot)

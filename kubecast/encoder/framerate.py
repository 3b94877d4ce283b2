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


def measured_rate(times: list[int], timescale: int = SOURCE_TIMESCALE) -> Fraction | None:
    """Pictures per second over the span of ``times`` (presentation times, any order)."""
    if len(times) < 2:
        return None
    span = max(times) - min(times)
    return Fraction((len(times) - 1) * timescale, span) if span > 0 else None


def snap_rate(rate: Fraction) -> Fraction:
    """A measured rate as the broadcast rate it is (within 0.5 %), or the nearest whole rate."""
    nearest = min(COMMON_RATES, key=lambda common: abs(rate - common))
    if abs(rate - nearest) <= nearest / 200:
        return nearest
    return Fraction(min(MAX_RATE, max(1, round(rate))))


def choose_frame_rate(*, signalled: Fraction | None, times: list[int], final: bool = False) -> Fraction | None:
    """The output rate, or None while more pictures are needed to decide.

    ``signalled`` is what the H.264 stream says (its SPS timing information); it is taken when
    the pictures' own spacing agrees within 10 % (an encoder that wrote its time base there
    rather than its frame rate does not).  Otherwise the rate is measured over a second of
    pictures.  ``final``: no more pictures will come, decide with what there is.
    """
    measured = measured_rate(times)
    plausible = signalled is not None and 1 <= signalled <= MAX_RATE
    if plausible and len(times) >= CROSS_CHECK_FRAMES:
        assert signalled is not None
        if measured is not None and abs(measured - signalled) <= signalled / 10:
            return signalled
    span = Fraction(max(times) - min(times), SOURCE_TIMESCALE) if times else Fraction(0)
    if measured is not None and (span >= MEASURE_SECONDS or final):
        return snap_rate(measured)
    if final:
        return signalled if plausible else Fraction(30)
    return None


@dataclass(frozen=True)
class FrameGrid:
    """Slots of one rate on the channel timeline, in the track's timescale."""

    rate: Fraction
    segment_duration_ms: int

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

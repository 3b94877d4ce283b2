"""The burned-in clock must show the right time: render it through FFmpeg and read the pixels."""

import av
import pytest

from kubecast.local.clockface import SEGMENT_DIGITS, _segment_rects, clock_filters


def render(offset: float, *, digit_height: int = 36, x: int = 20, y: int = 20):
    chain = ",".join(
        [
            "color=c=blue:size=320x100:rate=1",
            *clock_filters(offset_seconds=offset, x=x, y=y, digit_height=digit_height),
            "format=gray",
        ]
    )
    container = av.open(chain, format="lavfi")
    try:
        frame = next(container.decode(video=0))
        plane = frame.planes[0]
        return bytes(plane), plane.line_size
    finally:
        container.close()


def read_digits(pixels: bytes, stride: int, *, digit_height: int = 36, x: int = 20, y: int = 20) -> list[int]:
    """Inverse of the drawing: sample the centre of every segment rectangle."""
    width, thick, gap = digit_height // 2, max(2, digit_height // 9), digit_height // 4
    colon = thick + gap
    digits, cursor = [], x
    for index in range(6):
        lit = set()
        for segment, (sx, sy, sw, sh) in _segment_rects(cursor, y, width, digit_height, thick).items():
            cx, cy = sx + sw // 2, sy + sh // 2
            if segment in "bcef":
                cy = sy + sh // 2  # vertical bars: the middle of the bar, away from the joints
            if pixels[cy * stride + cx] > 200:
                lit.add(segment)
        matches = [d for d in range(10) if {s for s, ds in SEGMENT_DIGITS.items() if d in ds} == lit]
        assert len(matches) == 1, f"digit {index}: lit segments {sorted(lit)} match no digit"
        digits.append(matches[0])
        cursor += width + gap + (colon if index in (1, 3) else 0)
    return digits


@pytest.mark.parametrize("clock", [(12, 34, 56), (0, 0, 0), (23, 59, 9), (7, 8, 1)])
def test_clock_shows_the_time(clock):
    hours, minutes, seconds = clock
    pixels, stride = render(hours * 3600 + minutes * 60 + seconds + 0.25)
    expected = [hours // 10, hours % 10, minutes // 10, minutes % 10, seconds // 10, seconds % 10]
    assert read_digits(pixels, stride) == expected

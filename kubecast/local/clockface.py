"""A burned-in seven-segment wall clock as an FFmpeg filter chain.

PyAV's bundled FFmpeg has no ``drawtext`` (no FreeType), so the clock is drawn with
``drawbox`` filters whose ``enable`` expressions light each segment from the frame time
``t``.  Pure string building: the demo publisher appends this to its ``testsrc2`` source.
"""

from __future__ import annotations

# Which digits light each segment: a top, b top-right, c bottom-right, d bottom,
# e bottom-left, f top-left, g middle.
SEGMENT_DIGITS = {
    "a": (0, 2, 3, 5, 6, 7, 8, 9),
    "b": (0, 1, 2, 3, 4, 7, 8, 9),
    "c": (0, 1, 3, 4, 5, 6, 7, 8, 9),
    "d": (0, 2, 3, 5, 6, 8, 9),
    "e": (0, 2, 6, 8),
    "f": (0, 4, 5, 6, 8, 9),
    "g": (2, 3, 4, 5, 6, 8, 9),
}


def digit_expressions(offset_seconds: float) -> list[str]:
    """HH:MM:SS digit values as FFmpeg expressions of the frame time ``t``."""
    now = f"(t+{offset_seconds:.3f})"
    hours = f"mod(floor({now}/3600),24)"
    minutes = f"mod(floor({now}/60),60)"
    seconds = f"mod(floor({now}),60)"
    return [
        f"floor({hours}/10)",
        f"mod({hours},10)",
        f"floor({minutes}/10)",
        f"mod({minutes},10)",
        f"floor({seconds}/10)",
        f"mod({seconds},10)",
    ]


def _segment_rects(x: int, y: int, width: int, height: int, thick: int) -> dict[str, tuple[int, int, int, int]]:
    half = height // 2
    return {
        "a": (x, y, width, thick),
        "b": (x + width - thick, y, thick, half),
        "c": (x + width - thick, y + half, thick, half),
        "d": (x, y + height - thick, width, thick),
        "e": (x, y + half, thick, half),
        "f": (x, y, thick, half),
        "g": (x, y + half - thick // 2, width, thick),
    }


def clock_filters(*, offset_seconds: float, x: int, y: int, digit_height: int) -> list[str]:
    """drawbox filters for a clock whose top-left corner is (x, y)."""
    width, thick, gap = digit_height // 2, max(2, digit_height // 9), digit_height // 4
    colon = thick + gap
    total_width = 6 * width + 5 * gap + 2 * colon
    pad = digit_height // 4
    filters = [
        f"drawbox=x={x - pad}:y={y - pad}:w={total_width + 2 * pad}:h={digit_height + 2 * pad}:color=black@0.8:t=fill"
    ]
    cursor = x
    for index, expression in enumerate(digit_expressions(offset_seconds)):
        for segment, (sx, sy, sw, sh) in _segment_rects(cursor, y, width, digit_height, thick).items():
            lit = "+".join(f"eq({expression},{digit})" for digit in SEGMENT_DIGITS[segment])
            filters.append(f"drawbox=x={sx}:y={sy}:w={sw}:h={sh}:color=white:t=fill:enable='{lit}'")
        cursor += width + gap
        if index in (1, 3):
            for dot_y in (y + digit_height // 4, y + 3 * digit_height // 4 - thick):
                filters.append(f"drawbox=x={cursor}:y={dot_y}:w={thick}:h={thick}:color=white:t=fill")
            cursor += colon
    return filters

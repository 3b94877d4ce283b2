"""The generated slate card: the channel's name on a plain background, as a yuv420p picture.

PyAV's bundled FFmpeg has no ``drawtext`` (no FreeType) and the encoder has no imaging library,
so the letters come from a 5x7 bitmap font and are drawn into the luma plane directly.  The
card is a pure function of its text and size: both encoders of a channel draw the same picture,
and a test can draw it again to compare with a decoded slate segment.
"""

from __future__ import annotations

import av

# 5x7 glyphs, one string of five bits per row, for what a channel name (a DNS label) and the
# caption can hold.
GLYPHS: dict[str, tuple[str, ...]] = {
    "A": ("01110", "10001", "10001", "11111", "10001", "10001", "10001"),
    "B": ("11110", "10001", "10001", "11110", "10001", "10001", "11110"),
    "C": ("01110", "10001", "10000", "10000", "10000", "10001", "01110"),
    "D": ("11110", "10001", "10001", "10001", "10001", "10001", "11110"),
    "E": ("11111", "10000", "10000", "11110", "10000", "10000", "11111"),
    "F": ("11111", "10000", "10000", "11110", "10000", "10000", "10000"),
    "G": ("01110", "10001", "10000", "10111", "10001", "10001", "01111"),
    "H": ("10001", "10001", "10001", "11111", "10001", "10001", "10001"),
    "I": ("01110", "00100", "00100", "00100", "00100", "00100", "01110"),
    "J": ("00111", "00010", "00010", "00010", "00010", "10010", "01100"),
    "K": ("10001", "10010", "10100", "11000", "10100", "10010", "10001"),
    "L": ("10000", "10000", "10000", "10000", "10000", "10000", "11111"),
    "M": ("10001", "11011", "10101", "10101", "10001", "10001", "10001"),
    "N": ("10001", "10001", "11001", "10101", "10011", "10001", "10001"),
    "O": ("01110", "10001", "10001", "10001", "10001", "10001", "01110"),
    "P": ("11110", "10001", "10001", "11110", "10000", "10000", "10000"),
    "Q": ("01110", "10001", "10001", "10001", "10101", "10010", "01101"),
    "R": ("11110", "10001", "10001", "11110", "10100", "10010", "10001"),
    "S": ("01111", "10000", "10000", "01110", "00001", "00001", "11110"),
    "T": ("11111", "00100", "00100", "00100", "00100", "00100", "00100"),
    "U": ("10001", "10001", "10001", "10001", "10001", "10001", "01110"),
    "V": ("10001", "10001", "10001", "10001", "10001", "01010", "00100"),
    "W": ("10001", "10001", "10001", "10101", "10101", "10101", "01010"),
    "X": ("10001", "10001", "01010", "00100", "01010", "10001", "10001"),
    "Y": ("10001", "10001", "01010", "00100", "00100", "00100", "00100"),
    "Z": ("11111", "00001", "00010", "00100", "01000", "10000", "11111"),
    "0": ("01110", "10001", "10011", "10101", "11001", "10001", "01110"),
    "1": ("00100", "01100", "00100", "00100", "00100", "00100", "01110"),
    "2": ("01110", "10001", "00001", "00010", "00100", "01000", "11111"),
    "3": ("11111", "00010", "00100", "00010", "00001", "10001", "01110"),
    "4": ("00010", "00110", "01010", "10010", "11111", "00010", "00010"),
    "5": ("11111", "10000", "11110", "00001", "00001", "10001", "01110"),
    "6": ("00110", "01000", "10000", "11110", "10001", "10001", "01110"),
    "7": ("11111", "00001", "00010", "00100", "01000", "01000", "01000"),
    "8": ("01110", "10001", "10001", "01110", "10001", "10001", "01110"),
    "9": ("01110", "10001", "10001", "01111", "00001", "00010", "01100"),
    "-": ("00000", "00000", "00000", "11111", "00000", "00000", "00000"),
    ".": ("00000", "00000", "00000", "00000", "00000", "01100", "01100"),
    " ": ("00000",) * 7,
}
CAPTION = "PLEASE STAND BY"
BACKGROUND = (40, 150, 118)  # Y, U, V: a dark blue
TEXT_LUMA = 235


def _draw(luma: bytearray, width: int, text: str, *, top: int, scale: int) -> None:
    """``text`` centred horizontally, its glyphs ``scale`` pixels per font pixel."""
    text = "".join(c if c in GLYPHS else " " for c in text.upper())
    advance = 6 * scale
    left = (width - (len(text) * advance - scale)) // 2
    for index, char in enumerate(text):
        for row, bits in enumerate(GLYPHS[char]):
            for column, bit in enumerate(bits):
                if bit == "1":
                    x = left + index * advance + column * scale
                    for y in range(top + row * scale, top + (row + 1) * scale):
                        luma[y * width + x : y * width + x + scale] = bytes([TEXT_LUMA]) * scale


def card_planes(width: int, height: int, title: str) -> tuple[bytes, bytes, bytes]:
    """The card's Y, U and V planes (tightly packed, 4:2:0)."""
    luma = bytearray([BACKGROUND[0]]) * (width * height)
    title_scale = max(1, min(width * 8 // 10 // max(1, 6 * len(title)), height // 10 // 7))
    caption_scale = max(1, title_scale // 2)
    title_top = height // 2 - 7 * title_scale
    _draw(luma, width, title, top=title_top, scale=title_scale)
    _draw(luma, width, CAPTION, top=height // 2 + 2 * title_scale, scale=caption_scale)
    chroma = (width // 2) * (height // 2)
    return bytes(luma), bytes([BACKGROUND[1]]) * chroma, bytes([BACKGROUND[2]]) * chroma


def card_frame(width: int, height: int, title: str) -> av.VideoFrame:
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane, packed, plane_width in zip(
        frame.planes, card_planes(width, height, title), (width, width // 2, width // 2)
    ):
        rows = len(packed) // plane_width
        stride = plane.line_size
        padded = b"".join(
            packed[row * plane_width : (row + 1) * plane_width].ljust(stride, b"\0") for row in range(rows)
        )
        plane.update(padded)
    return frame


def luma_rows(frame: av.VideoFrame) -> list[bytes]:
    """The luma plane of ``frame`` row by row, without the stride padding (for comparisons)."""
    plane = frame.planes[0]
    data = bytes(plane)
    return [data[row * plane.line_size : row * plane.line_size + frame.width] for row in range(frame.height)]

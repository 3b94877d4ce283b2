"""A wall-clock time burned into a picture as large black and white cells, and read back (pure).

The picture is a grid of ``COLUMNS`` x ``ROWS`` cells covering the whole frame, read row by row:
32 cells carry the time in milliseconds modulo 2**32 (most significant bit first), 8 its CRC-8,
and the last 8 alternate white and black.  Those last 8 give the reader its two reference
levels, whatever the player's colour range and the encoder's brightness drift, and let it
refuse a picture that is not a clock (a black frame before playback, a half-drawn canvas); the
CRC refuses the rare cell that compression flipped.  Cells this large (a 48th of the frame)
survive the smallest rendition of any ladder (320x180 at 200 kbit/s): every cell's centre
stays flat, however blurred its edges.

The reader takes the picture at any size (the player page draws the video into a small canvas)
and looks only at the middle half of each cell.
"""

from __future__ import annotations

COLUMNS, ROWS = 8, 6
TIME_BITS, CHECK_BITS = 32, 8
SYNC = (1, 0, 1, 0, 1, 0, 1, 0)
WRAP = 1 << TIME_BITS
WHITE, BLACK = 235, 16  # video range luma: what an encoder keeps without clipping
MIN_CONTRAST = 48  # references closer than this: not a clock picture (black, grey, mid-fade)


def crc8(data: bytes) -> int:
    """CRC-8 with polynomial 0x07 (CRC-8/SMBUS)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def cells(milliseconds: int) -> list[int]:
    """The 48 cells (1 white, 0 black) for a time in milliseconds, row by row."""
    value = milliseconds % WRAP
    data = [(value >> (TIME_BITS - 1 - i)) & 1 for i in range(TIME_BITS)]
    check = crc8(value.to_bytes(4, "big"))
    return data + [(check >> (CHECK_BITS - 1 - i)) & 1 for i in range(CHECK_BITS)] + list(SYNC)


def clock_picture(milliseconds: int, width: int, height: int) -> bytes:
    """A ``width`` x ``height`` 8-bit grey picture (rows top to bottom) showing ``milliseconds``."""
    lit = cells(milliseconds)
    rows = []
    for row in range(ROWS):
        line = bytearray(width)
        for column in range(COLUMNS):
            left, right = column * width // COLUMNS, (column + 1) * width // COLUMNS
            line[left:right] = bytes([WHITE if lit[row * COLUMNS + column] else BLACK]) * (right - left)
        top, bottom = row * height // ROWS, (row + 1) * height // ROWS
        rows.append(bytes(line) * (bottom - top))
    return b"".join(rows)


def _cell_means(picture: bytes, width: int, height: int, stride: int) -> list[float]:
    means = []
    for row in range(ROWS):
        top, bottom = row * height / ROWS, (row + 1) * height / ROWS
        y0, y1 = int(top + (bottom - top) / 4), max(int(top + (bottom - top) / 4) + 1, int(bottom - (bottom - top) / 4))
        for column in range(COLUMNS):
            left, right = column * width / COLUMNS, (column + 1) * width / COLUMNS
            x0 = int(left + (right - left) / 4)
            x1 = max(x0 + 1, int(right - (right - left) / 4))
            total = sum(sum(picture[y * stride + x0 : y * stride + x1]) for y in range(y0, y1))
            means.append(total / ((y1 - y0) * (x1 - x0)))
    return means


def read_clock(picture: bytes, width: int, height: int, *, stride: int | None = None) -> int | None:
    """The time (milliseconds modulo 2**32) a grey picture shows, or None when it shows no clock
    (sync cells wrong, too little contrast, or a CRC mismatch).  ``stride``: bytes per row, if
    rows are padded."""
    stride = stride or width
    if width < COLUMNS * 2 or height < ROWS * 2 or len(picture) < stride * (height - 1) + width:
        raise ValueError(f"a {width}x{height} picture of {len(picture)} bytes cannot hold the clock's cells")
    means = _cell_means(picture, width, height, stride)
    sync = means[TIME_BITS + CHECK_BITS :]
    white = sum(m for m, bit in zip(sync, SYNC) if bit) / SYNC.count(1)
    black = sum(m for m, bit in zip(sync, SYNC) if not bit) / SYNC.count(0)
    if white - black < MIN_CONTRAST:
        return None
    threshold = (white + black) / 2
    bits = [1 if mean > threshold else 0 for mean in means]
    if tuple(bits[TIME_BITS + CHECK_BITS :]) != SYNC:
        return None
    value = int("".join(map(str, bits[:TIME_BITS])), 2)
    check = int("".join(map(str, bits[TIME_BITS : TIME_BITS + CHECK_BITS])), 2)
    return value if crc8(value.to_bytes(4, "big")) == check else None


def unwrap(shown: int, now_ms: int) -> int:
    """The full time in milliseconds of a clock reading taken at ``now_ms``: the time nearest
    ``now_ms`` that is ``shown`` modulo 2**32 (about 25 days either side)."""
    return now_ms - ((now_ms - shown + WRAP // 2) % WRAP - WRAP // 2)

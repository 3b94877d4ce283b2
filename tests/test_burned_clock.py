"""The glass-to-glass bench's burned-in clock (``bench/burned_clock.py``) read back after the
compression the smallest rendition of any ladder applies, at the size the bench's page reads it."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av
import pytest
from av.video.reformatter import Interpolation

from kubecast.api.presets import PRESETS
from kubecast.encoder.ladder import default_x264_preset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from burned_clock import (  # noqa: E402
    COLUMNS,
    ROWS,
    WRAP,
    clock_picture,
    read_clock,
    unwrap,
)

SOURCE = (1280, 720)  # the bench's contribution
CANVAS = (COLUMNS * 8, ROWS * 8)  # what the bench's page draws each sampled picture into
START_MS = 1_796_341_234_567  # a December 2026 wall clock: more than 32 bits of milliseconds
FRAMES = 90  # three seconds at 30 fps: every low bit changes many times, and a key frame and P-frames


def grey_frame(picture: bytes, width: int, height: int) -> av.VideoFrame:
    frame = av.VideoFrame(width, height, "gray")
    plane = frame.planes[0]
    assert plane.line_size == width  # the sizes used here are multiples of 64: no row padding
    plane.update(picture)
    return frame


def canvas_reading(frame: av.VideoFrame) -> int | None:
    small = frame.reformat(width=CANVAS[0], height=CANVAS[1], format="gray", interpolation=Interpolation.BILINEAR)
    plane = small.planes[0]
    return read_clock(bytes(plane), CANVAS[0], CANVAS[1], stride=plane.line_size)


def test_the_clock_survives_the_smallest_rendition_of_any_ladder():
    smallest = min((rung for ladder in PRESETS.values() for rung in ladder), key=lambda r: r.width * r.height)
    # the settings kubecast's encoder gives that rung (kubecast.encoder.rendition), at the
    # fastest preset any built-in ladder gets
    preset = min((default_x264_preset(ladder) for ladder in PRESETS.values()), key=["ultrafast", "superfast",
                 "veryfast", "faster", "fast", "medium"].index)  # fmt: skip
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = smallest.width, smallest.height, "yuv420p"
    encoder.time_base, encoder.framerate = Fraction(1, 30), Fraction(30)
    encoder.bit_rate = smallest.bitrate
    encoder.options = {
        "preset": preset,
        "profile": smallest.profile.value.lower(),
        "bf": "0",
        "maxrate": str(smallest.bitrate * 11 // 10),
        "bufsize": str(smallest.bitrate * 2),
        "x264-params": "keyint=60:min-keyint=60:scenecut=0:rc-lookahead=8:sync-lookahead=0",
    }
    decoder = av.CodecContext.create("h264", "r")
    shown = [START_MS + round(index * 1000 / 30) for index in range(FRAMES)]
    read: list[int | None] = []
    packets = []
    for index, milliseconds in enumerate(shown):
        frame = grey_frame(clock_picture(milliseconds, *SOURCE), *SOURCE).reformat(
            width=smallest.width, height=smallest.height, format="yuv420p", interpolation=Interpolation.BILINEAR
        )
        frame.pts = index
        packets += encoder.encode(frame)
    packets += encoder.encode(None)
    assert sum(packet.size for packet in packets) * 8 < smallest.bitrate * FRAMES / 30 * 1.5, "the rate was kept"
    for packet in packets:
        read += [canvas_reading(frame) for frame in decoder.decode(packet)]
    read += [canvas_reading(frame) for frame in decoder.decode(None)]
    assert read == [milliseconds % WRAP for milliseconds in shown]
    assert [unwrap(value, START_MS + 5000) for value in read if value is not None] == shown


def test_a_picture_that_is_no_clock_reads_as_none():
    width, height = 256, 192
    assert read_clock(bytes([16]) * width * height, width, height) is None  # black before playback
    assert read_clock(bytes([128]) * width * height, width, height) is None  # grey


def test_a_flipped_cell_fails_the_check():
    width, height = 256, 192
    picture = bytearray(clock_picture(START_MS, width, height))
    assert read_clock(bytes(picture), width, height) == START_MS % WRAP
    cell_w, cell_h = width // COLUMNS, height // ROWS
    for y in range(cell_h):  # the first time cell, the most significant bit
        row = y * width
        picture[row : row + cell_w] = bytes(255 - value for value in picture[row : row + cell_w])
    assert read_clock(bytes(picture), width, height) is None


def test_unwrap_takes_the_reading_nearest_the_moment_it_was_read():
    assert unwrap(START_MS % WRAP, START_MS + 2500) == START_MS
    # a reading just before a wrap of the 32-bit counter, read just after it
    assert unwrap(WRAP - 10, 5 * WRAP + 20) == 5 * WRAP - 10


def test_a_picture_too_small_for_the_cells_is_refused():
    with pytest.raises(ValueError, match="cannot hold"):
        read_clock(b"\0" * 10, 5, 2)

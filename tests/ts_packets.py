"""MPEG-TS packets built by hand, for tests that need exact tables and PES headers (ffmpeg makes
the real streams; these make the damaged ones)."""

from __future__ import annotations

import struct

VIDEO_PID, AUDIO_PID, PMT_PID = 0x100, 0x101, 0x1000


def packet(pid: int, payload: bytes, *, start: bool, counter: int) -> bytes:
    header = bytes([0x47, (0x40 if start else 0) | pid >> 8, pid & 0xFF, 0x10 | counter & 0x0F])
    return header + payload + b"\xff" * (184 - len(payload))


def psi(table_id: int, body: bytes) -> bytes:
    """A section with its pointer field; the CRC is not checked, so zeros stand for it."""
    length = 5 + len(body) + 4
    return b"\x00" + bytes([table_id, 0xB0 | length >> 8, length & 0xFF, 0, 1, 0xC1, 0, 0]) + body + b"\x00" * 4


def pat() -> bytes:
    return packet(0, psi(0x00, struct.pack(">HH", 1, 0xE000 | PMT_PID)), start=True, counter=0)


def pmt(streams: list[tuple[int, int]], counter: int) -> bytes:
    body = struct.pack(">HH", 0xE000 | VIDEO_PID, 0xF000) + b"".join(
        struct.pack(">BHH", kind, 0xE000 | pid, 0xF000) for kind, pid in streams
    )
    return packet(PMT_PID, psi(0x02, body), start=True, counter=counter)


def timestamp(prefix: int, ticks: int) -> bytes:
    return bytes(
        [
            prefix << 4 | (ticks >> 29) & 0x0E | 1,
            ticks >> 22 & 0xFF,
            (ticks >> 14) & 0xFE | 1,
            ticks >> 7 & 0xFF,
            (ticks << 1) & 0xFE | 1,
        ]
    )


def pes(pts: int, dts: int, payload: bytes, declared: int = 0) -> bytes:
    return (
        b"\x00\x00\x01\xe0"
        + struct.pack(">H", declared)
        + b"\x80\xc0\x0a"
        + timestamp(3, pts)
        + timestamp(1, dts)
        + payload
    )

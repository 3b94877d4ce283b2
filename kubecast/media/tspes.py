"""PES packets of an MPEG-TS (ISO/IEC 13818-1 2.4.3.6): frames, their timestamps, pure.

The demuxer (``kubecast.media.mpegts``) gathers the payloads of one PES per PID
(``PendingPes``) and hands the whole packet to ``parse_pes`` once the next one starts: it
checks the start code and the header, reads PTS and DTS and unwraps them (``Unwrap``) on the
time base the frame started on.  Timestamps stay in 90 kHz ticks, with the 33-bit wrap
unfolded so they only grow.
"""

from __future__ import annotations

from dataclasses import dataclass, field

WRAP = 1 << 33
MAX_PES = 8 << 20  # a video frame larger than this is damage, not media
MAX_COMPOSITION = 10 * 90_000  # PTS this far after DTS is a damaged header (B-frame delays are a few frames)


@dataclass
class PesFrame:
    kind: str  # "video", "audio" or "id3"
    pid: int
    pts: int  # 90 kHz, unwrapped
    dts: int
    data: bytes  # Annex B access unit, one or more ADTS frames, or ID3 tags
    random_access: bool = False  # the adaptation field's random_access_indicator
    timebase: int = 0  # signalled PCR discontinuities before the frame started
    track: int = 0  # audio: the PID's place among the program's AAC PIDs


@dataclass
class PendingPes:
    """A PES being assembled on one PID."""

    kind: str  # what the PMT said the PID carries when the frame started (a new PMT may drop the PID)
    buffer: bytearray = field(default_factory=bytearray)
    random_access: bool = False
    damaged: bool = False
    unwrap: Unwrap | None = None  # that of the time base it started on
    timebase: int = 0


def _timestamp(data: bytes, offset: int) -> int:
    b = data[offset : offset + 5]
    return ((b[0] >> 1) & 0x07) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1


class Unwrap:
    """33-bit timestamps -> a monotonic count, assuming steps of less than half the range."""

    def __init__(self) -> None:
        self.base = 0
        self.last: int | None = None

    def __call__(self, value: int) -> int:
        if self.last is not None:
            if value < self.last - WRAP // 2:
                self.base += WRAP
            elif value > self.last + WRAP // 2 and self.base >= WRAP:
                self.base -= WRAP  # a frame from just before the wrap, arriving late
        self.last = value
        return value + self.base

    def peek(self, value: int) -> int:
        """``value`` unwrapped as the next frame's would be, without moving on (a splice time
        lies ahead of the frames, and must not make them look wrapped)."""
        base = self.base
        if self.last is not None:
            if value < self.last - WRAP // 2:
                base += WRAP
            elif value > self.last + WRAP // 2 and base >= WRAP:
                base -= WRAP
        return value + base


def parse_pes(kind: str, pid: int, data: bytes, random_access: bool, unwrap: Unwrap) -> PesFrame | None:
    if len(data) < 9 or data[:3] != b"\x00\x00\x01":
        return None
    flags = data[7] >> 6
    header_length = data[8]
    body = 9 + header_length
    declared = data[4] << 8 | data[5]
    if declared and 6 + declared < len(data):
        data = data[: 6 + declared]  # stuffing after the declared length
    if flags & 0x02 == 0 or len(data) < body or header_length < 5:
        return None  # no PTS (nothing to place the frame with), or a header longer than the packet
    pts = _timestamp(data, 9)
    dts = _timestamp(data, 14) if flags == 0x03 and header_length >= 10 else pts
    pts, dts = unwrap(pts), unwrap(dts)
    if pts < dts or pts - dts > MAX_COMPOSITION:
        pts = dts  # a damaged header; never a negative or absurd composition offset
    return PesFrame(kind, pid, pts, dts, data[body:], random_access)

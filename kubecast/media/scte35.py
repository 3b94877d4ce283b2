"""SCTE-35 ``splice_info_section`` (ANSI/SCTE 35 2023, section 9): a strict, pure parser and a builder.

A contribution carries ad markers as SCTE-35 sections: on their own PID in MPEG-TS (PMT
stream type 0x86), base64 in an RTMP ``onCuePoint`` data message, or (a manual cue) none at
all.  ``parse_splice_info`` reads one section and says what it asks for: a splice out of the
network (an ad break starts) or back in, at which PTS, for how long.  It is strict, because a
damaged marker that is acted on puts an ad over the programme: the CRC-32 must match, every
field must lie inside the section, an encrypted section (whose command cannot be read without
the key) is refused, and so is anything that is not a ``splice_null``, ``splice_insert`` or
``time_signal``.  Every refusal is a ``Scte35Error`` whose ``reason`` is one of a few fixed
words (a metric label); callers log it, count it and drop the section — they never let it
reach the media.

``splice_insert`` states out/in itself (``out_of_network_indicator``) and its duration in a
``break_duration``.  ``time_signal`` only states a time; what happens then is in its
``segmentation_descriptor``: the type ids of ad breaks and placement opportunities (a start
type is even, its end the odd one after it) give out and in, ``segmentation_duration`` the
length.  A ``time_signal`` whose descriptors name no such segment (a programme start, a
chapter) is a valid section that is not a splice: ``SpliceInfo.splice`` is None.

``splice_insert_section`` builds the section of a ``splice_insert`` (for a cue that arrived
without one: a manual cue, an ``onCuePoint`` with only a time), so that every cue reaches the
manifests with its binary form, as DASH's ``urn:scte:scte35:2014:xml+bin`` and HLS's
``SCTE35-OUT`` carry it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

TABLE_ID = 0xFC
PTS_WRAP = 1 << 33
MAX_SECTION = 3 + 0xFFF  # section_length is 12 bits
SPLICE_NULL, SPLICE_INSERT, TIME_SIGNAL = 0x00, 0x05, 0x06
SEGMENTATION_DESCRIPTOR = 0x02
CUEI = 0x43554549  # "CUEI": the identifier of every SCTE-35 splice descriptor
# segmentation_type_id of the segments that take the viewer away from the programme (ad breaks,
# placement opportunities, overlays): each is a start, and the id after it is its end.
BREAK_STARTS = frozenset({0x22, 0x30, 0x32, 0x34, 0x36, 0x38, 0x3A, 0x3C, 0x3E, 0x44, 0x46})
BREAK_ENDS = frozenset(start + 1 for start in BREAK_STARTS)


class Scte35Error(ValueError):
    """A section that must not be acted on; ``reason`` is a fixed word for metrics."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Splice:
    """What a section asks for: out of the network (``out``) or back in, at ``pts`` (90 kHz,
    ``pts_adjustment`` applied, modulo 2**33; None: immediately), for ``duration`` ticks."""

    event_id: int
    out: bool
    pts: int | None
    duration: int | None


@dataclass(frozen=True, slots=True)
class SpliceInfo:
    command_type: int
    pts_adjustment: int
    splice: Splice | None  # None: a splice_null (heartbeat), a cancel, or a time_signal of no break


_CRC_TABLE: list[int] = []
for _byte in range(256):
    _value = _byte << 24
    for _ in range(8):
        _value = ((_value << 1) ^ 0x04C11DB7) if _value & 0x80000000 else _value << 1
    _CRC_TABLE.append(_value & 0xFFFFFFFF)


def crc32_mpeg2(data: bytes) -> int:
    """CRC-32/MPEG-2 (ISO/IEC 13818-1 annex A): over a whole section including its CRC it is 0."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[(crc >> 24) ^ byte]
    return crc


class _Reader:
    """Bounds-checked reads of a command or descriptor body: running past its end is a refusal."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.position, self.what = data, 0, what

    def take(self, count: int) -> bytes:
        if self.position + count > len(self.data):
            raise Scte35Error("truncated", f"the {self.what} ends inside a field")
        chunk = self.data[self.position : self.position + count]
        self.position += count
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def uint(self, count: int) -> int:
        return int.from_bytes(self.take(count), "big")


def _splice_time(reader: _Reader) -> int | None:
    first = reader.u8()
    if not first & 0x80:
        return None  # time_specified_flag 0: immediately
    return (first & 0x01) << 32 | reader.uint(4)


def _splice_insert(body: bytes) -> Splice | None:
    reader = _Reader(body, "splice_insert")
    event_id = reader.uint(4)
    if reader.u8() & 0x80:
        return None  # splice_event_cancel_indicator: an earlier event is called off
    flags = reader.u8()
    out, program, has_duration, immediate = bool(flags & 0x80), bool(flags & 0x40), flags & 0x20, flags & 0x10
    pts: int | None = None
    if program:
        if not immediate:
            pts = _splice_time(reader)
    else:
        # Component splices: every component at its own time; the first one stands for the picture.
        for _ in range(reader.u8()):
            reader.u8()
            if not immediate:
                time = _splice_time(reader)
                pts = time if pts is None else pts
    duration: int | None = None
    if has_duration:
        value = reader.uint(5)
        duration = value & (PTS_WRAP - 1)
    reader.take(4)  # unique_program_id, avail_num, avails_expected
    return Splice(event_id, out, pts, duration)


def _segmentation(descriptors: bytes) -> tuple[int, bool, int | None] | None:
    """(event id, out, duration) of the first segmentation descriptor that starts or ends a break."""
    reader = _Reader(descriptors, "descriptor loop")
    while reader.position < len(descriptors):
        tag, length = reader.u8(), reader.u8()
        body = _Reader(reader.take(length), "segmentation_descriptor")
        if tag != SEGMENTATION_DESCRIPTOR or length < 4 or body.uint(4) != CUEI:
            continue
        event_id = body.uint(4)
        if body.u8() & 0x80:
            continue  # segmentation_event_cancel_indicator
        flags = body.u8()
        if not flags & 0x80:  # program_segmentation_flag 0: component offsets
            body.take(6 * body.u8())  # component_tag, reserved, pts_offset each
        duration = body.uint(5) if flags & 0x40 else None
        body.u8()  # segmentation_upid_type
        body.take(body.u8())
        type_id = body.u8()
        body.take(2)  # segment_num, segments_expected
        if type_id in BREAK_STARTS or type_id in BREAK_ENDS:
            return event_id, type_id in BREAK_STARTS, duration
    return None


def parse_splice_info(section: bytes) -> SpliceInfo:
    """One whole ``splice_info_section`` (from its table_id to its CRC_32, nothing after it)."""
    if len(section) < 3:
        raise Scte35Error("truncated", f"{len(section)} bytes are no section header")
    if section[0] != TABLE_ID:
        raise Scte35Error("table_id", f"table_id {section[0]:#04x} is not a splice_info_section (0xfc)")
    length = 3 + ((section[1] & 0x0F) << 8 | section[2])
    if len(section) < length:
        raise Scte35Error("truncated", f"the section states {length} bytes and {len(section)} arrived")
    if len(section) > length:
        raise Scte35Error("length", f"{len(section) - length} bytes follow the section's stated end")
    if length < 17:
        raise Scte35Error("truncated", f"a section of {length} bytes cannot hold a splice command and its CRC")
    if crc32_mpeg2(section) != 0:
        raise Scte35Error("crc", "CRC_32 mismatch: the section is damaged")
    if section[1] & 0xC0:
        raise Scte35Error("syntax", "section_syntax_indicator and private_indicator must be 0")
    if section[3] != 0:
        raise Scte35Error("version", f"protocol_version {section[3]} is not 0")
    if section[4] & 0x80:
        raise Scte35Error("encrypted", "the splice command is encrypted; no key to read it")
    pts_adjustment = (section[4] & 0x01) << 32 | struct.unpack_from(">I", section, 5)[0]
    command_length = (section[11] & 0x0F) << 8 | section[12]
    command_type = section[13]
    body_start = 14
    end = length - 4  # the CRC
    if command_length == 0xFFF:
        raise Scte35Error("length", "splice_command_length 0xfff (legacy, unstated) is not accepted")
    if body_start + command_length + 2 > end:
        raise Scte35Error("truncated", f"a splice command of {command_length} bytes overruns the section")
    body = section[body_start : body_start + command_length]
    loop_at = body_start + command_length
    loop_length = section[loop_at] << 8 | section[loop_at + 1]
    if loop_at + 2 + loop_length != end:
        raise Scte35Error("length", "the descriptor loop does not end where the CRC begins")
    descriptors = section[loop_at + 2 : end]
    splice: Splice | None
    if command_type == SPLICE_NULL:
        if command_length:
            raise Scte35Error("length", "a splice_null with a body")
        splice = None
    elif command_type == SPLICE_INSERT:
        splice = _splice_insert(body)
    elif command_type == TIME_SIGNAL:
        reader = _Reader(body, "time_signal")
        time = _splice_time(reader)
        segment = _segmentation(descriptors)
        splice = Splice(segment[0], segment[1], time, segment[2]) if segment is not None else None
    else:
        raise Scte35Error("command", f"splice_command_type {command_type:#04x} is not splice_insert or time_signal")
    if splice is not None and splice.pts is not None:
        splice = Splice(splice.event_id, splice.out, (splice.pts + pts_adjustment) % PTS_WRAP, splice.duration)
    return SpliceInfo(command_type, pts_adjustment, splice)


def splice_insert_section(*, event_id: int, out: bool, pts: int | None, duration: int | None) -> bytes:
    """A ``splice_insert`` section (program splice, no descriptors) for a cue that came without one."""
    flags = 0x40 | (0x80 if out else 0) | (0x20 if duration is not None else 0) | (0x10 if pts is None else 0) | 0x0F
    body = struct.pack(">IBB", event_id & 0xFFFFFFFF, 0x7F, flags)
    if pts is not None:
        value = pts % PTS_WRAP
        body += bytes([0xFE | value >> 32]) + struct.pack(">I", value & 0xFFFFFFFF)
    if duration is not None:
        value = min(duration, PTS_WRAP - 1)
        body += bytes([0x80 | 0x7E | value >> 32]) + struct.pack(">I", value & 0xFFFFFFFF)  # auto_return
    body += struct.pack(">HBB", 0, 0, 0)
    after_length = (
        bytes([0, 0]) + struct.pack(">I", 0) + bytes([0, 0xFF, 0xF0 | len(body) >> 8, len(body) & 0xFF, SPLICE_INSERT])
    )
    payload = after_length + body + b"\x00\x00"  # descriptor_loop_length 0
    section_length = len(payload) + 4
    header = bytes([TABLE_ID, 0x30 | section_length >> 8, section_length & 0xFF])  # sap_type 3: not specified
    section = header + payload
    return section + struct.pack(">I", crc32_mpeg2(section))

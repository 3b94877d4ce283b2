"""CEA-608/708 closed captions as H.264 carries them: ATSC A/53 ``cc_data`` in SEI messages.

A contribution encoder puts each picture's caption bytes in an SEI message of that picture
(``user_data_registered_itu_t_t35``, country 0xB5, provider 0x0031, ``GA94``, type 3), as
``cc_data``: up to 31 triplets of (marker bits, valid flag, type) and two bytes.  Types 0 and 1
are CEA-608 byte pairs of field 1 and field 2; types 2 and 3 carry CEA-708 (DTVCC) packets.

Pass-through keeps the samples as they came, SEI included, and only reads them to learn which
608 channels a track carries (``CaptionChannels``), which the manifests signal.  Live encoding
gets each picture's ``cc_data`` from FFmpeg's decoder (in presentation order) and writes it back
into the picture it encodes with ``sei_nal`` and ``insert_sei``, so a repeated picture does not
repeat its captions and a dropped one passes them on.

Everything here reads bytes a stranger sent: malformed input raises ``CaptionError`` and the
caller drops the captions of that picture, never the picture.
"""

from __future__ import annotations

import struct
from typing import Literal

CaptionChannel = Literal["CC1", "CC2", "CC3", "CC4"]
_CHANNELS: tuple[CaptionChannel, ...] = ("CC1", "CC2", "CC3", "CC4")

NAL_SEI = 6
_VCL = range(1, 6)  # coded slice NAL unit types: the SEI must come before the picture's first
_USER_DATA_REGISTERED = 4
_GA94 = bytes([0xB5, 0x00, 0x31]) + b"GA94" + bytes([0x03])
_PROCESS_CC_DATA = 0x40
MAX_CC_COUNT = 31  # cc_count is 5 bits
_CC_VALID = 0x04
_FIELD_1, _FIELD_2 = 0, 1  # cc_type of CEA-608 pairs


class CaptionError(ValueError):
    """Caption bytes that are not well formed (a truncated SEI or ``cc_data``, a bad NAL length)."""


def _unescape(data: bytes) -> bytes:
    """The RBSP of a NAL unit: every emulation prevention byte (00 00 03) removed."""
    if b"\x00\x00\x03" not in data:
        return data
    out = bytearray()
    zeros = 0
    for byte in data:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _escape(rbsp: bytes) -> bytes:
    """Emulation prevention: 00 00 followed by a byte up to 03 gets an 03 between."""
    out = bytearray()
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _sei_messages(rbsp: bytes) -> list[tuple[int, bytes]]:
    """(payload type, payload) of every message of an SEI RBSP (after the NAL header)."""
    messages = []
    position = 0
    while position < len(rbsp):
        if rbsp[position] == 0x80 and not rbsp[position + 1 :].strip(b"\x00"):
            break  # rbsp_trailing_bits (and any cabac_zero_words)
        values = []
        for _ in range(2):  # payload type, then payload size: runs of 0xFF, then a last byte
            value = 0
            while position < len(rbsp) and rbsp[position] == 0xFF:
                value += 255
                position += 1
            if position >= len(rbsp):
                raise CaptionError("an SEI message cut short in its header")
            value += rbsp[position]
            position += 1
            values.append(value)
        payload_type, size = values
        if position + size > len(rbsp):
            raise CaptionError(f"an SEI message of {size} bytes with {len(rbsp) - position} left")
        messages.append((payload_type, rbsp[position : position + size]))
        position += size
    return messages


def cc_data_of_sei(nal: bytes) -> bytes:
    """The ``cc_data`` triplets of one SEI NAL unit (with its header byte); empty when it has none."""
    triplets = b""
    for payload_type, payload in _sei_messages(_unescape(nal[1:])):
        if payload_type != _USER_DATA_REGISTERED or not payload.startswith(_GA94):
            continue
        body = payload[len(_GA94) :]
        if len(body) < 2:
            raise CaptionError("A/53 caption data without its cc_count")
        if not body[0] & _PROCESS_CC_DATA:
            continue
        count = body[0] & 0x1F
        data = body[2 : 2 + 3 * count]  # after em_data
        if len(data) < 3 * count:
            raise CaptionError(f"A/53 caption data of {count} triplets cut short at {len(data)} bytes")
        triplets += data
    return triplets


def cc_data_of_sample(sample: bytes) -> bytes:
    """The ``cc_data`` triplets of an access unit in MP4 form (4-byte NAL lengths)."""
    triplets = b""
    position = 0
    while position < len(sample):
        if position + 4 > len(sample):
            raise CaptionError("a NAL unit length cut short")
        (length,) = struct.unpack_from(">I", sample, position)
        position += 4
        if length == 0 or position + length > len(sample):
            raise CaptionError(f"a NAL unit of {length} bytes with {len(sample) - position} left")
        if sample[position] & 0x1F == NAL_SEI:
            triplets += cc_data_of_sei(sample[position : position + length])
        position += length
    return triplets


def valid_triplets(cc_data: bytes) -> bytes:
    """The triplets that carry data (``cc_valid`` set), whole ones only: padding says nothing."""
    return b"".join(cc_data[i : i + 3] for i in range(0, len(cc_data) - len(cc_data) % 3, 3) if cc_data[i] & _CC_VALID)


def sei_nal(cc_data: bytes) -> bytes:
    """An SEI NAL unit carrying ``cc_data`` (at most ``MAX_CC_COUNT`` whole triplets) as A/53 does."""
    count = len(cc_data) // 3
    if count > MAX_CC_COUNT or len(cc_data) % 3:
        raise ValueError(f"cc_data of {len(cc_data)} bytes is not 1 to {MAX_CC_COUNT} triplets")
    payload = _GA94 + bytes([_PROCESS_CC_DATA | count, 0xFF]) + cc_data + b"\xff"
    size = len(payload)
    message = bytes([_USER_DATA_REGISTERED]) + b"\xff" * (size // 255) + bytes([size % 255]) + payload
    return bytes([NAL_SEI]) + _escape(message + b"\x80")


def insert_sei(sample: bytes, nal: bytes) -> bytes:
    """``nal`` added to an access unit in MP4 form, before its first coded slice (H.264 7.4.1.2.3)."""
    position = 0
    while position + 4 < len(sample):
        (length,) = struct.unpack_from(">I", sample, position)
        if sample[position + 4] & 0x1F in _VCL:
            break
        position += 4 + length
    return sample[:position] + struct.pack(">I", len(nal)) + nal + sample[position:]


def _odd_parity(byte: int) -> bool:
    return bin(byte).count("1") % 2 == 1


def channels_of(cc_data: bytes) -> set[CaptionChannel]:
    """The CEA-608 channels (``CC1`` to ``CC4``) whose control codes ``cc_data`` holds.

    A caption always starts with control codes (resume caption loading, roll-up, a preamble
    address), and their first byte says the data channel (bit 3); field 2 holds CC3 and CC4.
    Text bytes name no channel, and pairs that fail the odd parity check are not read."""
    found: set[CaptionChannel] = set()
    for i in range(0, len(cc_data) - 2, 3):
        marker, first, second = cc_data[i], cc_data[i + 1], cc_data[i + 2]
        field = marker & 0x03
        if not marker & _CC_VALID or field not in (_FIELD_1, _FIELD_2):
            continue
        if not (_odd_parity(first) and _odd_parity(second)):
            continue
        code = first & 0x7F
        if 0x10 <= code <= 0x1F and second & 0x7F >= 0x20:
            found.add(_CHANNELS[2 * field + (1 if code & 0x08 else 0)])
    return found


class CaptionChannels:
    """The 608 channels one track has carried so far.  ``found`` is replaced, never changed, so
    encoding threads may read it while the decoding thread feeds."""

    def __init__(self) -> None:
        self.found: tuple[CaptionChannel, ...] = ()

    def feed(self, cc_data: bytes) -> None:
        new = channels_of(cc_data)
        if not new.issubset(self.found):
            self.found = tuple(sorted(new.union(self.found)))

"""H.264 bitstream forms: Annex B (start codes, what libx264 emits) and the length-prefixed
NAL units with an avcC record that MP4 and FLV carry."""

from __future__ import annotations

import struct

_START_CODE = b"\x00\x00\x01"
NAL_SPS, NAL_PPS, NAL_AUD = 7, 8, 9


class H264Error(ValueError):
    """Parameter sets that cannot make an avcC record (missing, truncated, or too many)."""


def split_annexb(data: bytes) -> list[bytes]:
    """NAL units of an Annex B stream, without their start codes."""
    starts: list[int] = []  # bytes.find scans a frame several times faster than a regular expression
    position = data.find(_START_CODE)
    while position != -1:
        starts.append(position + 3)
        position = data.find(_START_CODE, position + 3)
    units = []
    for index, start in enumerate(starts):
        end = starts[index + 1] - 3 if index + 1 < len(starts) else len(data)
        unit = data[start:end]
        if index + 1 < len(starts):
            unit = unit.rstrip(b"\x00") if unit.endswith(b"\x00") else unit  # the 4-byte start code's leading zero
        if unit:
            units.append(unit)
    return units


def is_annexb(data: bytes) -> bool:
    return data.startswith(b"\x00\x00\x01") or data.startswith(b"\x00\x00\x00\x01")


def to_length_prefixed(data: bytes) -> bytes:
    """An access unit for MP4: 4-byte lengths, access-unit delimiters dropped (CMAF has no use for them)."""
    if not is_annexb(data):
        return data
    return length_prefixed(split_annexb(data))


def length_prefixed(units: list[bytes]) -> bytes:
    """NAL units (``split_annexb``) as MP4 carries them: 4-byte lengths, access-unit delimiters dropped."""
    parts: list[bytes] = []
    for unit in units:
        if unit[0] & 0x1F != NAL_AUD:
            parts += (struct.pack(">I", len(unit)), unit)
    return b"".join(parts)


def avcc_from_annexb(extradata: bytes) -> bytes:
    """An AVCDecoderConfigurationRecord from Annex B SPS/PPS (libx264's global header)."""
    if not is_annexb(extradata):
        return extradata  # already avcC
    units = split_annexb(extradata)
    sps = [u for u in units if u[0] & 0x1F == NAL_SPS and len(u) >= 4]  # profile, constraints, level after the header
    pps = [u for u in units if u[0] & 0x1F == NAL_PPS]
    if not sps or not pps:
        raise H264Error("H.264 header without SPS or PPS")
    if len(sps) > 31 or len(pps) > 255 or any(len(unit) > 0xFFFF for unit in sps + pps):
        raise H264Error("H.264 parameter sets that no avcC record can hold")
    record = bytes([1, sps[0][1], sps[0][2], sps[0][3], 0xFF, 0xE0 | len(sps)])
    record += b"".join(struct.pack(">H", len(s)) + s for s in sps)
    record += bytes([len(pps)]) + b"".join(struct.pack(">H", len(p)) + p for p in pps)
    return record

"""AAC in ADTS framing (what MPEG-TS carries) -> raw AAC frames and an AudioSpecificConfig."""

from __future__ import annotations

from dataclasses import dataclass

SAMPLE_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
SAMPLES_PER_FRAME = 1024


@dataclass(frozen=True)
class AdtsFrame:
    config: bytes  # AudioSpecificConfig (ISO/IEC 14496-3), two bytes
    sample_rate: int
    channels: int
    payload: bytes  # one raw AAC frame


def audio_specific_config(object_type: int, rate_index: int, channels: int) -> bytes:
    value = object_type << 11 | rate_index << 7 | channels << 3
    return value.to_bytes(2, "big")


def split_adts(data: bytes) -> tuple[list[AdtsFrame], int]:
    """The ADTS frames in ``data`` and the number of bytes that were not one (damage)."""
    frames: list[AdtsFrame] = []
    position, damaged = 0, 0
    while position + 7 <= len(data):
        header = data[position : position + 7]
        if header[0] != 0xFF or header[1] & 0xF6 != 0xF0:
            next_sync = data.find(b"\xff", position + 1)
            skip = (len(data) if next_sync == -1 else next_sync) - position
            damaged += skip
            position += skip
            continue
        protection_absent = header[1] & 0x01
        object_type = (header[2] >> 6) + 1
        rate_index = (header[2] >> 2) & 0x0F
        channels = (header[2] & 0x01) << 2 | header[3] >> 6
        length = (header[3] & 0x03) << 11 | header[4] << 3 | header[5] >> 5
        header_length = 7 if protection_absent else 9
        if rate_index >= len(SAMPLE_RATES) or length < header_length or position + length > len(data):
            break  # a truncated or impossible frame: the rest of the PES is lost
        frames.append(
            AdtsFrame(
                audio_specific_config(object_type, rate_index, channels),
                SAMPLE_RATES[rate_index],
                channels,
                data[position + header_length : position + length],
            )
        )
        position += length
    return frames, damaged + len(data) - position

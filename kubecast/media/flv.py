"""FLV tag bodies: what RTMP audio and video messages carry.

The RTMP ingest parses them (``parse_video``, ``parse_audio``) into the records it hands to the
encoder (``kubecast.media.contribution``); nothing after the RTMP ingest sees FLV.
"""

from __future__ import annotations

from dataclasses import dataclass

VIDEO_CODEC_AVC = 7
AUDIO_FORMAT_AAC = 10


class FlvError(ValueError):
    """A tag body that is not well-formed."""


@dataclass(frozen=True)
class VideoPacket:
    codec_id: int
    keyframe: bool
    is_sequence_header: bool  # AVCDecoderConfigurationRecord rather than NAL units
    composition_offset: int  # ms, pts - dts
    payload: bytes  # AVCC config record, or length-prefixed NAL units
    end_of_sequence: bool = False  # AVC end-of-sequence marker: carries no picture


@dataclass(frozen=True)
class AudioPacket:
    sound_format: int
    is_sequence_header: bool  # AudioSpecificConfig rather than a raw AAC frame
    payload: bytes


def parse_video(data: bytes) -> VideoPacket:
    if len(data) < 1:
        raise FlvError("empty video tag")
    frame_type, codec_id = data[0] >> 4, data[0] & 0x0F
    if codec_id != VIDEO_CODEC_AVC:
        return VideoPacket(codec_id, frame_type == 1, False, 0, data[1:])
    if len(data) < 5:
        raise FlvError("truncated AVC video tag")
    packet_type = data[1]
    cts = int.from_bytes(data[2:5], "big", signed=True)
    if packet_type == 2:
        return VideoPacket(codec_id, False, False, 0, b"", end_of_sequence=True)
    return VideoPacket(codec_id, frame_type == 1, packet_type == 0, cts, data[5:])


def parse_audio(data: bytes) -> AudioPacket:
    if len(data) < 1:
        raise FlvError("empty audio tag")
    sound_format = data[0] >> 4
    if sound_format != AUDIO_FORMAT_AAC:
        return AudioPacket(sound_format, False, data[1:])
    if len(data) < 2:
        raise FlvError("truncated AAC audio tag")
    return AudioPacket(sound_format, data[1] == 0, data[2:])

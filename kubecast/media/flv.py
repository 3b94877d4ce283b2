"""FLV tag bodies: what RTMP audio and video messages carry.

The RTMP ingest parses them (``parse_video``, ``parse_audio``) into the records it hands to the
encoder (``kubecast.media.contribution``); nothing after the RTMP ingest sees FLV.
"""

from __future__ import annotations

from dataclasses import dataclass

VIDEO_CODEC_AVC = 7
AUDIO_FORMAT_AAC = 10
AUDIO_FORMAT_EX_HEADER = 9  # Enhanced RTMP: the codec is named by a FourCC after the packet type
AAC_FOURCC = b"mp4a"

# Enhanced RTMP v2 (veovera.org "enhanced-rtmp-v2"): audio packet and multitrack types
AUDIO_SEQUENCE_START, AUDIO_CODED_FRAMES, AUDIO_MULTITRACK, AUDIO_MOD_EX = 0, 1, 5, 7
ONE_TRACK, MANY_TRACKS, MANY_TRACKS_MANY_CODECS = 0, 1, 2


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
    track: int = 0  # an Enhanced RTMP multitrack tag's track id (0: a legacy or single-track tag)
    fourcc: bytes | None = None  # an Enhanced RTMP tag's codec (None: a legacy tag, ``sound_format``)


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


def parse_audio_tracks(data: bytes) -> list[AudioPacket]:
    """The audio an FLV audio tag body carries, one packet per track: a legacy tag's one, or an
    Enhanced RTMP tag's (v2 multitrack: OBS 30 and FFmpeg 8 send each further audio track as
    its own track id).  Only sequence starts and coded frames are returned: a sequence end or a
    multichannel configuration carries nothing the encoder uses.  A ModEx packet (a timestamp
    offset in nanoseconds) is refused: nothing here sends one for audio."""
    if len(data) < 1:
        raise FlvError("empty audio tag")
    if data[0] >> 4 != AUDIO_FORMAT_EX_HEADER:
        return [parse_audio(data)]
    packet_type, position = data[0] & 0x0F, 1
    multitrack = ONE_TRACK
    if packet_type == AUDIO_MOD_EX:
        raise FlvError("Enhanced RTMP ModEx audio packets are not supported")
    if packet_type == AUDIO_MULTITRACK:
        if len(data) < 2:
            raise FlvError("truncated multitrack audio tag")
        multitrack, packet_type, position = data[1] >> 4, data[1] & 0x0F, 2
        if multitrack not in (ONE_TRACK, MANY_TRACKS, MANY_TRACKS_MANY_CODECS):
            raise FlvError(f"unknown audio multitrack type {multitrack}")
    fourcc = None
    if multitrack != MANY_TRACKS_MANY_CODECS:
        fourcc, position = data[position : position + 4], position + 4
    packets = []
    while True:
        if multitrack == MANY_TRACKS_MANY_CODECS:
            fourcc, position = data[position : position + 4], position + 4
        track = 0
        if data[0] & 0x0F == AUDIO_MULTITRACK:
            if position >= len(data):
                raise FlvError("truncated multitrack audio tag")
            track, position = data[position], position + 1
        end = len(data)
        if data[0] & 0x0F == AUDIO_MULTITRACK and multitrack != ONE_TRACK:
            if position + 3 > len(data):
                raise FlvError("truncated multitrack audio tag")
            end = position + 3 + int.from_bytes(data[position : position + 3], "big")
            position += 3
            if end > len(data):
                raise FlvError("an audio track's size runs past its tag")
        if fourcc is None or len(fourcc) < 4:
            raise FlvError("truncated Enhanced RTMP audio tag")
        if packet_type in (AUDIO_SEQUENCE_START, AUDIO_CODED_FRAMES):
            packets.append(
                AudioPacket(
                    AUDIO_FORMAT_EX_HEADER, packet_type == AUDIO_SEQUENCE_START, data[position:end], track, fourcc
                )
            )
        position = end
        if position >= len(data):
            return packets

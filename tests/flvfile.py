"""FLV files, as Debian's ffmpeg writes them: the tests read them to feed the RTMP ingest's tag
parsers and write them to publish altered streams with ffmpeg.  The pipeline itself never reads
or writes an FLV file: RTMP carries tag bodies, and the hand-over to the encoder is records."""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from kubecast.media.flv import VIDEO_CODEC_AVC, FlvError

FLV_HEADER = b"FLV\x01\x05\x00\x00\x00\x09" + b"\x00\x00\x00\x00"  # audio+video flags, PreviousTagSize0
MAX_TAG_SIZE = 8 * 1024 * 1024  # above any sane frame (a 4K intra picture is a few MB): bigger means corrupt


class TagType(enum.IntEnum):
    AUDIO = 8
    VIDEO = 9
    SCRIPT = 18


@dataclass(frozen=True)
class FlvTag:
    type: TagType
    timestamp: int  # milliseconds, 32-bit (RTMP extended timestamps included)
    data: bytes
    # Which rendition of a multi-bitrate contribution: carried in the tag's StreamID field,
    # which FLV files leave 0, so a single-bitrate contribution stays a plain FLV stream.
    track: int = 0

    def encode(self) -> bytes:
        size = len(self.data)
        header = bytes([self.type]) + size.to_bytes(3, "big")
        ts = self.timestamp & 0xFFFFFFFF
        header += (ts & 0xFFFFFF).to_bytes(3, "big") + bytes([ts >> 24]) + self.track.to_bytes(3, "big")
        return header + self.data + struct.pack(">I", 11 + size)


class FlvReader:
    """Incremental parser: ``feed(bytes)`` then iterate ``tags()``."""

    def __init__(self, expect_header: bool = True) -> None:
        self._buffer = bytearray()
        self._need_header = expect_header

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def tags(self) -> Iterator[FlvTag]:
        buf = self._buffer
        if self._need_header:
            if len(buf) < 9:
                return
            if buf[:3] != b"FLV":
                raise FlvError("stream does not start with an FLV header")
            header_size = struct.unpack(">I", buf[5:9])[0]
            if header_size < 9 or header_size > 1024:
                raise FlvError(f"implausible FLV header size {header_size}")
            if len(buf) < header_size + 4:
                return
            del buf[: header_size + 4]
            self._need_header = False
        while len(buf) >= 11:
            tag_type = buf[0] & 0x1F
            size = int.from_bytes(buf[1:4], "big")
            if tag_type not in (8, 9, 18):
                raise FlvError(f"unknown FLV tag type {tag_type}")
            if size > MAX_TAG_SIZE:
                raise FlvError(f"FLV tag of {size} bytes exceeds the limit")
            if len(buf) < 11 + size + 4:
                return
            timestamp = int.from_bytes(buf[4:7], "big") | (buf[7] << 24)
            track = int.from_bytes(buf[8:11], "big")
            data = bytes(buf[11 : 11 + size])
            del buf[: 11 + size + 4]
            yield FlvTag(TagType(tag_type), timestamp, data, track)


def video_tag_body(*, keyframe: bool, sequence_header: bool, composition_offset: int, payload: bytes) -> bytes:
    first = ((1 if keyframe else 2) << 4) | VIDEO_CODEC_AVC
    return bytes([first, 0 if sequence_header else 1]) + composition_offset.to_bytes(3, "big", signed=True) + payload


def audio_tag_body(*, sequence_header: bool, payload: bytes) -> bytes:
    # AAC, 44 kHz flag, 16-bit, stereo: the flags are fixed for AAC; the real format is in the ASC
    return bytes([0xAF, 0 if sequence_header else 1]) + payload

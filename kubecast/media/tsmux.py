"""CMAF samples -> one MPEG-TS segment (HLS with TS segments for older devices), pure.

Each segment stands alone: PAT and PMT first, SPS/PPS before every key frame, audio in ADTS,
so a player can start at any segment.  Video is on PID 0x100 (also the PCR PID), audio on
0x101, and ID3 timed metadata, when the segment's time holds any, on 0x102 as Apple's "Timed
Metadata for HTTP Live Streaming" has it: stream type 0x15 with a metadata_descriptor in the PMT
(and a metadata_pointer_descriptor in its program info), each item a PES of its own
(private_stream_1, data-aligned) at its presentation time.  Continuity counters start at 0 in
each segment; HLS players treat segments as separate transport streams, so that is no
discontinuity to them.  Timestamps are the CMAF
decode and presentation times in 90 kHz, wrapped to 33 bits: a TS segment and the CMAF
segment it comes from show the same instants.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from .adts import SAMPLE_RATES

PACKET = 188
PAT_PID, PMT_PID, VIDEO_PID, AUDIO_PID, ID3_PID = 0x0000, 0x1000, 0x0100, 0x0101, 0x0102
STREAM_H264, STREAM_AAC, STREAM_METADATA = 0x1B, 0x0F, 0x15
# metadata_application_format 0xFFFF with its identifier, metadata_format 0xFF with its identifier
# (both "ID3 "), metadata_service_id 0; then, for the pointer, no locator, carried in this
# stream (flags 0x1F) of program 1; for the descriptor, no decoder configuration (0x0F).
_ID3_FORMAT = b"\xff\xffID3 \xffID3 \x00"
METADATA_POINTER = bytes([0x25, 15]) + _ID3_FORMAT + b"\x1f\x00\x01"
METADATA_DESCRIPTOR = bytes([0x26, 13]) + _ID3_FORMAT + b"\x0f"
WRAP = 1 << 33
PCR_LEAD = 9000  # 100 ms in 90 kHz
AUD = b"\x00\x00\x00\x01\x09\xf0"  # access unit delimiter: some TS decoders need one per frame


@dataclass(frozen=True)
class TsSample:
    decode_time: int  # in the track's timescale
    composition_offset: int
    keyframe: bool
    data: bytes  # length-prefixed NAL units (video) or one raw AAC frame (audio)


@dataclass(frozen=True)
class TsTag:
    """Timed metadata for a TS segment: ID3v2 tags at a presentation time."""

    time: int  # 90 kHz, on the segments' clock
    data: bytes


def _crc32_mpeg(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = (crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def _section(table_id: int, body: bytes, extension: int) -> bytes:
    section = (
        bytes([table_id])
        + struct.pack(">H", 0xB000 | (len(body) + 9))
        + struct.pack(">HBBB", extension, 0xC1, 0, 0)
        + body
    )
    return b"\x00" + section + struct.pack(">I", _crc32_mpeg(section))  # pointer field, section, CRC


def _pat() -> bytes:
    return _section(0x00, struct.pack(">HH", 1, 0xE000 | PMT_PID), 1)


def _pmt(has_audio: bool, has_id3: bool = False) -> bytes:
    streams = struct.pack(">BHH", STREAM_H264, 0xE000 | VIDEO_PID, 0xF000)
    if has_audio:
        streams += struct.pack(">BHH", STREAM_AAC, 0xE000 | AUDIO_PID, 0xF000)
    info = b""
    if has_id3:
        info = METADATA_POINTER
        streams += struct.pack(">BHH", STREAM_METADATA, 0xE000 | ID3_PID, 0xF000 | len(METADATA_DESCRIPTOR))
        streams += METADATA_DESCRIPTOR
    return _section(0x02, struct.pack(">HH", 0xE000 | VIDEO_PID, 0xF000 | len(info)) + info + streams, 1)


def _timestamp(marker: int, value: int) -> bytes:
    value %= WRAP
    return bytes(
        [
            marker << 4 | (value >> 29) & 0x0E | 1,
            (value >> 22) & 0xFF,
            (value >> 14) & 0xFE | 1,
            (value >> 7) & 0xFF,
            (value << 1) & 0xFE | 1,
        ]
    )


def _pes(stream_id: int, payload: bytes, pts: int, dts: int | None, *, aligned: bool = False) -> bytes:
    if dts is None or dts == pts:
        header = bytes([0x84 if aligned else 0x80, 0x80, 5]) + _timestamp(0x2, pts)
    else:
        header = bytes([0x80, 0xC0, 10]) + _timestamp(0x3, pts) + _timestamp(0x1, dts)
    length = len(header) + len(payload)
    # Video PES may be longer than 65535 bytes: length 0 means "until the next PES" there.
    return (
        b"\x00\x00\x01"
        + bytes([stream_id])
        + struct.pack(">H", length if length <= 0xFFFF and stream_id != 0xE0 else 0)
        + header
        + payload
    )


class _Packetizer:
    def __init__(self) -> None:
        self.counters: dict[int, int] = {}
        self.out = bytearray()

    def write(self, pid: int, payload: bytes, *, pcr: int | None = None, random_access: bool = False) -> None:
        """``pcr``: the 90 kHz base of the program clock reference (extension 0)."""
        first = True
        position = 0
        while first or position < len(payload):
            counter = self.counters.get(pid, 0)
            self.counters[pid] = (counter + 1) & 0x0F
            adaptation = b""
            if first and (pcr is not None or random_access):
                flags = (0x40 if random_access else 0) | (0x10 if pcr is not None else 0)
                field = bytes([flags])
                if pcr is not None:
                    base = pcr % WRAP
                    field += struct.pack(">IH", base >> 1, (base & 1) << 15 | 0x7E00)  # 6 reserved bits, extension 0
                adaptation = bytes([len(field)]) + field
            room = PACKET - 4 - len(adaptation)
            chunk = payload[position : position + room]
            if len(chunk) < room:  # stuffing in the adaptation field fills the last packet
                missing = room - len(chunk)
                if adaptation:
                    adaptation = bytes([adaptation[0] + missing]) + adaptation[1:] + b"\xff" * missing
                elif missing == 1:
                    adaptation = b"\x00"
                else:
                    adaptation = bytes([missing - 1, 0]) + b"\xff" * (missing - 2)
            control = 0x30 if adaptation else 0x10
            header = struct.pack(">BHB", 0x47, (0x4000 if first else 0) | pid, control | counter)
            self.out += header + adaptation + chunk
            position += len(chunk)
            first = False


def _annexb(sample: bytes, parameter_sets: bytes | None) -> bytes:
    units, position = [], 0
    while position + 4 <= len(sample):
        size = struct.unpack_from(">I", sample, position)[0]
        units.append(sample[position + 4 : position + 4 + size])
        position += 4 + size
    body = b"".join(b"\x00\x00\x00\x01" + unit for unit in units if unit and unit[0] & 0x1F != 9)
    return AUD + (parameter_sets or b"") + body


def parameter_sets(avcc: bytes) -> bytes:
    """SPS and PPS of an avcC record in Annex B."""
    out, position = bytearray(), 6
    for _ in range(avcc[5] & 0x1F):
        size = struct.unpack_from(">H", avcc, position)[0]
        out += b"\x00\x00\x00\x01" + avcc[position + 2 : position + 2 + size]
        position += 2 + size
    for _ in range(avcc[position]):
        size = struct.unpack_from(">H", avcc, position + 1)[0]
        out += b"\x00\x00\x00\x01" + avcc[position + 3 : position + 3 + size]
        position += 2 + size
    return bytes(out)


def adts_header(asc: bytes, frame_length: int) -> bytes:
    object_type = asc[0] >> 3
    rate_index = ((asc[0] & 0x07) << 1) | (asc[1] >> 7)
    channels = (asc[1] >> 3) & 0x0F
    if rate_index >= len(SAMPLE_RATES):
        raise ValueError("AudioSpecificConfig with an explicit sampling rate cannot be written as ADTS")
    length = frame_length + 7
    return bytes(
        [
            0xFF,
            0xF1,
            ((object_type - 1) & 0x03) << 6 | rate_index << 2 | channels >> 2,
            (channels & 0x03) << 6 | length >> 11,
            (length >> 3) & 0xFF,
            (length & 0x07) << 5 | 0x1F,
            0xFC,
        ]
    )


def mux_segment(
    *,
    avcc: bytes,
    video_timescale: int,
    video: list[TsSample],
    asc: bytes | None = None,
    audio_timescale: int = 48_000,
    audio: Sequence[TsSample] = (),
    id3: Sequence[TsTag] = (),
) -> bytes:
    """One self-contained TS segment of a video track and (optionally) its audio and timed metadata."""
    packets = _Packetizer()
    packets.write(PAT_PID, _pat())
    packets.write(PMT_PID, _pmt(asc is not None and bool(audio), bool(id3)))
    sps_pps = parameter_sets(avcc)

    def ticks(value: int, scale: int) -> int:
        return value * 90_000 // scale

    events = [(ticks(s.decode_time, video_timescale), 0, s) for s in video]
    if asc is not None:
        events += [(ticks(s.decode_time, audio_timescale), 1, s) for s in audio]
    events.sort(key=lambda event: (event[0], event[1]))  # interleaved by decode time, as a muxer must
    # A tag goes out with the first frame at or after its time (before it in the stream): a player
    # has it when it reaches that time.
    tags = sorted(id3, key=lambda tag: tag.time)
    for dts, kind, sample in events:
        while tags and tags[0].time <= dts:
            tag = tags.pop(0)
            packets.write(ID3_PID, _pes(0xBD, tag.data, tag.time, None, aligned=True))
        if kind == 0:
            pts = dts + ticks(sample.composition_offset, video_timescale)
            payload = _annexb(sample.data, sps_pps if sample.keyframe else None)
            # The clock reference leads the decode time by 100 ms: what a decoder's buffer expects.
            packets.write(VIDEO_PID, _pes(0xE0, payload, pts, dts), pcr=dts - PCR_LEAD, random_access=sample.keyframe)
        else:
            assert asc is not None  # audio events are made only with an asc
            packets.write(AUDIO_PID, _pes(0xC0, adts_header(asc, len(sample.data)) + sample.data, dts, None))
    for tag in tags:  # after the last frame's decode time, within the segment
        packets.write(ID3_PID, _pes(0xBD, tag.data, tag.time, None, aligned=True))
    return bytes(packets.out)

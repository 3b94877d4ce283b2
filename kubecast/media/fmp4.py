"""Reading fragmented MP4 as encoders push it (Smooth Streaming ingest, DASH-IF CMAF ingest).

``BoxStream`` cuts a byte stream that arrives in arbitrary pieces (a long-running chunked
POST) into whole top-level boxes.  ``parse_init`` reads the tracks of a ``moov``;
``parse_fragment`` the samples of a ``moof`` + ``mdat`` pair, with the absolute time of the
Smooth Streaming ``tfxd`` box when there is one, ``tfdt`` otherwise.  Everything malformed
raises ``Mp4Error`` with what was wrong; sizes are checked before anything is sliced.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .contribution import language_tag
from .mp4 import Mp4Error, iter_boxes

TFXD = bytes.fromhex("6d1d9b0542d544e680e2141daff757b2")  # Smooth: absolute time of the fragment
MAX_BOX = 64 << 20  # a fragment of a live contribution is a few MB at most
MAX_SAMPLES = 1 << 16  # per trun: a fragment holds seconds of frames; more is damage (and sizes of 0 bound nothing)


class BoxStream:
    """Whole top-level boxes out of a byte stream fed in pieces."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        """(type, whole box including its header) of every box ``data`` completes."""
        self._buffer += data
        boxes = []
        buffer = self._buffer
        while len(buffer) >= 8:
            size, kind = struct.unpack_from(">I4s", buffer)
            if size == 1:
                if len(buffer) < 16:
                    break
                size = struct.unpack_from(">Q", buffer, 8)[0]
                header = 16
            else:
                header = 8
            if size == 0:
                raise Mp4Error(f"box {bytes(kind)!r} of unbounded size in a live stream")
            if size < header or size > MAX_BOX:
                raise Mp4Error(f"box {bytes(kind)!r} claims {size} bytes")
            if len(buffer) < size:
                break
            boxes.append((bytes(kind), bytes(buffer[:size])))
            del buffer[:size]
        return boxes

    @property
    def pending(self) -> int:
        return len(self._buffer)


@dataclass(frozen=True)
class TrackConfig:
    track_id: int
    kind: str  # "video" | "audio"
    timescale: int
    codec_config: bytes  # avcC record or AAC AudioSpecificConfig
    width: int = 0
    height: int = 0
    language: str | None = None  # audio: the mdhd's ISO 639-2/T code as a LANGUAGE tag (None: "und")


@dataclass(frozen=True)
class FragmentSample:
    decode_time: int  # in the track's timescale
    duration: int
    composition_offset: int
    keyframe: bool
    data: bytes


def _payload(data: bytes, path: list[bytes], start: int = 0, end: int | None = None) -> tuple[int, int] | None:
    for kind, payload_start, payload_end in iter_boxes(data, start, end):
        if kind == path[0]:
            return (
                (payload_start, payload_end) if len(path) == 1 else _payload(data, path[1:], payload_start, payload_end)
            )
    return None


def _descriptor(data: bytes, offset: int, end: int) -> tuple[int, int, int]:
    """(tag, payload start, payload end) of an MPEG-4 descriptor."""
    if offset + 2 > end:
        raise Mp4Error("truncated esds descriptor")
    tag, offset, size = data[offset], offset + 1, 0
    for _ in range(4):
        byte = data[offset]
        offset += 1
        size = size << 7 | byte & 0x7F
        if not byte & 0x80:
            break
    if offset + size > end:
        raise Mp4Error("esds descriptor longer than its box")
    return tag, offset, offset + size


def audio_specific_config(esds: bytes, start: int, end: int) -> bytes:
    tag, offset, es_end = _descriptor(esds, start + 4, end)  # after the full-box header
    if tag != 3:
        raise Mp4Error("esds without an ES descriptor")
    flags = esds[offset + 2]
    offset += 3 + (2 if flags & 0x80 else 0)
    if flags & 0x40:
        offset += 1 + esds[offset]
    if flags & 0x20:
        offset += 2
    tag, offset, config_end = _descriptor(esds, offset, es_end)
    if tag != 4:
        raise Mp4Error("esds without a decoder configuration")
    tag, offset, info_end = _descriptor(esds, offset + 13, config_end)
    if tag != 5:
        raise Mp4Error("esds without an AudioSpecificConfig")
    return bytes(esds[offset:info_end])


def parse_init(data: bytes) -> list[TrackConfig]:
    """The H.264 and AAC tracks of an init segment (``moov``); other tracks are left out."""
    try:
        return _parse_init(data)
    except (struct.error, IndexError) as error:  # a read past the end of a box that claimed less
        raise Mp4Error(f"init segment with a truncated box: {error}") from None


def _parse_init(data: bytes) -> list[TrackConfig]:
    moov = _payload(data, [b"moov"])
    if moov is None:
        raise Mp4Error("no moov box")
    tracks = []
    for kind, start, end in iter_boxes(data, *moov):
        if kind != b"trak":
            continue
        tkhd = _payload(data, [b"tkhd"], start, end)
        mdhd = _payload(data, [b"mdia", b"mdhd"], start, end)
        hdlr = _payload(data, [b"mdia", b"hdlr"], start, end)
        stsd = _payload(data, [b"mdia", b"minf", b"stbl", b"stsd"], start, end)
        if tkhd is None or mdhd is None or hdlr is None or stsd is None:
            raise Mp4Error("trak without tkhd, mdhd, hdlr or stsd")
        if min(tkhd[1] - tkhd[0], mdhd[1] - mdhd[0]) < 24 or hdlr[1] - hdlr[0] < 12:
            raise Mp4Error("trak with a truncated tkhd, mdhd or hdlr")
        track_id = struct.unpack_from(">I", data, tkhd[0] + (20 if data[tkhd[0]] == 1 else 12))[0]
        timescale = struct.unpack_from(">I", data, mdhd[0] + (20 if data[mdhd[0]] == 1 else 12))[0]
        handler = data[hdlr[0] + 8 : hdlr[0] + 12]
        language = _mdhd_language(data, *mdhd)
        if timescale == 0:
            raise Mp4Error(f"track {track_id} has timescale 0")
        entries = stsd[0] + 8  # full-box header + entry count
        for entry, entry_start, entry_end in iter_boxes(data, entries, stsd[1]):
            # Only the sample entries read below need their fields; a metadata track's (a Smooth
            # sparse track) may be the bare 16-byte SampleEntry.
            if entry_end - entry_start < {b"vide": 78, b"soun": 28}.get(handler, 0):
                raise Mp4Error(f"track {track_id}: truncated {entry.decode(errors='replace')} sample entry")
            if handler == b"vide" and entry in (b"avc1", b"avc3"):
                width, height = struct.unpack_from(">HH", data, entry_start + 24)
                avcc = _payload(data, [b"avcC"], entry_start + 78, entry_end)
                if avcc is None:
                    raise Mp4Error(f"track {track_id}: avc1 without avcC")
                tracks.append(TrackConfig(track_id, "video", timescale, bytes(data[avcc[0] : avcc[1]]), width, height))
            elif handler == b"soun" and entry == b"mp4a":
                esds = _payload(data, [b"esds"], entry_start + 28, entry_end)
                if esds is None:
                    raise Mp4Error(f"track {track_id}: mp4a without esds")
                asc = audio_specific_config(data, *esds)
                tracks.append(TrackConfig(track_id, "audio", timescale, asc, language=language))
            break
    return tracks


def _mdhd_language(data: bytes, start: int, end: int) -> str | None:
    """The packed ISO 639-2/T code of an ``mdhd`` (three 5-bit letters after 0x60), as a tag."""
    offset = start + (32 if data[start] == 1 else 20)
    if offset + 2 > end:
        return None
    packed = struct.unpack_from(">H", data, offset)[0]
    return language_tag(bytes(0x60 + (packed >> shift & 0x1F) for shift in (10, 5, 0)))


def parse_fragment(moof: bytes, mdat: bytes) -> dict[int, list[FragmentSample]]:
    """Samples per track id of one ``moof`` box and the ``mdat`` box that follows it."""
    try:
        return _parse_fragment(moof, mdat)
    except (struct.error, IndexError) as error:  # a read past the end of a box that claimed less
        raise Mp4Error(f"fragment with a truncated box: {error}") from None


def _parse_fragment(moof: bytes, mdat: bytes) -> dict[int, list[FragmentSample]]:
    if moof[4:8] != b"moof" or mdat[4:8] != b"mdat":
        raise Mp4Error("a fragment is a moof box followed by an mdat box")
    body = moof + mdat  # offsets in trun are from the start of the moof
    mdat_start = len(moof) + (16 if struct.unpack_from(">I", mdat)[0] == 1 else 8)
    result: dict[int, list[FragmentSample]] = {}
    data_end = mdat_start
    for kind, start, end in iter_boxes(body, 8, len(moof)):
        if kind != b"traf":
            continue
        tfhd = _payload(body, [b"tfhd"], start, end)
        if tfhd is None or tfhd[1] - tfhd[0] < 8:
            raise Mp4Error("traf without a tfhd")
        flags = struct.unpack_from(">I", body, tfhd[0])[0] & 0xFFFFFF
        track_id = struct.unpack_from(">I", body, tfhd[0] + 4)[0]
        cursor = tfhd[0] + 8
        if flags & 0x01:
            raise Mp4Error("base-data-offset (absolute file offsets) makes no sense in a pushed fragment")
        # trun data offsets count from the moof for the first traf (and always with
        # default-base-is-moof), from the end of the previous traf's data otherwise.
        base = 0 if flags & 0x020000 or data_end == mdat_start else data_end
        defaults: dict[str, int] = {}
        for bit, name in ((0x02, None), (0x08, "duration"), (0x10, "size"), (0x20, "flags")):
            if flags & bit:
                if cursor + 4 > tfhd[1]:
                    raise Mp4Error("truncated tfhd")
                if name:
                    defaults[name] = struct.unpack_from(">I", body, cursor)[0]
                cursor += 4
        time = None
        for inner, inner_start, inner_end in iter_boxes(body, start, end):
            if inner == b"uuid" and body[inner_start : inner_start + 16] == TFXD:
                version = body[inner_start + 16]
                # Signed: ffmpeg writes the negative start of a stream with B-frames as a wrapped value.
                time = struct.unpack_from(">q" if version == 1 else ">I", body, inner_start + 20)[0]
            elif inner == b"tfdt" and time is None:
                version = body[inner_start]
                time = struct.unpack_from(">q" if version == 1 else ">I", body, inner_start + 4)[0]
        if time is None:
            raise Mp4Error(f"fragment of track {track_id} has neither tfxd nor tfdt: its time is unknown")
        samples: list[FragmentSample] = []
        for inner, inner_start, inner_end in iter_boxes(body, start, end):
            if inner != b"trun":
                continue
            samples_here, data_end = _trun(body, inner_start, inner_end, base, data_end, defaults, time, len(body))
            time += sum(s.duration for s in samples_here)
            samples += samples_here
        result.setdefault(track_id, []).extend(samples)
    return result


def _trun(
    body: bytes, start: int, end: int, base: int, data_end: int, defaults: dict[str, int], time: int, limit: int
) -> tuple[list[FragmentSample], int]:
    if end - start < 8:
        raise Mp4Error("truncated trun")
    header = struct.unpack_from(">I", body, start)[0]
    version, flags = header >> 24, header & 0xFFFFFF
    count = struct.unpack_from(">I", body, start + 4)[0]
    cursor = start + 8
    offset = data_end  # no data offset: the data follows the previous run's
    if flags & 0x01:
        offset = base + struct.unpack_from(">i", body, cursor)[0]
        cursor += 4
    first_flags = None
    if flags & 0x04:
        first_flags = struct.unpack_from(">I", body, cursor)[0]
        cursor += 4
    per_sample = 4 * sum(bool(flags & bit) for bit in (0x100, 0x200, 0x400, 0x800))
    if count > MAX_SAMPLES:
        raise Mp4Error(f"trun lists {count} samples, more than the {MAX_SAMPLES} a fragment may hold")
    if cursor + count * per_sample > end:
        raise Mp4Error(f"trun lists {count} samples but holds fewer")
    samples = []
    for index in range(count):
        duration, size, sample_flags = defaults.get("duration"), defaults.get("size"), defaults.get("flags")
        composition = 0
        if flags & 0x100:
            duration = struct.unpack_from(">I", body, cursor)[0]
            cursor += 4
        if flags & 0x200:
            size = struct.unpack_from(">I", body, cursor)[0]
            cursor += 4
        if flags & 0x400:
            sample_flags = struct.unpack_from(">I", body, cursor)[0]
            cursor += 4
        elif index == 0 and first_flags is not None:
            sample_flags = first_flags
        if flags & 0x800:
            composition = struct.unpack_from(">i" if version else ">I", body, cursor)[0]
            cursor += 4
        if duration is None or size is None:
            raise Mp4Error("sample without duration or size")
        if offset < 0 or offset + size > limit:
            raise Mp4Error("sample data outside the mdat")
        keyframe = sample_flags is None or not sample_flags & 0x00010000
        samples.append(FragmentSample(time, duration, composition, keyframe, bytes(body[offset : offset + size])))
        time += duration
        offset += size
    return samples, offset

"""CMAF fragmented MP4, written and read by us: the packager's product.

Writing: one init segment per track (``ftyp`` + ``moov`` with an empty sample table and
``mvex``), then media segments (``styp`` + ``moof`` + ``mdat``), one ``traf`` each, with
``tfdt`` version 1 and ``trun`` version 1 so composition offsets may be negative: the first
sample of a video segment (its IDR) then has decode time == presentation time == n*D, which
keeps ``tfdt`` on segment boundaries even with B-frames.

Reading: ``iter_boxes`` and ``parse_media_segment`` check every size against the data they
have and raise ``Mp4Error`` on anything truncated or inconsistent; tests and the packager
use them to validate what encoders store.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
SAMPLE_SYNC_FLAGS = 0x02000000  # sample_depends_on = 2 (no other sample), sync
SAMPLE_NON_SYNC_FLAGS = 0x01010000  # depends on others, is_non_sync_sample


class Mp4Error(ValueError):
    """Bytes that are not the MP4 we expect; the message says what is wrong and where."""


def box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I", 8 + len(body)) + kind + body


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags), *payload)


# -- init segments ---------------------------------------------------------------------------


def _ftyp() -> bytes:
    return box(b"ftyp", b"cmfc", struct.pack(">I", 0), b"cmfc", b"iso6", b"isom", b"mp41", b"dash")


def _mvhd(timescale: int, next_track_id: int) -> bytes:
    return full_box(
        b"mvhd",
        0,
        0,
        struct.pack(">IIII", 0, 0, timescale, 0),
        struct.pack(">IH", 0x00010000, 0x0100),
        b"\x00" * 10,
        MATRIX,
        b"\x00" * 24,
        struct.pack(">I", next_track_id),
    )


def _tkhd(track_id: int, width: int, height: int, audio: bool) -> bytes:
    return full_box(
        b"tkhd",
        0,
        0x3,  # enabled, in movie
        struct.pack(">IIIII", 0, 0, track_id, 0, 0),
        b"\x00" * 8,
        struct.pack(">hhH", 0, 0, 0x0100 if audio else 0),
        b"\x00\x00",
        MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )


def _mdhd(timescale: int, language: str = "und") -> bytes:
    code = 0
    for char in (language + "und")[:3]:
        code = (code << 5) | ((ord(char) - 0x60) & 0x1F)
    return full_box(b"mdhd", 0, 0, struct.pack(">IIII", 0, 0, timescale, 0), struct.pack(">HH", code, 0))


def _hdlr(handler: bytes, name: bytes) -> bytes:
    return full_box(b"hdlr", 0, 0, struct.pack(">I", 0), handler, b"\x00" * 12, name + b"\x00")


def _dinf() -> bytes:
    return box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1)))


def _empty_tables(stsd: bytes) -> bytes:
    empty = struct.pack(">I", 0)
    return box(
        b"stbl",
        stsd,
        full_box(b"stts", 0, 0, empty),
        full_box(b"stsc", 0, 0, empty),
        full_box(b"stsz", 0, 0, struct.pack(">II", 0, 0)),
        full_box(b"stco", 0, 0, empty),
    )


def _moov(
    track_id: int, timescale: int, tkhd: bytes, media_header: bytes, handler: bytes, stsd: bytes, language: str
) -> bytes:
    minf = box(b"minf", media_header, _dinf(), _empty_tables(stsd))
    mdia = box(b"mdia", _mdhd(timescale, language), handler, minf)
    trex = full_box(b"trex", 0, 0, struct.pack(">IIIII", track_id, 1, 0, 0, 0))
    return box(b"moov", _mvhd(timescale, track_id + 1), box(b"trak", tkhd, mdia), box(b"mvex", trex))


def init_segment_video(*, width: int, height: int, timescale: int, avcc: bytes, track_id: int = 1) -> bytes:
    avc1 = box(
        b"avc1",
        b"\x00" * 6,
        struct.pack(">H", 1),
        b"\x00" * 16,
        struct.pack(">HHIIIH", width, height, 0x00480000, 0x00480000, 0, 1),
        b"\x00" * 32,
        struct.pack(">Hh", 0x0018, -1),
        box(b"avcC", avcc),
    )
    stsd = full_box(b"stsd", 0, 0, struct.pack(">I", 1), avc1)
    vmhd = full_box(b"vmhd", 0, 1, b"\x00" * 8)
    moov = _moov(
        track_id, timescale, _tkhd(track_id, width, height, False), vmhd, _hdlr(b"vide", b"kubecast video"), stsd, "und"
    )
    return _ftyp() + moov


def _descriptor(tag: int, payload: bytes) -> bytes:
    size, encoded = len(payload), []
    for shift in (21, 14, 7):
        encoded.append(((size >> shift) & 0x7F) | 0x80)
    encoded.append(size & 0x7F)
    return bytes([tag, *encoded]) + payload


def _esds(asc: bytes, bitrate: int) -> bytes:
    decoder_specific = _descriptor(0x05, asc)
    decoder_config = _descriptor(
        0x04, bytes([0x40, 0x15]) + b"\x00\x00\x00" + struct.pack(">II", bitrate, bitrate) + decoder_specific
    )
    es = _descriptor(0x03, struct.pack(">HB", 0, 0) + decoder_config + _descriptor(0x06, b"\x02"))
    return full_box(b"esds", 0, 0, es)


def init_segment_audio(
    *,
    sample_rate: int,
    channels: int,
    timescale: int,
    asc: bytes,
    bitrate: int = 128_000,
    track_id: int = 1,
    language: str = "und",
) -> bytes:
    mp4a = box(
        b"mp4a",
        b"\x00" * 6,
        struct.pack(">H", 1),
        b"\x00" * 8,
        struct.pack(">HHHH", channels, 16, 0, 0),
        struct.pack(">I", (sample_rate if sample_rate < 65536 else 0) << 16),
        _esds(asc, bitrate),
    )
    stsd = full_box(b"stsd", 0, 0, struct.pack(">I", 1), mp4a)
    smhd = full_box(b"smhd", 0, 0, b"\x00" * 4)
    moov = _moov(
        track_id, timescale, _tkhd(track_id, 0, 0, True), smhd, _hdlr(b"soun", b"kubecast audio"), stsd, language
    )
    return _ftyp() + moov


# -- media segments --------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    duration: int
    size: int
    composition_offset: int = 0  # presentation time - decode time
    keyframe: bool = True


@dataclass(frozen=True)
class SampleAuxiliary:
    """Common Encryption's per-sample information (ISO/IEC 23001-7): one ``senc`` entry per
    sample (its IV, then its subsample map when ``subsamples``), which ``saiz`` sizes and
    ``saio`` points at."""

    entries: list[bytes]
    subsamples: bool


def _encryption_boxes(auxiliary: SampleAuxiliary, offset_of_saiz: int) -> bytes:
    """saiz, saio and senc; ``offset_of_saiz`` is where they start, counted from the moof."""
    sizes = {len(entry) for entry in auxiliary.entries}
    if len(sizes) == 1 and 0 not in sizes:  # a default size of 0 means "a size per sample follows"
        saiz = full_box(b"saiz", 0, 0, struct.pack(">BI", sizes.pop(), len(auxiliary.entries)))
    else:
        saiz = full_box(
            b"saiz",
            0,
            0,
            struct.pack(">BI", 0, len(auxiliary.entries)),
            bytes(len(entry) for entry in auxiliary.entries),
        )
    saio_size = 20  # full-box header, entry count 1, one 32-bit offset
    senc_entries = offset_of_saiz + len(saiz) + saio_size + 16  # after senc's header, flags and sample count
    saio = full_box(b"saio", 0, 0, struct.pack(">II", 1, senc_entries))
    senc = full_box(
        b"senc", 0, 0x2 if auxiliary.subsamples else 0, struct.pack(">I", len(auxiliary.entries)), *auxiliary.entries
    )
    return saiz + saio + senc


def media_segment(
    *,
    sequence_number: int,
    base_decode_time: int,
    samples: list[Sample],
    data: bytes,
    track_id: int = 1,
    auxiliary: SampleAuxiliary | None = None,
    chunk: bool = False,
) -> bytes:
    """With ``auxiliary``, the fragment of an encrypted track: ``saiz``, ``saio`` and ``senc``
    follow ``trun``, and ``saio`` holds the offset of the first ``senc`` entry from the moof.
    With ``chunk``, a CMAF chunk (a low-latency part): ``moof`` + ``mdat`` without ``styp``."""
    if auxiliary is not None and any(len(entry) > 255 for entry in auxiliary.entries):
        raise ValueError("a sample's encryption information is longer than saiz can describe")
    if sum(sample.size for sample in samples) != len(data):
        raise ValueError("sample sizes do not add up to the media data")
    # duration, size, flags, composition offset per sample; data offset patched below
    trun_flags = 0x000001 | 0x000100 | 0x000200 | 0x000400 | 0x000800
    entries = b"".join(
        struct.pack(
            ">IIIi",
            s.duration,
            s.size,
            SAMPLE_SYNC_FLAGS if s.keyframe else SAMPLE_NON_SYNC_FLAGS,
            s.composition_offset,
        )
        for s in samples
    )

    def build(data_offset: int) -> bytes:
        tfhd = full_box(b"tfhd", 0, 0x020000, struct.pack(">I", track_id))  # default-base-is-moof
        tfdt = full_box(b"tfdt", 1, 0, struct.pack(">Q", base_decode_time))
        trun = full_box(b"trun", 1, trun_flags, struct.pack(">Ii", len(samples), data_offset), entries)
        mfhd = full_box(b"mfhd", 0, 0, struct.pack(">I", sequence_number))
        encryption = b""
        if auxiliary is not None:
            # the moof and traf headers, mfhd, tfhd, tfdt and trun come before saiz
            encryption = _encryption_boxes(auxiliary, 8 + len(mfhd) + 8 + len(tfhd) + len(tfdt) + len(trun))
        return box(b"moof", mfhd, box(b"traf", tfhd, tfdt, trun, encryption))

    moof = build(0)
    moof = build(len(moof) + 8)  # the samples start right after mdat's header
    fragment = moof + struct.pack(">I", 8 + len(data)) + b"mdat" + data
    return fragment if chunk else styp() + fragment


def styp() -> bytes:
    """The segment type box that starts every media segment (not a part: a CMAF chunk has none)."""
    return box(b"styp", b"msdh", struct.pack(">I", 0), b"msdh", b"msix", b"cmfs", b"cmff")


# -- reading ---------------------------------------------------------------------------------


def iter_boxes(data: bytes | memoryview, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box in data[start:end]."""
    end = len(data) if end is None else end
    offset = start
    while offset < end:
        if end - offset < 8:
            raise Mp4Error(f"truncated box header at byte {offset}")
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:
            if end - offset < 16:
                raise Mp4Error(f"truncated large box header at byte {offset}")
            size = struct.unpack_from(">Q", data, offset + 8)[0]
            header = 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end:
            raise Mp4Error(f"box {kind!r} at byte {offset} claims {size} bytes, {end - offset} available")
        yield bytes(kind), offset + header, offset + size
        offset += size


def find_box(data: bytes, path: list[bytes], start: int = 0, end: int | None = None) -> tuple[int, int]:
    """Payload bounds of the first box at ``path`` (e.g. [b"moof", b"traf", b"tfdt"])."""
    for kind, payload_start, payload_end in iter_boxes(data, start, end):
        if kind == path[0]:
            return (
                (payload_start, payload_end) if len(path) == 1 else find_box(data, path[1:], payload_start, payload_end)
            )
    raise Mp4Error(f"no {b'/'.join(path).decode(errors='replace')} box")


def parse_media_segment(data: bytes) -> tuple[int, list[Sample]]:
    """(baseMediaDecodeTime, samples) of a one-track media segment (``styp`` + ``moof`` + ``mdat``)."""
    from .fmp4 import BoxStream, parse_fragment

    stream = BoxStream()
    boxes = dict(stream.feed(data))
    if stream.pending:
        raise Mp4Error(f"truncated segment: its last box claims more than the {stream.pending} bytes left")
    if b"moof" not in boxes or b"mdat" not in boxes:
        raise Mp4Error("a media segment needs a moof and an mdat box")
    tracks = parse_fragment(boxes[b"moof"], boxes[b"mdat"])
    if len(tracks) != 1:
        raise Mp4Error(f"a media segment of one track was expected, found {len(tracks)}")
    samples = next(iter(tracks.values()))
    if not samples:
        raise Mp4Error("a media segment without samples")
    return samples[0].decode_time, [Sample(s.duration, len(s.data), s.composition_offset, s.keyframe) for s in samples]


# -- codec strings (RFC 6381) ----------------------------------------------------------------


def avc_codec_string(avcc: bytes) -> str:
    if len(avcc) < 4 or avcc[0] != 1:
        raise Mp4Error("not an AVCDecoderConfigurationRecord")
    return f"avc1.{avcc[1]:02x}{avcc[2]:02x}{avcc[3]:02x}"


def aac_codec_string(asc: bytes) -> str:
    if len(asc) < 2:
        raise Mp4Error("AudioSpecificConfig too short")
    object_type = asc[0] >> 3
    if object_type == 31:
        object_type = 32 + (((asc[0] & 0x07) << 3) | (asc[1] >> 5))
    return f"mp4a.40.{object_type}"

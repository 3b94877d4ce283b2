"""The hand-over from an ingest to its encoder: one TCP connection per contribution.

The ingest connects to the encoder's contribution port and sends one hello line, then the
contribution as a stream of typed records: a codec configuration (``CodecConfig``) whenever a
track's changes, one ``Frame`` per sample, a ``Cue`` per SCTE-35 splice the contribution
signals, a ``Metadata`` per item of ID3 timed metadata, and ``EndOfStream`` when the publisher
stopped.
Closing the connection without ``EndOfStream`` means the contribution broke off; either way the
encoder then waits for the next one and continues the channel timeline.  The hello line carries
only facts the encoder reports in its status, never a stream key.

    KUBECAST-CONTRIBUTION 4 {"channel": "demo", "protocol": "RTMP", "session": "…"}\n

Why not FLV, the unit RTMP carries: FLV times are whole milliseconds, so MPEG-TS (90 kHz),
Smooth (10 MHz) and CMAF (the track's timescale) lost precision on the way, and a CMAF
pass-through went CMAF -> FLV -> CMAF.  A ``Frame`` keeps each sample's times in its source's own
timescale, exactly as the source stated them: RTMP's milliseconds stay milliseconds, nothing is
rounded.  ``encode_record`` is the one writer of the wire form and ``RecordReader`` its one reader.

Wire form (big-endian): each record starts with a one-byte type.

    CONFIG  type=1, kind u8, track u8, language size u8, size u32, then the language
            (ASCII, a ``LANGUAGE`` tag; size 0: not stated) and the configuration bytes
    FRAME   type=2, kind u8, track u8, flags u8, timescale u32, decode time i64,
            composition offset i32, duration u32 (0: not known), size u32, then the sample
    END     type=3
    CUE     type=4, flags u8 (1: out, 2: duration known), timescale u32, splice time i64,
            duration u32, event id u32, size u16, then the splice_info_section
    META    type=5, timescale u32, time i64, size u32, then the ID3v2 tags
"""

from __future__ import annotations

import enum
import json
import re
import struct
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from .id3 import MAX_TAGS

MAGIC = b"KUBECAST-CONTRIBUTION 4 "  # 3: a language on CONFIG; 4: META records
MAX_HELLO = 4096
MAX_SAMPLE = 8 * 1024 * 1024  # above any sane frame (a 4K intra picture is a few MB): bigger means corrupt
MAX_CONFIG = 64 * 1024
MAX_TRACK = 255
MAX_SECTION = 4096  # a splice_info_section is at most 4095 bytes (12-bit section_length + 3)
MAX_METADATA = MAX_TAGS  # the ID3 tags of one item of timed metadata
MAX_CUE_DURATION = (1 << 32) - 1  # a cue record's duration field (32 bits): 13 h at 90 kHz

# A language as the manifests write it (HLS LANGUAGE, DASH lang, both inside quotes): a BCP 47
# primary language subtag (ISO 639-1 or 639-2, as an MPEG-TS ISO_639_language_descriptor names
# it) with optional subtags.  Anything else is no language at all.
LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8})*")
MAX_LANGUAGE = 35


def language_tag(value: str | bytes) -> str | None:
    """``value`` as a language tag, or None when it is none (empty, ``und``, not a tag)."""
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    value = value.strip()
    if len(value) <= 3:  # an ISO 639 code, whose case carries nothing
        value = value.lower()
    if len(value) > MAX_LANGUAGE or not LANGUAGE.fullmatch(value) or value == "und":
        return None
    return value


@dataclass(frozen=True)
class Hello:
    channel: str
    protocol: str  # RTMP, ...
    session: str  # the ingest's id for this publish session, for logs
    relayed: bool = False  # arrived through the other ingest's relay

    def encode(self) -> bytes:
        return MAGIC + json.dumps(asdict(self)).encode() + b"\n"


class HelloError(ValueError):
    pass


def parse_hello(line: bytes) -> Hello:
    if not line.startswith(MAGIC) or not line.endswith(b"\n") or len(line) > MAX_HELLO:
        raise HelloError("not a kubecast contribution hello line")
    try:
        fields = json.loads(line[len(MAGIC) :])
        return Hello(**fields)
    except (ValueError, TypeError) as error:
        raise HelloError(f"malformed contribution hello: {error}") from None


class Kind(enum.IntEnum):
    VIDEO = 1  # H.264: configuration is an avcC record, samples are length-prefixed NAL units
    AUDIO = 2  # AAC: configuration is an AudioSpecificConfig, samples are raw AAC frames


@dataclass(frozen=True, slots=True)
class CodecConfig:
    """A track's decoder configuration; sent before its first frame and again when it changes."""

    kind: Kind
    track: int  # video: the rendition of a multi-bitrate contribution; audio: the audio track
    data: bytes
    # Audio: the track's language (``LANGUAGE``), as the contribution names it.  An audio track
    # other than 0 is published only with one: without, it repeats track 0 (the audio every
    # rendition of a multi-bitrate RTMP or Smooth publish carries).
    language: str | None = None

    def __post_init__(self) -> None:
        if self.language is not None and language_tag(self.language) != self.language:
            raise ValueError(f"not a language tag: {self.language!r}")


@dataclass(frozen=True, slots=True)
class Frame:
    """One sample, timed in its source's own clock (``timescale`` ticks per second)."""

    kind: Kind
    track: int
    timescale: int  # 1000 for RTMP, 90000 for MPEG-TS, the track's timescale for Smooth and CMAF
    decode_time: int
    composition_offset: int  # presentation time - decode time
    duration: int | None  # known for fragmented MP4 sources and AAC frames; None otherwise
    keyframe: bool
    data: bytes

    @property
    def presentation_time(self) -> int:
        return self.decode_time + self.composition_offset


@dataclass(frozen=True, slots=True)
class EndOfStream:
    """The publisher stopped (as opposed to the connection breaking off)."""


@dataclass(frozen=True, slots=True)
class Cue:
    """A SCTE-35 splice at a time of the contribution's own clock (the frames' ``timescale`` and
    origin), already checked by ``kubecast.media.scte35``: the encoders place it on the channel
    timeline as they place frames, so both of a pair put it on the same frame."""

    timescale: int
    splice_time: int
    out: bool  # True: out of the network (an ad break starts); False: back in
    duration: int | None  # of the break, in ``timescale``; None: not stated
    event_id: int
    section: bytes  # the splice_info_section as received, or as built for a cue that came without one


@dataclass(frozen=True, slots=True)
class Metadata:
    """Timed metadata (ID3v2 tags, checked by ``kubecast.media.id3``) at a time of the
    contribution's own clock, placed on the channel timeline as frames are."""

    timescale: int
    time: int
    data: bytes


Record = CodecConfig | Frame | Cue | Metadata | EndOfStream


class RecordError(ValueError):
    """A byte stream that is not a well-formed sequence of contribution records."""


_CONFIG, _FRAME, _END, _CUE, _META = 1, 2, 3, 4, 5
_KEYFRAME = 0x01
_CUE_OUT, _CUE_DURATION = 0x01, 0x02
_CONFIG_HEADER = struct.Struct(">BBBBI")
_FRAME_HEADER = struct.Struct(">BBBBIqiII")
_CUE_HEADER = struct.Struct(">BBIqIIH")
_META_HEADER = struct.Struct(">BIqI")
_END_RECORD = bytes([_END])


def encode_record(record: Record) -> bytes:
    if isinstance(record, Frame):
        header = _FRAME_HEADER.pack(
            _FRAME,
            record.kind,
            record.track,
            _KEYFRAME if record.keyframe else 0,
            record.timescale,
            record.decode_time,
            record.composition_offset,
            record.duration or 0,
            len(record.data),
        )
        return header + record.data
    if isinstance(record, CodecConfig):
        language = (record.language or "").encode("ascii")
        header = _CONFIG_HEADER.pack(_CONFIG, record.kind, record.track, len(language), len(record.data))
        return header + language + record.data
    if isinstance(record, Cue):
        flags = (_CUE_OUT if record.out else 0) | (_CUE_DURATION if record.duration is not None else 0)
        header = _CUE_HEADER.pack(
            _CUE,
            flags,
            record.timescale,
            record.splice_time,
            record.duration or 0,
            record.event_id,
            len(record.section),
        )
        return header + record.section
    if isinstance(record, Metadata):
        return _META_HEADER.pack(_META, record.timescale, record.time, len(record.data)) + record.data
    return _END_RECORD


def _kind(value: int) -> Kind:
    try:
        return Kind(value)
    except ValueError:
        raise RecordError(f"unknown track kind {value}") from None


class RecordReader:
    """Incremental parser: ``feed(bytes)``, then iterate ``records()`` for the complete ones."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._ended = False

    def feed(self, data: bytes) -> None:
        self._buffer += data

    @property
    def pending(self) -> int:
        """Bytes of an incomplete record (at the end of the stream: a truncated one)."""
        return len(self._buffer)

    def records(self) -> Iterator[Record]:
        buf = self._buffer
        start = 0
        try:
            while start < len(buf):
                if self._ended:
                    raise RecordError("data after the end-of-stream record")
                record_type = buf[start]
                if record_type == _FRAME:
                    if len(buf) - start < _FRAME_HEADER.size:
                        return
                    _, kind, track, flags, timescale, dts, cto, duration, size = _FRAME_HEADER.unpack_from(buf, start)
                    frame_kind = _kind(kind)
                    if size > MAX_SAMPLE:
                        raise RecordError(f"a sample of {size} bytes exceeds the limit")
                    if timescale == 0:
                        raise RecordError("a frame with timescale 0")
                    if flags & ~_KEYFRAME:
                        raise RecordError(f"unknown frame flags {flags:#x}")
                    end = start + _FRAME_HEADER.size + size
                    if len(buf) < end:
                        return
                    data = bytes(buf[start + _FRAME_HEADER.size : end])
                    start = end
                    yield Frame(frame_kind, track, timescale, dts, cto, duration or None, bool(flags & _KEYFRAME), data)
                elif record_type == _CONFIG:
                    if len(buf) - start < _CONFIG_HEADER.size:
                        return
                    _, kind, track, language_size, size = _CONFIG_HEADER.unpack_from(buf, start)
                    config_kind = _kind(kind)
                    if size > MAX_CONFIG:
                        raise RecordError(f"a codec configuration of {size} bytes exceeds the limit")
                    if language_size > MAX_LANGUAGE:
                        raise RecordError(f"a language of {language_size} bytes exceeds the limit")
                    body = start + _CONFIG_HEADER.size + language_size
                    end = body + size
                    if len(buf) < end:
                        return
                    raw = bytes(buf[start + _CONFIG_HEADER.size : body])
                    language = language_tag(raw) if raw else None
                    if raw and language != raw.decode("ascii", "replace"):
                        raise RecordError(f"a codec configuration with a malformed language {raw!r}")
                    data = bytes(buf[body:end])
                    start = end
                    yield CodecConfig(config_kind, track, data, language)
                elif record_type == _CUE:
                    if len(buf) - start < _CUE_HEADER.size:
                        return
                    _, flags, timescale, time, duration, event_id, size = _CUE_HEADER.unpack_from(buf, start)
                    if flags & ~(_CUE_OUT | _CUE_DURATION):
                        raise RecordError(f"unknown cue flags {flags:#x}")
                    if timescale == 0:
                        raise RecordError("a cue with timescale 0")
                    if size > MAX_SECTION:
                        raise RecordError(f"a splice section of {size} bytes exceeds the limit")
                    if not flags & _CUE_DURATION and duration:
                        raise RecordError("a cue with a duration it says it does not know")
                    end = start + _CUE_HEADER.size + size
                    if len(buf) < end:
                        return
                    section = bytes(buf[start + _CUE_HEADER.size : end])
                    start = end
                    stated = duration if flags & _CUE_DURATION else None
                    yield Cue(timescale, time, bool(flags & _CUE_OUT), stated, event_id, section)
                elif record_type == _META:
                    if len(buf) - start < _META_HEADER.size:
                        return
                    _, timescale, time, size = _META_HEADER.unpack_from(buf, start)
                    if timescale == 0:
                        raise RecordError("timed metadata with timescale 0")
                    if size > MAX_METADATA:
                        raise RecordError(f"timed metadata of {size} bytes exceeds the limit")
                    end = start + _META_HEADER.size + size
                    if len(buf) < end:
                        return
                    data = bytes(buf[start + _META_HEADER.size : end])
                    start = end
                    yield Metadata(timescale, time, data)
                elif record_type == _END:
                    start += 1
                    self._ended = True
                    yield EndOfStream()
                else:
                    raise RecordError(f"unknown record type {record_type}")
        finally:
            del buf[:start]

"""Smooth Streaming sparse tracks: SCTE-35 cues pushed beside the media (pure).

Azure Media Services' "Signaling Timed Metadata in Live Streaming" (section 2.2) carries ad
markers in a Smooth push as a sparse track, usually a POST of its own (``Streams(<name>)``):

* the Live Server Manifest Box (``uuid`` A5D40B30-E814-11DD-BA2F-0800200C9A66, a SMIL document)
  declares it as a ``<textstream>`` with ``Subtype`` ``DATA``, the message ``Scheme``, its
  ``trackName``, its ``parentTrackName`` (whose clock its times are on) and maybe its
  ``trackID``;
* the ``moov`` has its ``trak`` (handler ``meta``, a metadata sample entry such as ``scte``);
* each sparse fragment is a ``moof`` whose ``tfxd`` is the event's arrival time (and duration)
  and an ``mdat`` holding one message: ``version`` (1), ``id``, ``presentation_time_delta`` (all
  32 bits), then the binary ``splice_info_section``.  The cue's time is the fragment's time plus
  the delta, on the parent track's clock, which is the frames' clock of the push.

Only the scheme ``urn:scte:scte35:2013:bin`` is an ad marker here.  Some senders put the bare
section in the ``mdat`` (without the version/id/delta header); a section starts with its
table_id 0xFC where the header starts with a 0 byte, so both are read.  Everything else is a
``SparseError`` with a fixed reason (a metric label): the caller drops the message, logs and
counts it, and the media goes on.
"""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from kubecast.media.contribution import Cue
from kubecast.media.mp4 import Mp4Error, iter_boxes
from kubecast.media.scte35 import Scte35Error, parse_splice_info

from ..cues import CueGate

LIVE_MANIFEST = bytes.fromhex("a5d40b30e81411ddba2f0800200c9a66")
SCTE35_SCHEME = "urn:scte:scte35:2013:bin"
MAX_MANIFEST = 64 << 10  # a SMIL document of a few tracks is a few KB
MESSAGE_VERSION = 1
_MESSAGE_HEADER = struct.Struct(">III")
SECTION_TABLE_ID = 0xFC


class SparseError(ValueError):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SparseDeclaration:
    """A ``<textstream>`` of the Live Server Manifest Box."""

    name: str  # trackName
    scheme: str
    track_id: int | None  # the trackID param, when the manifest states it


@dataclass(frozen=True)
class SparseTrack:
    track_id: int
    name: str
    scheme: str
    timescale: int


@dataclass(frozen=True)
class SparseMessage:
    time: int  # the event's presentation time, in the track's timescale
    duration: int | None  # of the event (None: unknown, which the fragment says with 0)
    section: bytes


def is_live_manifest(box: bytes) -> bool:
    return box[4:8] == b"uuid" and box[8:24] == LIVE_MANIFEST


def live_manifest_declarations(box: bytes) -> list[SparseDeclaration]:
    """The sparse tracks (``<textstream>`` of ``Subtype`` DATA) a Live Server Manifest Box declares."""
    document = box[28:]  # size, type, usertype, version and flags
    if len(document) > MAX_MANIFEST:
        raise SparseError("manifest", f"a live server manifest of {len(document)} bytes")
    if b"<!DOCTYPE" in document.upper() or b"<!ENTITY" in document.upper():
        raise SparseError("manifest", "a live server manifest with a DTD")  # entities could expand without bound
    try:
        root = ET.fromstring(document)
    except (ET.ParseError, LookupError, ValueError) as error:  # LookupError, ValueError: the encoding it names
        raise SparseError("manifest", f"the live server manifest is not XML: {error}") from None
    declarations = []
    for element in root.iter():
        if element.tag.rpartition("}")[2] != "textstream":
            continue
        params = {
            (param.get("name") or "").lower(): param.get("value") or ""
            for param in element
            if param.tag.rpartition("}")[2] == "param"
        }
        if params.get("subtype", "").upper() != "DATA":
            continue  # captions, subtitles: not ours
        track_id = params.get("trackid")
        if track_id is not None and not (track_id.isdigit() and 0 < int(track_id) < 1 << 32):
            raise SparseError("manifest", f"a sparse track with trackID {track_id[:20]!r}")
        declarations.append(
            SparseDeclaration(
                name=params.get("trackname", ""),
                scheme=params.get("scheme", ""),
                track_id=None if track_id is None else int(track_id),
            )
        )
    return declarations


def _handlers(moov: bytes) -> dict[int, tuple[bytes, int]]:
    """Track id -> (handler type, timescale) of every trak of a ``moov`` box."""
    found: dict[int, tuple[bytes, int]] = {}
    for kind, start, end in iter_boxes(moov, 8, len(moov)):
        if kind != b"trak":
            continue
        boxes = {inner: (s, e) for inner, s, e in iter_boxes(moov, start, end)}
        if b"tkhd" not in boxes or b"mdia" not in boxes:
            continue
        media = {inner: (s, e) for inner, s, e in iter_boxes(moov, *boxes[b"mdia"])}
        tkhd, mdhd, hdlr = boxes[b"tkhd"], media.get(b"mdhd"), media.get(b"hdlr")
        if mdhd is None or hdlr is None or min(tkhd[1] - tkhd[0], mdhd[1] - mdhd[0]) < 24 or hdlr[1] - hdlr[0] < 12:
            continue
        track_id = struct.unpack_from(">I", moov, tkhd[0] + (20 if moov[tkhd[0]] == 1 else 12))[0]
        timescale = struct.unpack_from(">I", moov, mdhd[0] + (20 if moov[mdhd[0]] == 1 else 12))[0]
        found[track_id] = (bytes(moov[hdlr[0] + 8 : hdlr[0] + 12]), timescale)
    return found


def sparse_tracks(moov: bytes, declarations: list[SparseDeclaration]) -> dict[int, SparseTrack]:
    """Track id -> the sparse track of a ``moov`` box that ``declarations`` name: by trackID, or,
    for a declaration without one, the one track that is neither video nor audio."""
    if not declarations:
        return {}
    try:
        handlers = _handlers(moov)
    except (Mp4Error, struct.error, IndexError) as error:
        raise SparseError("init", f"a sparse track's moov: {error}") from None
    others = [track_id for track_id, (handler, _) in handlers.items() if handler not in (b"vide", b"soun")]
    tracks = {}
    for declaration in declarations:
        track_id = declaration.track_id
        if track_id is None and len(others) == 1:
            track_id = others[0]
        if track_id is None or track_id not in handlers or handlers[track_id][0] in (b"vide", b"soun"):
            raise SparseError("init", f"sparse track {declaration.name!r} has no metadata trak in the moov")
        timescale = handlers[track_id][1]
        if timescale == 0:
            raise SparseError("init", f"sparse track {declaration.name!r} has timescale 0")
        tracks[track_id] = SparseTrack(track_id, declaration.name, declaration.scheme, timescale)
    return tracks


def fragment_track_ids(moof: bytes) -> set[int]:
    """The track ids of a ``moof``'s ``traf``s (to tell a sparse fragment before parsing it)."""
    ids = set()
    try:
        for kind, start, end in iter_boxes(moof, 8, len(moof)):
            if kind == b"traf":
                for inner, inner_start, inner_end in iter_boxes(moof, start, end):
                    if inner == b"tfhd" and inner_end - inner_start >= 8:
                        ids.add(struct.unpack_from(">I", moof, inner_start + 4)[0])
    except Mp4Error:
        pass  # the fragment's parser says what is wrong
    return ids


def sparse_message(data: bytes, *, scheme: str, time: int, duration: int) -> SparseMessage:
    """The message of one sparse sample (``data``) whose fragment starts at ``time`` and lasts
    ``duration`` (0: unknown), both in the track's timescale."""
    if scheme != SCTE35_SCHEME:
        raise SparseError("scheme", f"a sparse track of scheme {scheme[:80]!r}, not {SCTE35_SCHEME}")
    if data[:1] == bytes([SECTION_TABLE_ID]):
        section, delta = data, 0
    else:
        if len(data) < _MESSAGE_HEADER.size:
            raise SparseError("sparse", f"a sparse sample of {len(data)} bytes")
        version, _id, delta = _MESSAGE_HEADER.unpack_from(data)
        if version != MESSAGE_VERSION:
            raise SparseError("sparse", f"a sparse message of version {version}")
        section = data[_MESSAGE_HEADER.size :]
    return SparseMessage(time=time + delta, duration=duration or None, section=bytes(section))


def sparse_cue(gate: CueGate, message: SparseMessage, *, timescale: int, now: int | None) -> Cue | None:
    """The cue of a sparse message, on the push's clock, if ``gate`` lets it through.  The time is
    the message's own: the section's PTS is on the sender's TS clock, which a push does not carry."""
    try:
        splice = parse_splice_info(message.section).splice
    except Scte35Error as error:
        gate.refuse(error.reason, str(error))
        return None
    if splice is None:
        return None  # a heartbeat, a cancel, a time_signal of no break
    if now is None:
        gate.refuse("early", "a Smooth sparse cue before the contribution's first frame")
        return None
    duration = message.duration if splice.duration is None else splice.duration * timescale // 90_000
    cue = Cue(timescale, message.time, splice.out, duration, splice.event_id, message.section)
    return gate.timed(cue, now=now, what="Smooth sparse cue")

"""A Smooth Streaming sparse track of SCTE-35 messages, built by hand per Azure Media Services'
"Signaling Timed Metadata in Live Streaming" (section 2.2, Fragmented MP4 Ingest).

No tool we can install writes Smooth sparse tracks (ffmpeg's ismv muxer writes audio and video
only), so the tests build the stream from the specification: ``ftyp``, the Live Server Manifest
Box declaring a ``<textstream>`` (Subtype DATA, Scheme urn:scte:scte35:2013:bin, parentTrackName,
trackName, timescale), a ``moov`` with one ``meta`` trak whose sample entry is ``scte``, then one
``moof``/``mdat`` per message: ``tfxd`` with the event's time and duration, a ``trun`` of one
sample, and the message (version 1, id, presentation_time_delta, the binary splice_info_section).
"""

from __future__ import annotations

import struct

from kubecast.media.mp4 import box, full_box

LIVE_MANIFEST = bytes.fromhex("a5d40b30e81411ddba2f0800200c9a66")
TFXD = bytes.fromhex("6d1d9b0542d544e680e2141daff757b2")
SCHEME = "urn:scte:scte35:2013:bin"


def live_manifest(
    *, track_id: int = 1, name: str = "scte35", scheme: str = SCHEME, timescale: int = 10_000_000
) -> bytes:
    smil = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<smil xmlns="http://www.w3.org/2001/SMIL20/Language"><head/><body><switch>'
        f'<textstream src="{name}" systemBitrate="0">'
        f'<param name="trackID" value="{track_id}" valuetype="data"/>'
        f'<param name="trackName" value="{name}" valuetype="data"/>'
        '<param name="parentTrackName" value="video" valuetype="data"/>'
        '<param name="manifestOutput" value="true" valuetype="data"/>'
        '<param name="Subtype" value="DATA" valuetype="data"/>'
        f'<param name="Scheme" value="{scheme}" valuetype="data"/>'
        f'<param name="timescale" value="{timescale}" valuetype="data"/>'
        "</textstream></switch></body></smil>"
    ).encode()
    return box(b"uuid", LIVE_MANIFEST, struct.pack(">I", 0), smil)


def sparse_moov(*, track_id: int = 1, timescale: int = 10_000_000) -> bytes:
    mvhd = full_box(b"mvhd", 1, 0, struct.pack(">QQIQ", 0, 0, timescale, 0), bytes(76), struct.pack(">I", track_id + 1))
    tkhd = full_box(b"tkhd", 1, 7, struct.pack(">QQIIQ", 0, 0, track_id, 0, 0), bytes(60))  # duration 0
    mdhd = full_box(b"mdhd", 1, 0, struct.pack(">QQIQ", 0, 0, timescale, 0), struct.pack(">HH", 0x55C4, 0))
    hdlr = full_box(b"hdlr", 0, 0, struct.pack(">I", 0), b"meta", bytes(12), b"scte35\x00")
    entry = box(b"scte", bytes(6), struct.pack(">H", 1))  # a MetaDataSampleEntry of coding name 'scte'
    stbl = box(
        b"stbl",
        full_box(b"stsd", 0, 0, struct.pack(">I", 1), entry),
        full_box(b"stts", 0, 0, struct.pack(">I", 0)),
        full_box(b"stsc", 0, 0, struct.pack(">I", 0)),
        full_box(b"stsz", 0, 0, struct.pack(">II", 0, 0)),
        full_box(b"stco", 0, 0, struct.pack(">I", 0)),
    )
    minf = box(b"minf", full_box(b"nmhd", 0, 0), box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 0))), stbl)
    trak = box(b"trak", tkhd, box(b"mdia", mdhd, hdlr, minf))
    trex = full_box(b"trex", 0, 0, struct.pack(">IIIII", track_id, 1, 0, 0, 0))
    return box(b"moov", mvhd, trak, box(b"mvex", trex))


def stream_header(*, track_id: int = 1, scheme: str = SCHEME, timescale: int = 10_000_000) -> bytes:
    """What a sparse POST starts with: ftyp, the live server manifest box, moov."""
    ftyp = box(b"ftyp", b"isml", struct.pack(">I", 1), b"piffiso2")
    manifest = live_manifest(track_id=track_id, scheme=scheme, timescale=timescale)
    return ftyp + manifest + sparse_moov(track_id=track_id, timescale=timescale)


def message(section: bytes, *, message_id: int = 1, delta: int = 0) -> bytes:
    return struct.pack(">III", 1, message_id, delta) + section


def sparse_fragment(payload: bytes, *, time: int, duration: int, sequence: int = 1, track_id: int = 1) -> bytes:
    """One sparse fragment: ``payload`` (a ``message``) at ``time`` for ``duration`` (0: unknown)."""
    mfhd = full_box(b"mfhd", 0, 0, struct.pack(">I", sequence))
    tfhd = full_box(b"tfhd", 0, 0x020000, struct.pack(">I", track_id))  # default-base-is-moof
    tfxd = box(b"uuid", TFXD, struct.pack(">I", 1 << 24), struct.pack(">QQ", time, duration))

    def moof(offset: int) -> bytes:
        trun = full_box(b"trun", 0, 0x000301, struct.pack(">Ii", 1, offset), struct.pack(">II", duration, len(payload)))
        return box(b"moof", mfhd, box(b"traf", tfhd, trun, tfxd))

    size = len(moof(0))
    return moof(size + 8) + box(b"mdat", payload)


MFRA = box(b"mfra", full_box(b"mfro", 0, 0, struct.pack(">I", 16)))

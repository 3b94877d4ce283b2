"""Ad markers in Smooth Streaming: a sparse ``StreamIndex`` of SCTE-35, as Azure Media Services
wrote it (pure).

The client manifest lists the timeline's cues (``Timeline.cues``) as a ``StreamIndex`` of
``Type="text"`` and ``Subtype="DATA"``, ``ParentStreamIndex`` the video (its times are on the
parent's clock and shifted as the parent's are), ``ManifestOutput="TRUE"``: every chunk carries
its message inline, an ``<f>`` with the base64 ``splice_info_section``, and its one
``QualityLevel`` names the scheme ``urn:scte:scte35:2013:bin`` in its ``CustomAttributes``
(AMS "Signaling Timed Metadata in Live Streaming", section 3.1).  ``d`` is the break's duration,
0 when the cue does not state one.  The chunk's fragment, ``QualityLevels(0)/Fragments(scte35=<t>)``,
is one sample, the binary section, with ``tfxd`` giving its time and duration.

Players without sparse track support skip it: dash.js's Smooth support finds no codec it plays
in a ``QualityLevel`` without a ``FourCC`` and leaves the stream out.
"""

from __future__ import annotations

import base64
import re
import struct
from dataclasses import dataclass

from kubecast.media.mp4 import box, full_box
from kubecast.media.timeline import Timeline, TimelineTrack

NAME = "scte35"
SCHEME = "urn:scte:scte35:2013:bin"
FRAGMENT = re.compile(rf"^QualityLevels\(0\)/Fragments\({NAME}=(?P<time>\d{{1,20}})\)$")
TFXD = bytes.fromhex("6d1d9b0542d544e680e2141daff757b2")


@dataclass(frozen=True)
class SparseChunk:
    time: int  # on the parent's clock, as its chunks are listed (shift applied)
    duration: int  # 0: not stated
    section: bytes


def sparse_chunks(timeline: Timeline, parent: TimelineTrack, *, shift: int, since: int) -> list[SparseChunk]:
    """The cues from ``since`` on (the parent's first listed time) in the parent's timescale."""
    scale = parent.info.timescale
    chunks: list[SparseChunk] = []
    for cue in timeline.cues:
        time = cue.time * scale // cue.timescale - shift
        if time < since - shift:
            continue  # before the listed window (a break still running then is in the HLS/DASH tags)
        duration = 0 if cue.duration is None else cue.duration * scale // cue.timescale
        if chunks and chunks[-1].time == time:
            continue  # an out and an in at one time (a zero-length break): one chunk per time
        chunks.append(SparseChunk(time, duration, cue.section_bytes))
    return chunks


def stream_index(chunks: list[SparseChunk], *, parent: str, timescale: int) -> list[str]:
    if not chunks:
        return []
    lines = [
        f'<StreamIndex Type="text" Name="{NAME}" Subtype="DATA" Chunks="{len(chunks)}" QualityLevels="1" '
        f'TimeScale="{timescale}" ParentStreamIndex="{parent}" ManifestOutput="TRUE" '
        f'Url="QualityLevels({{bitrate}})/Fragments({NAME}={{start time}})">',
        '<QualityLevel Index="0" Bitrate="0" CodecPrivateData="" FourCC="">'
        f'<CustomAttributes><Attribute Name="Scheme" Value="{SCHEME}"/></CustomAttributes></QualityLevel>',
    ]
    for chunk in chunks:
        encoded = base64.b64encode(chunk.section).decode()
        lines.append(f'<c t="{chunk.time}" d="{chunk.duration}"><f>{encoded}</f></c>')
    return lines + ["</StreamIndex>"]


def fragment(chunk: SparseChunk) -> bytes:
    """The sparse fragment of ``chunk``: one sample, the section, at its time."""
    tfhd = full_box(b"tfhd", 0, 0x020000, struct.pack(">I", 1))  # default-base-is-moof

    def moof(offset: int) -> bytes:
        trun = full_box(
            b"trun", 0, 0x000301, struct.pack(">Ii", 1, offset), struct.pack(">II", chunk.duration, len(chunk.section))
        )
        tfxd = box(b"uuid", TFXD, struct.pack(">I", 1 << 24), struct.pack(">QQ", chunk.time, chunk.duration))
        return box(b"moof", full_box(b"mfhd", 0, 0, struct.pack(">I", 1)), box(b"traf", tfhd, trun, tfxd))

    header = moof(0)
    return moof(len(header) + 8) + box(b"mdat", chunk.section)


def find(chunks: list[SparseChunk], path: str) -> SparseChunk | None:
    """The chunk a sparse fragment URL names, or None (also for a URL that is not one)."""
    match = FRAGMENT.match(path)
    if match is None:
        return None
    return next((chunk for chunk in chunks if chunk.time == int(match["time"])), None)

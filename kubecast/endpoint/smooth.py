"""Smooth Streaming: the client manifest and fragment URLs, from the same timeline (pure parts).

``…/<manifest>.ism/manifest`` is the client manifest: one ``StreamIndex`` per kind (video
renditions as its ``QualityLevel``s, audio), each in its track's own ``TimeScale``, chunk
times straight from the timeline, ``CodecPrivateData`` from the stored init segments.
``QualityLevels(<bitrate>)/Fragments(<kind>=<time>)`` is the stored CMAF segment that starts
at that time (a CMAF fragment is what Smooth clients read: a moof/mdat with the samples), with
the two boxes Smooth adds to the ``traf``: ``tfxd`` (the fragment's absolute time and
duration) and, while live, ``tfrf`` (the times of the next ``LOOKAHEAD`` fragments).  A live
Smooth client learns new fragments from ``tfrf`` rather than by reloading the manifest, so the
live manifest stops ``LOOKAHEAD`` fragments short of the edge, as IIS and Azure Media Services
did: every fragment it lists then has its successors to announce.  ``…/FragmentInfo(…)`` is the
same fragment's ``moof`` alone, which clients poll at the live edge.  The timeline's ad
markers are a sparse ``StreamIndex`` beside them (``smooth_sparse.py``).
"""

from __future__ import annotations

import re
import struct
from xml.sax.saxutils import quoteattr

from kubecast.media.mp4 import find_box
from kubecast.media.rows import common_numbers
from kubecast.media.timeline import SegmentRows, Timeline, TimelineSegment, TimelineTrack

from . import smooth_sparse
from .hls import audio_track, video_tracks

FRAGMENT = re.compile(
    r"^QualityLevels\((?P<bitrate>\d{1,12})\)/(?P<resource>Fragments|FragmentInfo)\((?P<kind>video|audio)=(?P<time>\d{1,20})\)$"
)
HNS = 10_000_000  # Smooth's default time unit: 100 ns
LOOKAHEAD = 2
TFXD = bytes.fromhex("6d1d9b0542d544e680e2141daff757b2")
TFRF = bytes.fromhex("d4807ef2ca3946958e5426cb9e46a79f")


def bitrates(timeline: Timeline) -> dict[str, int]:
    """Track id -> the Bitrate that names it in URLs: the encoder's target (stable), else the
    measured peak (pass-through), made unique within its kind."""
    result: dict[str, int] = {}
    for group in (video_tracks(timeline), [t for t in [audio_track(timeline)] if t is not None]):
        used: set[int] = set()
        for track in group:
            value = track.info.bandwidth or track.peak_bandwidth or track.average_bandwidth or 1
            while value in used:
                value += 1
            used.add(value)
            result[track.info.id] = value
    return result


def listed_rows(timeline: Timeline) -> dict[str, SegmentRows]:
    """Track id -> the rows the manifest lists: the segment numbers every stream has, so all
    streams begin (and end) together; a window trimmed by time may start one stream a
    segment earlier than another, and a player would stall on that leading gap."""
    numbered = [t for t in timeline.tracks if t.segments]
    common = common_numbers(t.segments for t in numbered)
    if timeline.state != "stopped":
        common -= set(sorted(common)[-LOOKAHEAD:])  # the edge's fragments are announced by tfrf
    return {t.info.id: t.segments.having(common) for t in timeline.tracks}


def origins(timeline: Timeline) -> dict[str, int]:
    """Track id -> what is subtracted from its times in the manifest and fragment URLs.

    On demand every stream starts at exactly 0: dash.js's Smooth support stalls on any leading
    gap, even the one frame by which audio and video segments of one number may differ.  That
    shifts audio against video by at most that difference (under one frame).  Live
    presentations keep their times: players join at the edge."""
    if timeline.state != "stopped":
        return {t.info.id: 0 for t in timeline.tracks}
    rows = listed_rows(timeline)
    return {t.info.id: rows[t.info.id][0].start if rows[t.info.id] else 0 for t in timeline.tracks}


def find_fragment(timeline: Timeline, path: str) -> tuple[TimelineTrack, TimelineSegment, int] | None:
    """(track, timeline row, the track's origin shift) a fragment (or FragmentInfo) URL names,
    or None."""
    match = FRAGMENT.match(path)
    if match is None:
        return None
    wanted = int(match["bitrate"])
    shift = origins(timeline)
    for track_id, value in bitrates(timeline).items():
        track = next(t for t in timeline.tracks if t.info.id == track_id)
        if value == wanted and track.info.kind == match["kind"]:
            row = next((r for r in track.segments if r.start - shift[track_id] == int(match["time"])), None)
            return (track, row, shift[track_id]) if row is not None else None
    return None


def sparse(timeline: Timeline) -> tuple[TimelineTrack, list[smooth_sparse.SparseChunk]] | None:
    """(parent track, chunks) of the sparse stream of ad markers, or None without any cue."""
    rows = listed_rows(timeline)
    audio = audio_track(timeline)
    parents = [t for t in video_tracks(timeline) if rows[t.info.id]] + [t for t in [audio] if t and rows[t.info.id]]
    if not parents or not timeline.cues:
        return None
    parent = parents[0]
    shift = origins(timeline)[parent.info.id]
    chunks = smooth_sparse.sparse_chunks(timeline, parent, shift=shift, since=rows[parent.info.id][0].start)
    return (parent, chunks) if chunks else None


def sparse_fragment(timeline: Timeline, path: str) -> bytes | None:
    """The sparse fragment a ``…/Fragments(scte35=<t>)`` URL names, or None."""
    found = sparse(timeline)
    chunk = smooth_sparse.find(found[1], path) if found is not None else None
    return None if chunk is None else smooth_sparse.fragment(chunk)


def _chunks(rows: SegmentRows, shift: int) -> list[str]:
    return [f'<c t="{row.start - shift}" d="{row.duration}"/>' for row in rows]


def client_manifest(timeline: Timeline, codec_private: dict[str, str]) -> str:
    """The Smooth Streaming client manifest; ``codec_private`` maps track id -> hex CodecPrivateData."""
    names = bitrates(timeline)
    shift = origins(timeline)
    rows = listed_rows(timeline)
    videos = [t for t in video_tracks(timeline) if rows[t.info.id]]
    audio = audio_track(timeline)
    live = timeline.state != "stopped"
    reference = videos[0] if videos else audio
    duration = 0
    if reference is not None and rows[reference.info.id]:
        first, last = rows[reference.info.id][0], rows[reference.info.id][-1]
        duration = (last.start + last.duration - first.start) * HNS // reference.info.timescale
    attributes = f'MajorVersion="2" MinorVersion="2" TimeScale="{HNS}" Duration="{0 if live else duration}"'
    if live:
        attributes += (
            f' IsLive="TRUE" LookAheadFragmentCount="{LOOKAHEAD}"'
            f' DVRWindowLength="{timeline.window_ms * HNS // 1000}" CanSeek="TRUE" CanPause="TRUE"'
        )
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', f"<SmoothStreamingMedia {attributes}>"]
    if videos:
        width = max(t.info.width or 0 for t in videos)
        height = max(t.info.height or 0 for t in videos)
        lines.append(
            f'<StreamIndex Type="video" Name="video" Chunks="{len(rows[videos[0].info.id])}" '
            f'QualityLevels="{len(videos)}" '
            f'TimeScale="{videos[0].info.timescale}" Url="QualityLevels({{bitrate}})/Fragments(video={{start time}})" '
            f'MaxWidth="{width}" MaxHeight="{height}" DisplayWidth="{width}" DisplayHeight="{height}">'
        )
        for index, track in enumerate(videos):
            lines.append(
                f'<QualityLevel Index="{index}" Bitrate="{names[track.info.id]}" FourCC="AVC1" '
                f'MaxWidth="{track.info.width or 0}" '
                f'MaxHeight="{track.info.height or 0}" '
                f'CodecPrivateData={quoteattr(codec_private.get(track.info.id, ""))}/>'
            )
        lines += _chunks(rows[videos[0].info.id], shift[videos[0].info.id]) + ["</StreamIndex>"]
    if audio is not None and rows[audio.info.id]:
        lines.append(
            f'<StreamIndex Type="audio" Name="audio" Chunks="{len(rows[audio.info.id])}" QualityLevels="1" '
            f'TimeScale="{audio.info.timescale}" '
            f'Url="QualityLevels({{bitrate}})/Fragments(audio={{start time}})">'
        )
        lines.append(
            f'<QualityLevel Index="0" Bitrate="{names[audio.info.id]}" FourCC="AACL" '
            f'SamplingRate="{audio.info.sample_rate or 48000}" '
            f'Channels="{audio.info.channels or 2}" BitsPerSample="16" PacketSize="4" AudioTag="255" '
            f'CodecPrivateData={quoteattr(codec_private.get(audio.info.id, ""))}/>'
        )
        lines += _chunks(rows[audio.info.id], shift[audio.info.id]) + ["</StreamIndex>"]
    if (markers := sparse(timeline)) is not None:
        parent, chunks = markers
        lines += smooth_sparse.stream_index(chunks, parent=parent.info.kind, timescale=parent.info.timescale)
    lines.append("</SmoothStreamingMedia>")
    return "\n".join(lines) + "\n"


def retimed(fragment: bytes, shift: int) -> bytes:
    """The stored CMAF segment with its ``tfdt`` moved back by ``shift`` (what the manifest says
    its time is): Smooth clients place samples by the fragment's own time where it has one."""
    if shift == 0:
        return fragment
    start, _end = find_box(fragment, [b"moof", b"traf", b"tfdt"])
    data = bytearray(fragment)
    if data[start] == 1:
        struct.pack_into(">Q", data, start + 4, struct.unpack_from(">Q", data, start + 4)[0] - shift)
    else:
        struct.pack_into(">I", data, start + 4, struct.unpack_from(">I", data, start + 4)[0] - shift)
    return bytes(data)


def lookahead(timeline: Timeline, track: TimelineTrack, row: TimelineSegment) -> list[tuple[int, int]] | None:
    """(time, duration) of the fragments after ``row`` that a live fragment announces; None on
    demand, where the manifest lists everything."""
    if timeline.state == "stopped":
        return None
    return list(track.segments.after(row.number)[:LOOKAHEAD].spans())


def _uuid_box(usertype: bytes, body: bytes) -> bytes:
    return (
        struct.pack(">I4s", 8 + 16 + 4 + len(body), b"uuid") + usertype + b"\x01\x00\x00\x00" + body
    )  # version 1: 64-bit times


def with_smooth_boxes(fragment: bytes, *, time: int, duration: int, following: list[tuple[int, int]] | None) -> bytes:
    """The fragment with ``tfxd`` (and, for a live one, ``tfrf`` listing ``following``) at the end
    of its ``traf``; the enclosing sizes and the ``trun`` data offset move with them."""
    added = _uuid_box(TFXD, struct.pack(">QQ", time, duration))
    if following is not None:
        added += _uuid_box(TFRF, bytes([len(following)]) + b"".join(struct.pack(">QQ", t, d) for t, d in following))
    moof_start, moof_end = find_box(fragment, [b"moof"])
    traf_start, traf_end = find_box(fragment, [b"traf"], moof_start, moof_end)
    trun_start, _ = find_box(fragment, [b"trun"], traf_start, traf_end)
    data = bytearray(fragment[:traf_end] + added + fragment[traf_end:])
    for header in (moof_start - 8, traf_start - 8):
        struct.pack_into(">I", data, header, struct.unpack_from(">I", data, header)[0] + len(added))
    if data[trun_start + 3] & 0x01:  # data-offset-present: measured from the moof, which grew
        struct.pack_into(">i", data, trun_start + 8, struct.unpack_from(">i", data, trun_start + 8)[0] + len(added))
    return bytes(data)


def moof_of(fragment: bytes) -> bytes:
    """What ``FragmentInfo`` serves: the fragment's ``moof`` box alone."""
    start, end = find_box(fragment, [b"moof"])
    return fragment[start - 8 : end]

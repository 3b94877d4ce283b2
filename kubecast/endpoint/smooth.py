"""Smooth Streaming: the client manifest and fragment URLs, from the same timeline (pure parts).

``…/<manifest>.ism/manifest`` is the client manifest: one ``StreamIndex`` per kind (video
renditions as its ``QualityLevel``s, audio), each in its track's own ``TimeScale``, chunk
times straight from the timeline, ``CodecPrivateData`` from the stored init segments.
``QualityLevels(<bitrate>)/Fragments(<kind>=<time>)`` is the stored CMAF segment that starts
at that time: a CMAF fragment is what Smooth clients read (a moof/mdat with the samples), and
clients that need ``tfxd`` take the time from the manifest, as dash.js's Smooth support does.
"""

from __future__ import annotations

import re
import struct
from xml.sax.saxutils import quoteattr

from kubecast.media.mp4 import find_box
from kubecast.media.timeline import Timeline, TimelineTrack

from .hls import audio_track, video_tracks

FRAGMENT = re.compile(r"^QualityLevels\((?P<bitrate>\d{1,12})\)/Fragments\((?P<kind>video|audio)=(?P<time>\d{1,20})\)$")
HNS = 10_000_000  # Smooth's default time unit: 100 ns


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


def listed_rows(timeline: Timeline) -> dict[str, list]:
    """Track id -> the rows the manifest lists: the segment numbers every stream has, so all
    streams begin (and end) together; a window trimmed by time may start one stream a
    segment earlier than another, and a player would stall on that leading gap."""
    numbered = [t for t in timeline.tracks if t.segments]
    common = set.intersection(*({r[0] for r in t.segments} for t in numbered)) if numbered else set()
    return {t.info.id: [r for r in t.segments if r[0] in common] for t in timeline.tracks}


def origins(timeline: Timeline) -> dict[str, int]:
    """Track id -> what is subtracted from its times in the manifest and fragment URLs.

    On demand every stream starts at exactly 0: dash.js's Smooth support stalls on any leading
    gap, even the one frame by which audio and video segments of one number may differ.  That
    shifts audio against video by at most that difference (under one frame).  Live
    presentations keep their times: players join at the edge."""
    if timeline.state != "stopped":
        return {t.info.id: 0 for t in timeline.tracks}
    rows = listed_rows(timeline)
    return {t.info.id: rows[t.info.id][0][1] if rows[t.info.id] else 0 for t in timeline.tracks}


def find_fragment(timeline: Timeline, path: str) -> tuple[TimelineTrack, list] | None:
    """(track, timeline row) a fragment URL names, or None."""
    match = FRAGMENT.match(path)
    if match is None:
        return None
    wanted = int(match["bitrate"])
    shift = origins(timeline)
    for track_id, value in bitrates(timeline).items():
        track = next(t for t in timeline.tracks if t.info.id == track_id)
        if value == wanted and track.info.kind == match["kind"]:
            row = next((r for r in track.segments if r[1] - shift[track_id] == int(match["time"])), None)
            return (track, row) if row is not None else None
    return None


def _chunks(rows: list, shift: int) -> list[str]:
    return [f'<c t="{row[1] - shift}" d="{row[2]}"/>' for row in rows]


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
        duration = (last[1] + last[2] - first[1]) * HNS // reference.info.timescale
    attributes = f'MajorVersion="2" MinorVersion="2" TimeScale="{HNS}" Duration="{0 if live else duration}"'
    if live:
        attributes += f' IsLive="TRUE" LookAheadFragmentCount="0" DVRWindowLength="{timeline.window_ms * HNS // 1000}" CanSeek="TRUE" CanPause="TRUE"'
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', f"<SmoothStreamingMedia {attributes}>"]
    if videos:
        width = max(t.info.width or 0 for t in videos)
        height = max(t.info.height or 0 for t in videos)
        lines.append(f'<StreamIndex Type="video" Name="video" Chunks="{len(rows[videos[0].info.id])}" QualityLevels="{len(videos)}" '
                     f'TimeScale="{videos[0].info.timescale}" Url="QualityLevels({{bitrate}})/Fragments(video={{start time}})" '
                     f'MaxWidth="{width}" MaxHeight="{height}" DisplayWidth="{width}" DisplayHeight="{height}">')
        for index, track in enumerate(videos):
            lines.append(f'<QualityLevel Index="{index}" Bitrate="{names[track.info.id]}" FourCC="AVC1" MaxWidth="{track.info.width or 0}" '
                         f'MaxHeight="{track.info.height or 0}" CodecPrivateData={quoteattr(codec_private.get(track.info.id, ""))}/>')
        lines += _chunks(rows[videos[0].info.id], shift[videos[0].info.id]) + ["</StreamIndex>"]
    if audio is not None and rows[audio.info.id]:
        lines.append(f'<StreamIndex Type="audio" Name="audio" Chunks="{len(rows[audio.info.id])}" QualityLevels="1" TimeScale="{audio.info.timescale}" '
                     f'Url="QualityLevels({{bitrate}})/Fragments(audio={{start time}})">')
        lines.append(f'<QualityLevel Index="0" Bitrate="{names[audio.info.id]}" FourCC="AACL" SamplingRate="{audio.info.sample_rate or 48000}" '
                     f'Channels="{audio.info.channels or 2}" BitsPerSample="16" PacketSize="4" AudioTag="255" '
                     f'CodecPrivateData={quoteattr(codec_private.get(audio.info.id, ""))}/>')
        lines += _chunks(rows[audio.info.id], shift[audio.info.id]) + ["</StreamIndex>"]
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

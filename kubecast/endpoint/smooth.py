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
from xml.sax.saxutils import quoteattr

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


def origins(timeline: Timeline) -> dict[str, int]:
    """Track id -> what is subtracted from its times in the manifest and fragment URLs, so an
    on-demand presentation starts at 0 in every stream (dash.js's Smooth support does not
    skip a leading gap).  Live presentations keep their times: players join at the edge."""
    if timeline.state != "stopped":
        return {t.info.id: 0 for t in timeline.tracks}
    starts = [t.segments[0][1] / t.info.timescale for t in timeline.tracks if t.segments]
    first = min(starts, default=0.0)
    return {t.info.id: round(first * t.info.timescale) for t in timeline.tracks}


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


def _chunks(track: TimelineTrack, shift: int) -> list[str]:
    return [f'<c t="{row[1] - shift}" d="{row[2]}"/>' for row in track.segments]


def client_manifest(timeline: Timeline, codec_private: dict[str, str]) -> str:
    """The Smooth Streaming client manifest; ``codec_private`` maps track id -> hex CodecPrivateData."""
    names = bitrates(timeline)
    shift = origins(timeline)
    videos = [t for t in video_tracks(timeline) if t.segments]
    audio = audio_track(timeline)
    live = timeline.state != "stopped"
    reference = videos[0] if videos else audio
    duration = 0
    if reference is not None and reference.segments:
        first, last = reference.segments[0], reference.segments[-1]
        duration = (last[1] + last[2] - first[1]) * HNS // reference.info.timescale
    attributes = f'MajorVersion="2" MinorVersion="2" TimeScale="{HNS}" Duration="{0 if live else duration}"'
    if live:
        attributes += f' IsLive="TRUE" LookAheadFragmentCount="0" DVRWindowLength="{timeline.window_ms * HNS // 1000}" CanSeek="TRUE" CanPause="TRUE"'
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', f"<SmoothStreamingMedia {attributes}>"]
    if videos:
        width = max(t.info.width or 0 for t in videos)
        height = max(t.info.height or 0 for t in videos)
        lines.append(f'<StreamIndex Type="video" Name="video" Chunks="{len(videos[0].segments)}" QualityLevels="{len(videos)}" '
                     f'TimeScale="{videos[0].info.timescale}" Url="QualityLevels({{bitrate}})/Fragments(video={{start time}})" '
                     f'MaxWidth="{width}" MaxHeight="{height}" DisplayWidth="{width}" DisplayHeight="{height}">')
        for index, track in enumerate(videos):
            lines.append(f'<QualityLevel Index="{index}" Bitrate="{names[track.info.id]}" FourCC="AVC1" MaxWidth="{track.info.width or 0}" '
                         f'MaxHeight="{track.info.height or 0}" CodecPrivateData={quoteattr(codec_private.get(track.info.id, ""))}/>')
        lines += _chunks(videos[0], shift[videos[0].info.id]) + ["</StreamIndex>"]
    if audio is not None and audio.segments:
        lines.append(f'<StreamIndex Type="audio" Name="audio" Chunks="{len(audio.segments)}" QualityLevels="1" TimeScale="{audio.info.timescale}" '
                     f'Url="QualityLevels({{bitrate}})/Fragments(audio={{start time}})">')
        lines.append(f'<QualityLevel Index="0" Bitrate="{names[audio.info.id]}" FourCC="AACL" SamplingRate="{audio.info.sample_rate or 48000}" '
                     f'Channels="{audio.info.channels or 2}" BitsPerSample="16" PacketSize="4" AudioTag="255" '
                     f'CodecPrivateData={quoteattr(codec_private.get(audio.info.id, ""))}/>')
        lines += _chunks(audio, shift[audio.info.id]) + ["</StreamIndex>"]
    lines.append("</SmoothStreamingMedia>")
    return "\n".join(lines) + "\n"

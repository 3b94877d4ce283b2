"""HLS playlists rendered from the timeline (pure).

fMP4/CMAF segments need ``EXT-X-MAP`` and therefore version 6; version 7 is declared because
the multivariant playlist may carry attributes defined there.  ``BANDWIDTH`` is the peak
measured over the segments in the window (video plus audio), ``AVERAGE-BANDWIDTH`` the mean,
falling back to the encoder's targets before any segment exists; players pick renditions by
them, so they must be honest.  Closed captions the video carries in-band (CEA-608 in its SEI)
get one ``EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS`` per channel and ``CLOSED-CAPTIONS`` on the variants
that carry them; a channel without captions says nothing about them.  Every audio track (one per
language of the contribution) is an ``EXT-X-MEDIA:TYPE=AUDIO`` rendition of the one ``audio``
group, with its ``LANGUAGE`` and a ``NAME`` players list; the first (the contribution's first
audio) is the ``DEFAULT``.  A variant's ``BANDWIDTH`` counts the largest of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from fractions import Fraction

from kubecast.media.timeline import Timeline, TimelineSegment, TimelineTrack

from .admarkers import cue_tags, daterange_tags

VERSION = 7
TS_VERSION = 3  # MPEG-TS segments: no EXT-X-MAP, what the oldest HLS devices read


def _bandwidths(track: TimelineTrack) -> tuple[int, int]:
    peak = track.peak_bandwidth or track.info.bandwidth
    average = track.average_bandwidth or track.info.bandwidth
    return peak, min(average, peak)


def _frame_rate(text: str | None) -> str | None:
    if not text:
        return None
    if "/" in text:
        numerator, denominator = text.split("/")
        return f"{int(numerator) / int(denominator):.3f}"
    return f"{float(text):.3f}"


def video_tracks(timeline: Timeline) -> list[TimelineTrack]:
    tracks = [t for t in timeline.tracks if t.info.kind == "video"]
    return sorted(tracks, key=lambda t: _bandwidths(t)[0], reverse=True)


def audio_tracks(timeline: Timeline) -> list[TimelineTrack]:
    """The audio tracks, the contribution's first audio (``audio``) first, then ``audio-1``, ..."""
    tracks = [t for t in timeline.tracks if t.info.kind == "audio"]
    return sorted(tracks, key=lambda t: (t.info.id != "audio", len(t.info.id), t.info.id))


def audio_track(timeline: Timeline) -> TimelineTrack | None:
    """The first audio track: the one muxed where only one fits (MPEG-TS segments, Smooth)."""
    return next(iter(audio_tracks(timeline)), None)


def audio_names(tracks: list[TimelineTrack]) -> list[str]:
    """What players list for each audio track: its language, made unique where two share one."""
    names: list[str] = []
    for track in tracks:
        name = track.info.language or "und"
        names.append(name if name not in names else f"{name} ({track.info.id})")
    return names


CAPTIONS_GROUP = "cc"


def caption_channels(tracks: list[TimelineTrack]) -> list[str]:
    """The CEA-608 channels (CC1 to CC4) any of the video tracks carries, in order."""
    return sorted({channel for track in tracks for channel in track.info.captions})


START_OVER = "#EXT-X-START:TIME-OFFSET=0,PRECISE=YES"  # play from the window's first segment, not the live edge
START_OVER_QUERY = "?startover"


def start_tags(timeline: Timeline, *, start_over: bool, low_latency: bool = False) -> list[str]:
    """``EXT-X-START`` of a standard playlist: the window's start with ``start_over``; else, while
    live, the channel's ``hlsStartOffset`` before the end.  Players that honour it (hls.js 1.7 does)
    start there instead of their own distance (hls.js: three target durations, whatever its
    ``liveSyncDurationCount``, which only moves a player that falls further behind), and hold it
    at rate 1.  RFC 8216 says a live offset SHOULD NOT be within three target durations of the
    end: the channel's opt-in (documented) trades that buffer for latency.  Never on the LL-HLS
    playlists (``low_latency``): their players start ``PART-HOLD-BACK`` behind the edge."""
    if start_over:
        return [START_OVER]
    offset = timeline.hls_start_offset_ms
    if offset is None or low_latency or timeline.state == "stopped":
        return []
    return [f"#EXT-X-START:TIME-OFFSET=-{offset / 1000:.3f}"]


def multivariant_playlist(
    timeline: Timeline, *, ts: bool = False, prefix: str = "", start_over: bool = False, low_latency: bool = False
) -> str:
    """The ABR set; with ``ts``, for HLS with MPEG-TS segments (version 3, audio muxed into
    every video segment, so no audio group).  ``start_over``: players start at the start of
    the window (start-over) instead of the live edge; the media playlists are asked for the
    same way, since players differ in which playlist's ``EXT-X-START`` they honour (a live
    start offset is in both, see ``start_tags``; ``low_latency``: the LL-HLS set, without it)."""
    query = START_OVER_QUERY if start_over else ""
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{TS_VERSION if ts else VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS"] + (
        start_tags(timeline, start_over=start_over, low_latency=low_latency)
    )
    audios = audio_tracks(timeline)[: 1 if ts else None]  # MPEG-TS segments mux the first audio only
    audio = audios[0] if audios else None
    audio_peak = max((_bandwidths(t)[0] for t in audios), default=0)
    audio_average = max((_bandwidths(t)[1] for t in audios), default=0)
    if not ts:
        for index, (track, name) in enumerate(zip(audios, audio_names(audios))):
            channels = f',CHANNELS="{track.info.channels}"' if track.info.channels else ""
            default = "YES" if index == 0 else "NO"
            lines.append(
                f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="{name}",LANGUAGE="{track.info.language or "und"}",'
                f"DEFAULT={default},AUTOSELECT=YES{channels},URI=\"{track.info.id}/index.m3u8{query}\""
            )
    videos = video_tracks(timeline)
    for channel in caption_channels(videos):
        lines.append(
            f'#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="{CAPTIONS_GROUP}",NAME="{channel}",INSTREAM-ID="{channel}",'
            "AUTOSELECT=YES"
        )
    for track in videos:
        peak, average = _bandwidths(track)
        codecs = ",".join([track.info.codecs, *dict.fromkeys(t.info.codecs for t in audios)])
        attributes = [
            f"BANDWIDTH={peak + audio_peak}",
            f"AVERAGE-BANDWIDTH={average + audio_average}",
            f'CODECS="{codecs}"',
        ]
        if track.info.width and track.info.height:
            attributes.append(f"RESOLUTION={track.info.width}x{track.info.height}")
        if rate := _frame_rate(track.info.frame_rate):
            attributes.append(f"FRAME-RATE={rate}")
        if audio is not None and not ts:
            attributes.append('AUDIO="audio"')
        if track.info.captions:
            attributes.append(f'CLOSED-CAPTIONS="{CAPTIONS_GROUP}"')
        lines += ["#EXT-X-STREAM-INF:" + ",".join(attributes), f"{prefix}{track.info.id}/index.m3u8{query}"]
    return "\n".join(lines) + "\n"


def program_date_time(timeline: Timeline, start: int, timescale: int) -> str | None:
    moment = timeline.wall_clock(start, timescale)
    if moment is None:
        return None
    moment = moment - timedelta(microseconds=moment.microsecond % 1000)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def target_duration(timeline: Timeline, rows: Sequence[TimelineSegment], timescale: int) -> int:
    """EXT-X-TARGETDURATION: the longest segment, rounded (the channel's segment duration before any)."""
    return max(
        (max(1, round(r.duration / timescale)) for r in rows),
        default=max(1, round(timeline.segment_duration_ms / 1000)),
    )


def media_playlist(
    timeline: Timeline,
    track: TimelineTrack,
    *,
    ts: bool = False,
    start_over: bool = False,
    key_tag: Callable[[int], str] | None = None,
    cue_out_in: bool = False,
) -> str:
    """``key_tag``: the ``EXT-X-KEY`` line in force for a segment number (encrypted renditions);
    written where it changes.  ``EXT-X-MAP`` comes before it, so the init segment stays clear.
    ``cue_out_in``: ad breaks also as ``EXT-X-CUE-OUT``/``-CONT``/``-IN`` (the endpoint's
    ``hlsCueTags``), besides ``EXT-X-DATERANGE``."""
    timescale = track.info.timescale
    rows = track.segments
    target = target_duration(timeline, rows, timescale)
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{TS_VERSION if ts else VERSION}",
        f"#EXT-X-TARGETDURATION:{target}",
        f"#EXT-X-MEDIA-SEQUENCE:{track.media_sequence()}",
    ]
    if discontinuity_sequence := track.discontinuity_sequence():
        lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuity_sequence}")
    lines += (
        ["#EXT-X-INDEPENDENT-SEGMENTS"]
        + start_tags(timeline, start_over=start_over)
        + ([] if ts else ['#EXT-X-MAP:URI="init.mp4"'])
    )
    current_key = None
    # Ad markers go before the segment their splice falls in (the last ones after the last segment).
    markers = daterange_tags(timeline, timeline.cues)
    # Times and tag lists per row only where there are cues: a window of days has many rows.
    legacy = None
    if cue_out_in and timeline.cues:
        spans = [(Fraction(row.start, timescale), Fraction(row.start + row.duration, timescale)) for row in rows]
        legacy = cue_tags(timeline.cues, spans)
    for index, row in enumerate(rows):
        if markers:
            end = Fraction(row.start + row.duration, timescale)
            while markers and markers[0][0] < end:
                lines.append(markers.pop(0)[1])
        if legacy is not None:
            lines += legacy[index]
        if row.discontinuity and index > 0:
            lines.append("#EXT-X-DISCONTINUITY")
        if key_tag is not None and (tag := key_tag(row.number)) != current_key:
            lines.append(tag)
            current_key = tag
        if index == 0 or row.discontinuity:
            if stamp := program_date_time(timeline, row.start, timescale):
                lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{stamp}")
        lines += [f"#EXTINF:{row.duration / timescale:.3f},", f"{row.number}.{'ts' if ts else 'm4s'}"]
    lines += [tag for _, tag in markers]
    if timeline.state == "stopped":
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"

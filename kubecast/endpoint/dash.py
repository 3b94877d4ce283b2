"""MPEG-DASH manifests rendered from the timeline (pure).

Segments are addressed by time (``$Time$``): a SegmentTimeline with time addressing
tolerates gaps in numbering (a pass-through contribution's irregular key frames) and is
what Azure Media Services served.  The video AdaptationSet shares one SegmentTimeline, made
of the segments every video rendition has already published, because the ladder is aligned
by construction and players switch renditions at those boundaries.  CEA-608 captions in the
video's SEI are signalled with an ``Accessibility`` descriptor (SCTE 214-1) naming each channel;
their language is not known (608 does not carry it): ``und``.  Each audio track (one per language
of the contribution) is an AdaptationSet of its own with its ``lang``, from which a player
chooses a language; all are on the video's segment grid.  ID3 timed metadata travels in the
video segments as ``emsg`` boxes, announced by an ``InbandEventStream`` of the AOM ID3 scheme.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import escape, quoteattr

from kubecast.media.cpix import DrmSignal
from kubecast.media.metadata import ID3_SCHEME
from kubecast.media.rows import common_numbers
from kubecast.media.timeline import Timeline, TimelineTrack

from .admarkers import event_stream
from .hls import audio_tracks, caption_channels, video_tracks
from .lldash import LowLatencyDash, producer_reference_time

PROFILES = "urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019"
CEA608_SCHEME = "urn:scte:dash:cc:cea-608:2015"
CLEARKEY_SCHEME = "urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e"
ROLE_SCHEME = "urn:mpeg:dash:role:2011"
NAMESPACES = (
    'xmlns:cenc="urn:mpeg:cenc:2013" xmlns:dashif="https://dashif.org/CPS" xmlns:mspr="urn:microsoft:playready"'
)


@dataclass(frozen=True)
class DashProtection:
    """Common Encryption of the listed segments: ``scheme`` (``cenc`` or ``cbcs``) and its key id,
    then either the ClearKey licence URL (keys from this endpoint) or the DRM systems' signalling
    from a key server (``signals``); the segments are served under ``<scheme>/``."""

    scheme: str
    key_id: bytes
    license_url: str | None = None
    signals: tuple[DrmSignal, ...] = ()

    def elements(self) -> str:
        kid = str(uuid.UUID(bytes=self.key_id))
        parts = [
            f'<ContentProtection schemeIdUri="urn:mpeg:dash:mp4protection:2011" value="{self.scheme}" '
            f'cenc:default_KID="{kid}"/>'
        ]
        if self.license_url is not None:
            parts.append(
                # default_KID here too: dash.js builds ClearKey's "keyids" init data from this element's;
                # one Laurl only: dash.js reads a repeated element as a list and finds none
                f'<ContentProtection schemeIdUri="{CLEARKEY_SCHEME}" value="ClearKey1.0" cenc:default_KID="{kid}">'
                f'<dashif:Laurl>{escape(self.license_url)}</dashif:Laurl></ContentProtection>'
            )
        for signal in self.signals:
            # the key server's ContentProtectionData when it gave some (checked well-formed in
            # kubecast.media.cpix), else its pssh box; a system with neither (FairPlay) is HLS-only
            if signal.content_protection_data is not None:
                inner = signal.content_protection_data
            elif signal.pssh is not None:
                inner = f"<cenc:pssh>{base64.b64encode(signal.pssh).decode()}</cenc:pssh>"
            else:
                continue
            parts.append(
                f'<ContentProtection schemeIdUri="urn:uuid:{signal.system.system_id}" '
                f'value="{signal.system.dash_value}" cenc:default_KID="{kid}">{inner}</ContentProtection>'
            )
        return "".join(parts)


def iso_duration(seconds: float) -> str:
    return f"PT{seconds:.3f}".rstrip("0").rstrip(".") + "S"


def iso_time(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def segment_timeline(rows: Sequence[tuple[int, int]]) -> str:
    """<S> elements for (start, duration) rows, run-length compressed with @r."""
    elements, index = [], 0
    while index < len(rows):
        start, duration = rows[index]
        repeat = 0
        while index + repeat + 1 < len(rows) and rows[index + repeat + 1] == (
            start + (repeat + 1) * duration,
            duration,
        ):
            repeat += 1
        gap = index > 0 and rows[index - 1][0] + rows[index - 1][1] != start
        t = f' t="{start}"' if index == 0 or gap else ""
        r = f' r="{repeat}"' if repeat else ""
        elements.append(f'<S{t} d="{duration}"{r}/>')
        index += repeat + 1
    return "".join(elements)


def _common_rows(tracks: list[TimelineTrack]) -> Sequence[tuple[int, int]]:
    """(start, duration) of the segment numbers that every one of the tracks has."""
    return tracks[0].segments.having(common_numbers(t.segments for t in tracks)).spans() if tracks else []


def _template(
    timescale: int, rows: Sequence[tuple[int, int]], origin_seconds: float | None = None, folder: str = ""
) -> str:
    """``origin_seconds``: the media time that is presentation time 0 (on demand), written as
    ``presentationTimeOffset`` in this template's timescale, so that a recording made at hour
    three of a channel's timeline presents from 0 to its duration, as a static MPD must."""
    offset = f' presentationTimeOffset="{round(origin_seconds * timescale)}"' if origin_seconds else ""
    return (
        f'<SegmentTemplate timescale="{timescale}"{offset} initialization="{folder}$RepresentationID$/init.mp4" '
        f'media="{folder}$RepresentationID$/t$Time$.m4s">'
        f"<SegmentTimeline>{segment_timeline(rows)}</SegmentTimeline></SegmentTemplate>"
    )


_NTSC = {"23.976": "24000/1001", "29.970": "30000/1001", "59.940": "60000/1001"}


def frame_rate_attribute(text: str | None) -> str | None:
    """DASH wants an integer or a fraction (30000/1001), never a decimal."""
    if not text:
        return None
    if "." not in text:
        return text
    return _NTSC.get(text) or f"{round(float(text) * 1000)}/1000"


def _bandwidth(track: TimelineTrack) -> int:
    return track.peak_bandwidth or track.info.bandwidth


def _listed_seconds(
    video: list[TimelineTrack], audio: TimelineTrack | None, rows_video: Sequence[tuple[int, int]]
) -> float:
    """How long the listed segments last, first start to last end: the video's rows, else the
    first audio track's (0 when nothing is listed)."""
    if rows_video:
        rows, timescale = rows_video, video[0].info.timescale
    elif audio is not None and audio.segments:
        rows, timescale = audio.segments.spans(), audio.info.timescale
    else:
        return 0.0
    return (rows[-1][0] + rows[-1][1] - rows[0][0]) / timescale


def mpd(
    timeline: Timeline,
    *,
    time_url: str,
    now: datetime,
    protection: DashProtection | None = None,
    low_latency: LowLatencyDash | None = None,
) -> str:
    """``low_latency``: the live channel's low-latency MPD (``kubecast.endpoint.lldash``): segments
    by number, each asked for while it is being written; never with ``protection`` (parts are
    served clear) and never for a stopped channel (nothing is being written)."""
    video, audios = video_tracks(timeline), audio_tracks(timeline)
    audio = audios[0] if audios else None
    segment_seconds = timeline.segment_duration_ms / 1000
    static = timeline.state == "stopped"
    if low_latency is not None and (static or protection is not None):
        raise ValueError("a low-latency MPD is for a live channel without content protection")
    # a low-latency player holds about a part in its buffer, not two segments
    buffer = 2 * low_latency.part_duration_ms / 1000 if low_latency else 2 * segment_seconds
    attributes = [
        f'profiles="{PROFILES}"',
        f'minBufferTime="{iso_duration(buffer)}"',
        f'maxSegmentDuration="{iso_duration(segment_seconds)}"',
    ]
    rows_video = _common_rows(video)
    origin = None  # on demand: the earliest start of any listed stream (one origin keeps lip sync)
    if static:
        starts = ([rows_video[0][0] / video[0].info.timescale] if rows_video else []) + [
            track.segments[0].start / track.info.timescale for track in audios if track.segments
        ]
        origin = min(starts, default=None)
        length = _listed_seconds(video, audio, rows_video)
        attributes = ['type="static"', f'mediaPresentationDuration="{iso_duration(length)}"', *attributes]
    else:
        depth = timeline.window_ms / 1000
        if low_latency is not None:
            # A number-addressed (low-latency) MPD says what exists only through
            # timeShiftBufferDepth: from now - depth to now.  A channel younger than its window has
            # less than the window, and a depth longer than what exists sends players after numbers
            # that were never made; ffmpeg (5.1's DASH demuxer) even computes its oldest segment as
            # now - availabilityStartTime - depth in unsigned arithmetic, which wraps while the
            # channel is younger than the depth, and then asks for the same segment forever.  The
            # listed span (at least the segment being written) ends before now, so
            # [now - span, now] is all stored or being written.
            depth = min(depth, max(segment_seconds, _listed_seconds(video, audio, rows_video)))
        attributes = [
            'type="dynamic"',
            f'availabilityStartTime="{iso_time(timeline.availability_start_time or now)}"',
            f'publishTime="{iso_time(timeline.updated)}"',
            f'minimumUpdatePeriod="{iso_duration(segment_seconds)}"',
            f'timeShiftBufferDepth="{iso_duration(depth)}"',
            f'suggestedPresentationDelay="{iso_duration(3 * segment_seconds)}"',
            *attributes,
        ]
    namespaces = f" {NAMESPACES}" if protection else ""
    folder = f"{protection.scheme}/" if protection else ""
    signalling = protection.elements() if protection else ""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"{namespaces} {" ".join(attributes)}>',
    ]
    if low_latency is not None:
        parts.append(low_latency.service_description())
    parts.append('<Period id="0" start="PT0S">')
    # a low-latency MPD counts latency from availabilityStartTime: media time 0 was made then
    reference = (
        producer_reference_time(iso_time(timeline.availability_start_time or now)) if low_latency is not None else ""
    )

    def template(timescale: int, rows: Sequence[tuple[int, int]]) -> str:
        if low_latency is not None:
            return low_latency.template(timescale)
        return _template(timescale, rows, origin, folder)

    if markers := event_stream(timeline.cues, origin_seconds=origin):
        parts.append(markers)
    if video:
        max_width = max(t.info.width or 0 for t in video)
        max_height = max(t.info.height or 0 for t in video)
        parts.append(
            '<AdaptationSet id="0" contentType="video" mimeType="video/mp4" segmentAlignment="true" startWithSAP="1" '
            f'maxWidth="{max_width}" maxHeight="{max_height}">'
        )
        # the video segments carry the ID3 items as emsg boxes (kubecast.endpoint.events); parts do not
        if timeline.metadata and low_latency is None:
            parts.append(f'<InbandEventStream schemeIdUri="{ID3_SCHEME}" value=""/>')
        if reference:
            parts.append(reference)
        if captions := caption_channels(video):
            value = ";".join(f"{channel}=und" for channel in captions)
            parts.append(f'<Accessibility schemeIdUri="{CEA608_SCHEME}" value="{value}"/>')
        parts.append(signalling + template(video[0].info.timescale, rows_video))
        for track in video:
            rate = f' frameRate="{value}"' if (value := frame_rate_attribute(track.info.frame_rate)) else ""
            parts.append(
                f'<Representation id={quoteattr(track.info.id)} bandwidth="{_bandwidth(track)}" '
                f'codecs="{track.info.codecs}" '
                f'width="{track.info.width}" height="{track.info.height}" sar="1:1"{rate}/>'
            )
        parts.append("</AdaptationSet>")
    for index, track in enumerate(audios):
        language = track.info.language or "und"
        # With several languages, players start with the one HLS marks DEFAULT=YES (the first): Shaka
        # takes the main Role, dash.js the highest selectionPriority (without one, the highest bitrate:
        # whichever language happened to cost more).
        several = len(audios) > 1
        priority = ' selectionPriority="2"' if several and index == 0 else ""
        role = f'<Role schemeIdUri="{ROLE_SCHEME}" value="{"alternate" if index else "main"}"/>' if several else ""
        parts.append(
            f'<AdaptationSet id="{1 + index}" contentType="audio" mimeType="audio/mp4" lang="{language}" '
            f'segmentAlignment="true" startWithSAP="1"{priority}>'
        )
        parts.append(
            '<AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" '
            f'value="{track.info.channels or 2}"/>'
        )
        rows = track.segments.spans()
        parts.append(signalling + reference + role + template(track.info.timescale, rows))
        parts.append(
            f'<Representation id={quoteattr(track.info.id)} bandwidth="{_bandwidth(track)}" '
            f'codecs="{track.info.codecs}" audioSamplingRate="{track.info.sample_rate}"/>'
        )
        parts.append("</AdaptationSet>")
    parts.append("</Period>")
    if not static:
        parts.append(f'<UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-iso:2014" value={quoteattr(time_url)}/>')
    parts.append("</MPD>")
    return "\n".join(parts) + "\n"

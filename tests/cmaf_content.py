"""Real CMAF content for tests that read what the endpoint serves, without a live pipeline.

Debian's ffmpeg makes a few seconds of H.264 (B-frames, a key frame every second) + AAC in
FLV; the same writer the encoder uses (``kubecast.media.mp4``) cuts it into one-second CMAF
segments, stored with a timeline as the packager would leave them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from flvfile import FlvReader, TagType
from helpers import make_contribution_flv

from kubecast.media.flv import parse_audio, parse_video
from kubecast.media.mp4 import Sample, avc_codec_string, init_segment_audio, init_segment_video, media_segment
from kubecast.media.timeline import Timeline, TimelineTrack
from kubecast.media.tracks import TrackInfo
from kubecast.storage import Store, layout

AST = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
CHANNEL = "news"


@dataclass
class CmafTrack:
    info: TrackInfo
    init: bytes
    segments: dict[int, bytes]  # number -> segment
    starts: dict[int, tuple[int, int]]  # number -> (start, duration)


def make_cmaf_tracks(folder, *, seconds: int = 4) -> list[CmafTrack]:
    reader = FlvReader()
    reader.feed(make_contribution_flv(folder / "source.flv", seconds=seconds))
    avcc = asc = None
    video, audio = [], []
    for tag in reader.tags():
        if tag.type == TagType.VIDEO:
            packet = parse_video(tag.data)
            if packet.is_sequence_header:
                avcc = packet.payload
            elif not packet.end_of_sequence:
                video.append((tag.timestamp * 90, packet.composition_offset * 90, packet.keyframe, packet.payload))
        elif tag.type == TagType.AUDIO:
            packet = parse_audio(tag.data)
            if packet.is_sequence_header:
                asc = packet.payload
            else:
                audio.append(packet.payload)
    video_track = _cut(video, 90000, lambda i: video[i + 1][0] - video[i][0] if i + 1 < len(video) else 3000)
    audio_rows = [(index * 1024, 0, True, frame) for index, frame in enumerate(audio)]
    audio_track = _cut(audio_rows, 48000, lambda i: 1024)
    width, height = 320, 240
    v_init = init_segment_video(width=width, height=height, timescale=90000, avcc=avcc)
    a_init = init_segment_audio(sample_rate=48000, channels=1, timescale=48000, asc=asc)
    return [
        CmafTrack(
            TrackInfo(
                id="v240",
                kind="video",
                codecs=avc_codec_string(avcc),
                bandwidth=500_000,
                timescale=90000,
                init=layout.init_name(v_init),
                width=width,
                height=height,
                frame_rate="30",
            ),
            v_init,
            *video_track,
        ),
        CmafTrack(
            TrackInfo(
                id="audio",
                kind="audio",
                codecs="mp4a.40.2",
                bandwidth=64_000,
                timescale=48000,
                init=layout.init_name(a_init),
                sample_rate=48000,
                channels=1,
            ),
            a_init,
            *audio_track,
        ),
    ]


def _cut(rows, timescale, duration_of):
    """One-second segments, each starting at a key frame (the contribution has one every second)."""
    groups: dict[int, list[int]] = {}
    for index, (dts, _cts, keyframe, _data) in enumerate(rows):
        number = dts // timescale
        groups.setdefault(number, []).append(index)
    segments, starts = {}, {}
    for number, indexes in groups.items():
        samples = [Sample(duration_of(i), len(rows[i][3]), rows[i][1], rows[i][2]) for i in indexes]
        first = rows[indexes[0]][0]
        segments[number] = media_segment(
            sequence_number=number + 1,
            base_decode_time=first,
            samples=samples,
            data=b"".join(rows[i][3] for i in indexes),
        )
        starts[number] = (first, sum(s.duration for s in samples))
    return segments, starts


async def store_channel(store: Store, tracks: list[CmafTrack], *, state: str = "stopped") -> Timeline:
    """The tracks as channel ``news``'s stored segments and timeline (from encoder A)."""
    timeline_tracks = []
    for track in tracks:
        await store.put(layout.init_key(CHANNEL, "A", track.info.id, track.info.init), track.init)
        rows = []
        for number, data in sorted(track.segments.items()):
            await store.put(layout.segment_key(CHANNEL, "A", track.info.id, number), data)
            start, duration = track.starts[number]
            rows.append([number, start, duration, len(data), "A", False])
        timeline_tracks.append(TimelineTrack(info=track.info, init_source="A", segments=rows))
    timeline = Timeline(
        channel=CHANNEL,
        state=state,
        updated=AST,
        availability_start_time=AST,
        segment_duration_ms=1000,
        window_ms=60000,
        tracks=timeline_tracks,
        generation=1,
    )
    await store.put(layout.timeline_key(CHANNEL), timeline.to_json())
    return timeline

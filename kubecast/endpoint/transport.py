"""HLS with MPEG-TS segments, remuxed on request from the one stored CMAF copy.

``/live/<channel>/ts/index.m3u8`` lists the video renditions (HLS version 3, audio muxed into
each video segment); ``…/ts/<rendition>/<n>.ts`` is CMAF segment n of the rendition and of
the audio track, remuxed by ``kubecast.media.tsmux``, with the timeline's ID3 timed metadata
whose time falls in the segment on a metadata PID of its own.  A remuxed segment is as immutable
as its sources (and the tags it carries, part of its cache key), so it is kept in the endpoint's
object cache beside them: every player of a live edge asks for the same ones.
"""

from __future__ import annotations

import re
from fractions import Fraction

from aiohttp import web

from kubecast.media.fmp4 import BoxStream, parse_fragment, parse_init
from kubecast.media.metadata import TimelineMetadata, in_range
from kubecast.media.mp4 import Mp4Error
from kubecast.media.timeline import Timeline, TimelineTrack
from kubecast.media.tsmux import TsSample, TsTag, mux_segment
from kubecast.storage import layout

from . import hls
from .live import (
    IMMUTABLE,
    OBJECTS,
    cached,
    cue_out_in,
    manifest_response,
    serve_bytes,
    start_over,
    timeline_of,
    track_of,
)
from .protected import aes128_object, protection_of

TS_FILE = re.compile(r"^(\d{1,12})\.ts$")


async def ts_multivariant(request: web.Request) -> web.Response:
    timeline = await timeline_of(request)
    # Under /live/<channel>/ts/ the renditions are next to it; a program's AMS manifest
    # (…/<name>.ism/manifest(format=m3u8-aapl)) has them under ts/.
    prefix = "ts/" if "locator" in request.match_info else ""
    over = start_over(request)
    return manifest_response(
        request,
        timeline,
        f"m3u8-ts:{over}",
        "application/vnd.apple.mpegurl",
        lambda: hls.multivariant_playlist(timeline, ts=True, prefix=prefix, start_over=over),
    )


async def ts_media_playlist(request: web.Request) -> web.Response:
    timeline = await timeline_of(request)
    track = track_of(timeline, request.match_info["track"])
    if track.info.kind != "video":
        raise web.HTTPNotFound(text="TS segments carry a video rendition (with the audio muxed in)\n")
    over = start_over(request)
    protection = protection_of(request)
    key_tag = protection.key_tag(timeline.channel, keys_path="../../keys/") if protection else None
    legacy = cue_out_in(request)
    return manifest_response(
        request,
        timeline,
        f"m3u8-ts:{track.info.id}:{over}",
        "application/vnd.apple.mpegurl",
        lambda: hls.media_playlist(timeline, track, ts=True, start_over=over, key_tag=key_tag, cue_out_in=legacy),
    )


async def _samples(
    request: web.Request, timeline: Timeline, track: TimelineTrack, number: int
) -> tuple[bytes, int, list[TsSample]] | None:
    """(codec configuration, timescale, samples) of segment ``number`` of a track, or None."""
    row = next((r for r in track.segments if r.number == number), None)
    if row is None:
        return None
    init = await cached(request, layout.init_key(timeline.channel, track.init_source, track.info.id, track.info.init))
    segment = await cached(request, layout.segment_key(timeline.channel, row.source, track.info.id, number))
    if init is None or segment is None:
        return None
    config = next(t for t in parse_init(init.data) if t.kind == track.info.kind)
    boxes = dict(BoxStream().feed(segment.data))
    samples = [
        TsSample(s.decode_time, s.composition_offset, s.keyframe, s.data)
        for found in parse_fragment(boxes[b"moof"], boxes[b"mdat"]).values()
        for s in found
    ]
    return config.codec_config, config.timescale, samples


def _tags(timeline: Timeline, video: TimelineTrack, number: int) -> list[TimelineMetadata]:
    """The timeline's ID3 items at media times within segment ``number`` of ``video``."""
    row = next((r for r in video.segments if r.number == number), None)
    if row is None or not timeline.metadata:
        return []
    start = Fraction(row.start, video.info.timescale)
    return in_range(timeline.metadata, start, start + Fraction(row.duration, video.info.timescale))


async def ts_segment(request: web.Request) -> web.Response:
    match = TS_FILE.match(request.match_info["file"])
    if match is None:
        raise web.HTTPNotFound(text="not a TS segment name\n")
    timeline = await timeline_of(request)
    video = track_of(timeline, request.match_info["track"])
    if video.info.kind != "video":
        raise web.HTTPNotFound(text="TS segments carry a video rendition\n")
    number = int(match.group(1))
    audio = hls.audio_track(timeline)
    tags = _tags(timeline, video, number)
    key = (
        "ts",
        timeline.channel,
        video.info.id,
        number,
        next((r.source for r in video.segments if r.number == number), None),
        tuple(tag.key for tag in tags),
    )

    async def remux() -> bytes:
        try:
            video_part = await _samples(request, timeline, video, number)
            if video_part is None:
                raise web.HTTPNotFound(text="segment not in the timeline\n")
            audio_part = await _samples(request, timeline, audio, number) if audio is not None else None
        except (Mp4Error, KeyError, StopIteration) as error:
            raise web.HTTPBadGateway(
                text=f"stored segment {number} of {video.info.id} is unreadable: {error}\n"
            ) from None
        avcc, video_timescale, video_samples = video_part
        asc, audio_timescale, audio_samples = audio_part if audio_part else (None, 48_000, [])
        return mux_segment(
            avcc=avcc,
            video_timescale=video_timescale,
            video=video_samples,
            asc=asc,
            audio_timescale=audio_timescale,
            audio=audio_samples,
            id3=[TsTag(int(tag.seconds * 90_000), tag.id3_bytes) for tag in tags],
        )

    protection = protection_of(request)
    if protection is None:
        found = await request.app[OBJECTS].get(key, remux)
    else:
        found = await aes128_object(
            request.app[OBJECTS],
            key,
            lambda: request.app[OBJECTS].get(key, remux),
            protection.key_for(timeline.channel, number),
        )
    if found is None:  # remux returns bytes or raises: not reached, but never serve None
        raise web.HTTPNotFound(text="not stored\n")
    return serve_bytes(request, found, "video/mp2t", IMMUTABLE)


def add_routes(app: web.Application, live: str, track: str) -> None:
    app.router.add_get(f"{live}/ts/index.m3u8", ts_multivariant)
    app.router.add_get(f"{live}/ts/{{track:{track}}}/index.m3u8", ts_media_playlist)
    app.router.add_get(f"{live}/ts/{{track:{track}}}/{{file:[^/]+}}", ts_segment)

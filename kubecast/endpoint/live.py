"""What every stream route builds on: the channel's (or program's) timeline for a request,
its manifests through the render cache, and stored objects with conditional and range
requests; and the live HLS/DASH handlers that the program and transport-stream routes reuse.

Names taken from a URL are matched against the patterns here before they are used; the
storage key is built by ``kubecast.storage.layout`` (and checked again by ``Store``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

from aiohttp import web

from kubecast.media.timeline import Timeline, TimelineSegment, TimelineTrack
from kubecast.storage import Store, layout

from . import dash, hls, metrics
from .access import TOKEN_PREFIX
from .events import prepended, segment_events
from .objects import CachedObject, ObjectCache, etag_of
from .protected import aes128_object, cenc_init, cenc_segment, protection_of
from .protection import Protection
from .ranges import UnsatisfiableRange, parse_range
from .timelines import TimelineCache

CHANNEL = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"
TRACK = r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}"
SCHEME = r"cenc|cbcs"  # a Common Encryption scheme's folder: /live/<channel>/<scheme>/<rendition>/…
SEGMENT_FILE = re.compile(r"^(?:(\d{1,12})|t(\d{1,18}))\.m4s$")
IMMUTABLE = "public, max-age=31536000, immutable"
MANIFEST_HITS, MANIFEST_MISSES = metrics.CACHE.labels("hit"), metrics.CACHE.labels("miss")  # looked up once
STORE_KEY = web.AppKey("store", Store)
TIMELINES = web.AppKey("timelines", TimelineCache)
OBJECTS = web.AppKey("objects", ObjectCache)
HLS_CUE_TAGS = web.AppKey("hls_cue_tags", bool)  # the endpoint config's hlsCueTags


def cue_out_in(request: web.Request) -> bool:
    """Whether HLS media playlists also carry EXT-X-CUE-OUT/-IN (the endpoint's hlsCueTags)."""
    return request.app.get(HLS_CUE_TAGS, False)


def not_found(text: str = "not found") -> web.Response:
    return web.Response(status=404, text=text + "\n")


async def timeline_of(request: web.Request) -> Timeline:
    """The channel's live timeline, or for program URLs the program's recorded one."""
    if "locator" in request.match_info:
        timeline = await request.app[TIMELINES].get_program(request.match_info["locator"])
        if timeline is None:
            raise web.HTTPNotFound(text="no such program (or it has not recorded anything yet)\n")
        return timeline
    timeline = await request.app[TIMELINES].get(request.match_info["channel"])
    if timeline is None:
        raise web.HTTPNotFound(text="no such channel\n")
    return timeline


def track_of(timeline: Timeline, track_id: str) -> TimelineTrack:
    track = next((t for t in timeline.tracks if t.info.id == track_id), None)
    if track is None:
        raise web.HTTPNotFound(text="no such rendition\n")
    return track


def manifest_cache_control(timeline: Timeline) -> str:
    if timeline.state == "stopped":
        return "public, max-age=3600"
    return f"public, max-age={max(1, timeline.segment_duration_ms // 2000)}"


def manifest_response(
    request: web.Request, timeline: Timeline, kind: str, content_type: str, render: Callable[[], str]
) -> web.Response:
    started = time.perf_counter()
    locator = request.match_info.get("locator")
    key = (f"locator:{locator}" if locator else timeline.channel, kind, request.host)
    body, hit = request.app[TIMELINES].rendered(key, timeline, render)
    if hit:
        MANIFEST_HITS.inc()
    else:
        MANIFEST_MISSES.inc()
        metrics.RENDER_SECONDS.labels(kind).observe(time.perf_counter() - started)
    return web.Response(
        body=body,
        headers={"Content-Type": f"{content_type}; charset=utf-8", "Cache-Control": manifest_cache_control(timeline)},
    )


def start_over(request: web.Request) -> bool:
    """``?startover`` on an HLS playlist: start at the window's start, not the live edge."""
    return "startover" in request.query


async def multivariant(request: web.Request) -> web.Response:
    timeline = await timeline_of(request)
    over = start_over(request)
    return manifest_response(
        request,
        timeline,
        f"m3u8:{over}",
        "application/vnd.apple.mpegurl",
        lambda: hls.multivariant_playlist(timeline, start_over=over),
    )


async def media_playlist(request: web.Request) -> web.Response:
    timeline = await timeline_of(request)
    track = track_of(timeline, request.match_info["track"])
    over = start_over(request)
    protection = protection_of(request)
    key_tag = protection.key_tag(timeline.channel, keys_path="../keys/") if protection else None
    legacy = cue_out_in(request)
    return manifest_response(
        request,
        timeline,
        f"m3u8:{track.info.id}:{over}",
        "application/vnd.apple.mpegurl",
        lambda: hls.media_playlist(timeline, track, start_over=over, key_tag=key_tag, cue_out_in=legacy),
    )


async def cenc_multivariant(request: web.Request) -> web.Response:
    """``<base>/<scheme>/index.m3u8``: HLS (fMP4) of the Common Encryption segments."""
    timeline = await timeline_of(request)
    _scheme_protection(request, request.match_info["scheme"])
    over = start_over(request)
    return manifest_response(
        request,
        timeline,
        f"m3u8-{request.match_info['scheme']}:{over}",
        "application/vnd.apple.mpegurl",
        lambda: hls.multivariant_playlist(timeline, start_over=over),
    )


async def cenc_media_playlist(request: web.Request) -> web.Response:
    timeline = await timeline_of(request)
    track = track_of(timeline, request.match_info["track"])
    scheme = request.match_info["scheme"]
    protection = _scheme_protection(request, scheme)
    lines = (await protection.cenc(timeline.channel)).hls_key_lines(protection.cenc_scheme)
    legacy = cue_out_in(request)
    over = start_over(request)
    return manifest_response(
        request,
        timeline,
        f"m3u8-{scheme}:{track.info.id}:{over}",
        "application/vnd.apple.mpegurl",
        lambda: hls.media_playlist(timeline, track, start_over=over, key_tag=lambda _number: lines, cue_out_in=legacy),
    )


async def dash_manifest(request: web.Request) -> web.Response:
    timeline = await timeline_of(request)
    time_url = f"{request.scheme}://{request.host}/time"
    protection, kind, signalling = protection_of(request), "mpd", None
    if protection is not None:
        cenc_keys = await protection.cenc(timeline.channel)
        license_url = None
        if not cenc_keys.from_key_server:
            # the licence URL is absolute (players do not resolve it against the MPD), so it, and
            # any token in the path, is part of what the rendered MPD depends on
            # … and it keeps the signed-URL token of a /t/<token>/… request, as relative URLs would
            keys = request.url.with_query(None).with_name("keys").joinpath("clearkey")
            license_url = str(keys.with_path(request.get(TOKEN_PREFIX, "") + keys.path))
        signalling = dash.DashProtection(protection.cenc_scheme, cenc_keys.key.key_id, license_url, cenc_keys.signals)
        kind = f"mpd:{license_url}"
    return manifest_response(
        request,
        timeline,
        kind,
        "application/dash+xml",
        lambda: dash.mpd(timeline, time_url=time_url, now=datetime.now(timezone.utc), protection=signalling),
    )


async def object_response(request: web.Request, key: str, content_type: str, cache_control: str) -> web.StreamResponse:
    """A stored object with conditional and range requests; immutable ones come from the
    in-memory cache (``kubecast.endpoint.objects``), anything else is read each time."""
    if cache_control == IMMUTABLE:
        found = await cached(request, key)
    else:
        data = await request.app[STORE_KEY].get(key)
        found = CachedObject(data, etag_of(data)) if data is not None else None
    if found is None:
        raise web.HTTPNotFound(text="not stored\n")
    return serve_bytes(request, found, content_type, cache_control)


async def cached(request: web.Request, key: str) -> CachedObject | None:
    """An immutable stored object, through the object cache."""
    return await request.app[OBJECTS].get(("stored", key), lambda: request.app[STORE_KEY].get(key))


def serve_bytes(request: web.Request, found: CachedObject, content_type: str, cache_control: str) -> web.Response:
    """``found`` as a 200, 206, 304 or 416, as the request's validators and range ask."""
    headers = {"Cache-Control": cache_control, "Accept-Ranges": "bytes", "ETag": found.etag}
    if request.headers.get("If-None-Match") == found.etag:
        return web.Response(status=304, headers=headers)
    size = len(found.data)
    try:
        span = parse_range(request.headers.get("Range"), size)
    except UnsatisfiableRange:
        return web.Response(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    if span is None:
        return web.Response(body=found.data, content_type=content_type, headers=headers)
    start, end = span
    return web.Response(
        status=206,
        body=found.data[start:end],
        content_type=content_type,
        headers={**headers, "Content-Range": f"bytes {start}-{end - 1}/{size}"},
    )


def media_type(track: TimelineTrack) -> str:
    return "audio/mp4" if track.info.kind == "audio" else "video/mp4"


async def init_segment(request: web.Request) -> web.StreamResponse:
    timeline = await timeline_of(request)
    track = track_of(timeline, request.match_info["track"])
    key = layout.init_key(timeline.channel, track.init_source, track.info.id, track.info.init)
    scheme = request.match_info.get("scheme")
    if scheme is not None:
        protection = _scheme_protection(request, scheme)
        found = await cenc_init(
            request.app[OBJECTS],
            key,
            lambda: cached(request, key),
            await protection.cenc(timeline.channel),
            protection.cenc_scheme,
        )
        if found is None:
            raise web.HTTPNotFound(text="not stored\n")
        return serve_bytes(request, found, media_type(track), IMMUTABLE)
    return await object_response(request, key, media_type(track), IMMUTABLE)


def _scheme_protection(request: web.Request, scheme: str) -> Protection:
    """The endpoint's protection if ``scheme`` is its Common Encryption scheme, else a 404."""
    protection = protection_of(request)
    if protection is None or protection.cenc_scheme != scheme:
        raise web.HTTPNotFound(text=f"this endpoint serves no {scheme} content\n")
    return protection


async def media_segment(request: web.Request) -> web.StreamResponse:
    match = SEGMENT_FILE.match(request.match_info["file"])
    if match is None:
        return not_found()
    timeline = await timeline_of(request)
    track = track_of(timeline, request.match_info["track"])
    number, start = match.groups()
    row = _row(track, number, start)
    if row is None and "locator" not in request.match_info and _just_beyond(track, number, start):
        # Listed by another replica a moment ago (a load balancer sent the playlist request
        # there): look again now rather than within the cache's time.  Only just past the live
        # edge, so made-up numbers cost no storage reads.
        timeline = await request.app[TIMELINES].get(timeline.channel, fresh=True) or timeline
        track = track_of(timeline, request.match_info["track"])
        row = _row(track, number, start)
    if row is None:
        raise web.HTTPNotFound(text="segment not in the timeline\n")
    key = layout.segment_key(timeline.channel, row.source, track.info.id, row.number)
    scheme, protection = request.match_info.get("scheme"), protection_of(request)
    events, carried = segment_events(timeline, track, row)
    objects = request.app[OBJECTS]

    def clear() -> Awaitable[CachedObject | None]:
        if not events:
            return cached(request, key)
        return objects.get(("emsg", key, carried), prepended(events, lambda: cached(request, key)))

    if scheme is None and protection is None:
        if not events:
            return await object_response(request, key, media_type(track), IMMUTABLE)
        found = await clear()
    elif scheme is not None:
        protection = _scheme_protection(request, scheme)
        init_key = layout.init_key(timeline.channel, track.init_source, track.info.id, track.info.init)
        found = await cenc_segment(
            objects,
            key,
            lambda: cached(request, key),
            lambda: cached(request, init_key),
            track.info.id,
            (await protection.cenc(timeline.channel)).key,
            protection.cenc_scheme,
        )
        if events and found is not None:  # the boxes stay clear, in front of the protected fragment
            protected = found
            found = await objects.get(("emsg", scheme, key, carried), lambda: _bytes(events + protected.data))
    else:  # HLS with AES-128: never the clear segment
        assert protection is not None  # neither a scheme nor protection was served above
        found = await aes128_object(
            objects, ("stored", key, carried), clear, protection.key_for(timeline.channel, row.number)
        )
    if found is None:
        raise web.HTTPNotFound(text="not stored\n")
    return serve_bytes(request, found, media_type(track), IMMUTABLE)


async def _bytes(data: bytes) -> bytes:
    return data


def _row(track: TimelineTrack, number: str | None, start: str | None) -> TimelineSegment | None:
    rows = track.segments
    index = rows.position(int(number)) if number is not None else rows.position_at(int(start or 0))
    return None if index is None else rows[index]


def _just_beyond(track: TimelineTrack, number: str | None, start: str | None) -> bool:
    """The segment asked for is one of the next two after the newest listed."""
    if not track.segments:
        return False
    newest = track.segments[-1]
    if number is not None:
        return newest.number < int(number) <= newest.number + 2
    return newest.start < int(start or 0) <= newest.start + 3 * newest.duration

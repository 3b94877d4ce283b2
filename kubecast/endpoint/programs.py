"""Program URLs: plain and Azure Media Services forms, over the program's recorded timeline.

``/<locator>/<manifest>.m3u8`` and ``.mpd``, and the AMS forms under
``/<locator>/<manifest>.ism/``: ``manifest(format=m3u8-cmaf)`` (HLS, CMAF segments),
``manifest(format=m3u8-aapl)`` (HLS with TS segments), ``manifest(format=mpd-time-cmaf)`` and
``manifest(format=mpd-time-csf)`` (DASH), and ``manifest`` itself is the Smooth Streaming client
manifest with its ``QualityLevels(…)/Fragments(…)`` (``smooth.py``).  Manifests name their renditions relatively, so the
renditions' playlists and segments are served under both ``/<locator>/`` and
``/<locator>/<manifest>.ism/``.  Anything else is a 4xx that says what is accepted.
"""

from __future__ import annotations

import re

from aiohttp import web

from kubecast.media.fmp4 import parse_init
from kubecast.media.mp4 import Mp4Error
from kubecast.media.timeline import Timeline
from kubecast.media.tsmux import parameter_sets
from kubecast.storage import layout

from . import smooth, transport
from .keydelivery import add_key_routes
from .live import (
    IMMUTABLE,
    OBJECTS,
    SCHEME,
    TIMELINES,
    TRACK,
    cached,
    cenc_media_playlist,
    cenc_multivariant,
    dash_manifest,
    init_segment,
    manifest_response,
    media_playlist,
    media_segment,
    multivariant,
    not_found,
    serve_bytes,
    timeline_of,
)
from .objects import CachedObject, etag_of
from .protected import protection_of

LOCATOR = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
MANIFEST = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
FORMATS = {"m3u8-cmaf": "hls", "m3u8-aapl": "hls-ts", "mpd-time-cmaf": "dash", "mpd-time-csf": "dash"}
CODEC_PRIVATE = web.AppKey("codec_private", dict)
_AMS = re.compile(r"^manifest(?:\((?P<options>[^()/]*)\))?$", re.IGNORECASE)


class FormatError(ValueError):
    pass


def ams_format(resource: str) -> str:
    """What an AMS manifest resource asks for: "hls", "hls-ts", "dash" or "smooth" (pure)."""
    match = _AMS.match(resource)
    if match is None:
        raise FormatError(f"expected manifest or manifest(format=…), got {resource!r}")
    options = dict(part.split("=", 1) for part in (match.group("options") or "").split(",") if "=" in part)
    if match.group("options") and not options:
        raise FormatError(f"malformed manifest options {match.group('options')!r}")
    requested = options.get("format")
    if requested is None:
        return "smooth"
    if requested.lower() not in FORMATS:
        raise FormatError(f"unknown format {requested!r}; one of {', '.join(FORMATS)}")
    return FORMATS[requested.lower()]


async def _program_manifest(request: web.Request) -> None:
    """404 unless the locator names a program whose manifest has this name."""
    record = await request.app[TIMELINES].program(request.match_info["locator"])
    if record is None or record.manifest_name != request.match_info["manifest"]:
        raise web.HTTPNotFound(text="no such program manifest\n")


async def plain_hls(request: web.Request) -> web.Response:
    await _program_manifest(request)
    return await multivariant(request)


async def plain_dash(request: web.Request) -> web.Response:
    await _program_manifest(request)
    return await dash_manifest(request)


async def ams_manifest(request: web.Request) -> web.Response:
    await _program_manifest(request)
    try:
        wanted = ams_format(request.match_info["resource"])
    except FormatError as error:
        return web.Response(status=400, text=f"{error}\n")
    if wanted == "smooth":
        _refuse_smooth_if_protected(request)
        timeline = await timeline_of(request)
        privates = await _codec_private(request, timeline)
        return manifest_response(
            request,
            timeline,
            "smooth",
            "application/vnd.ms-sstr+xml",
            lambda: smooth.client_manifest(timeline, privates),
        )
    if wanted == "hls":
        return await multivariant(request)
    if wanted == "hls-ts":
        return await transport.ts_multivariant(request)
    return await dash_manifest(request)


def _refuse_smooth_if_protected(request: web.Request) -> None:
    # Smooth Streaming would need PlayReady encryption, which this endpoint does not make:
    # a protected endpoint never serves the clear copy.
    if protection_of(request) is not None:
        raise web.HTTPForbidden(text="protected content is served as HLS or DASH, not Smooth Streaming\n")


async def _codec_private(request: web.Request, timeline: Timeline) -> dict[str, str]:
    """Track id -> Smooth CodecPrivateData (SPS/PPS in Annex B, or the AudioSpecificConfig), read
    once per init segment."""
    cache = request.app[CODEC_PRIVATE]
    result = {}
    for track in timeline.tracks:
        key = layout.init_key(timeline.channel, track.init_source, track.info.id, track.info.init)
        if key not in cache:
            found = await cached(request, key)
            config = next((t for t in parse_init(found.data) if t.kind == track.info.kind), None) if found else None
            if config is None:
                continue
            cache[key] = (
                (parameter_sets(config.codec_config) if config.kind == "video" else config.codec_config).hex().upper()
            )
        result[track.info.id] = cache[key]
    return result


async def smooth_fragment(request: web.Request) -> web.StreamResponse:
    _refuse_smooth_if_protected(request)
    await _program_manifest(request)
    timeline = await timeline_of(request)
    sparse = smooth.sparse_fragment(timeline, request.match_info["fragment"])
    if sparse is not None:  # an ad marker's: made from the timeline, not stored
        live = timeline.state != "stopped"
        found_sparse = CachedObject(sparse, etag_of(sparse))
        return serve_bytes(request, found_sparse, "application/mp4", "public, max-age=2" if live else IMMUTABLE)
    found = smooth.find_fragment(timeline, request.match_info["fragment"])
    if found is None:
        raise web.HTTPNotFound(text="no such fragment\n")
    track, row, shift = found
    key = layout.segment_key(timeline.channel, row.source, track.info.id, row.number)
    following = smooth.lookahead(timeline, track, row)
    info_only = "FragmentInfo(" in request.match_info["fragment"]

    async def smooth_fragment_bytes() -> bytes | None:
        found = await cached(request, key)
        if found is None:
            return None
        try:
            fragment = smooth.with_smooth_boxes(
                smooth.retimed(found.data, shift),
                time=row.start - shift,
                duration=row.duration,
                following=None if following is None else [(t - shift, d) for t, d in following],
            )
            return smooth.moof_of(fragment) if info_only else fragment
        except Mp4Error as error:
            raise web.HTTPBadGateway(text=f"stored fragment unreadable: {error}\n") from None

    # A live fragment's bytes change as its successors arrive (tfrf), so they are cached per
    # lookahead, and told to caches to come back once the next fragment is due.
    variant = ("smooth", key, shift, info_only, tuple(following or ()))
    fragment = await request.app[OBJECTS].get(variant, smooth_fragment_bytes)
    if fragment is None:
        raise web.HTTPNotFound(text="not stored\n")
    complete = following is None or len(following) == smooth.LOOKAHEAD
    cache_control = IMMUTABLE if complete else f"public, max-age={max(1, row.duration // track.info.timescale)}"
    return serve_bytes(request, fragment, "video/mp4" if track.info.kind == "video" else "audio/mp4", cache_control)


async def not_a_program_url(request: web.Request) -> web.Response:
    await timeline_of(request)  # 404 for an unknown program first
    return not_found("not a program URL: /<locator>/<manifest>.m3u8, .mpd or .ism/manifest(format=…)")


def add_routes(app: web.Application) -> None:
    app[CODEC_PRIVATE] = {}
    program = f"/{{locator:{LOCATOR}}}"
    app.router.add_get(
        f"{program}/{{manifest:{MANIFEST}}}.ism/{{fragment:QualityLevels\\(\\d+\\)/Fragment(?:s|Info)\\([a-z0-9]+=\\d+\\)}}",
        smooth_fragment,
    )
    app.router.add_get(f"{program}/{{manifest:{MANIFEST}}}.m3u8", plain_hls)
    app.router.add_get(f"{program}/{{manifest:{MANIFEST}}}.mpd", plain_dash)
    for base in (program, f"{program}/{{manifest:{MANIFEST}}}.ism"):
        if base != program:
            app.router.add_get(f"{base}/{{resource:manifest[^/]*}}", ams_manifest)
        add_key_routes(app, base)  # before /<rendition>/…: "keys" is not a rendition there
        app.router.add_get(f"{base}/{{scheme:{SCHEME}}}/index.m3u8", cenc_multivariant)
        app.router.add_get(f"{base}/{{scheme:{SCHEME}}}/{{track:{TRACK}}}/index.m3u8", cenc_media_playlist)
        app.router.add_get(f"{base}/{{scheme:{SCHEME}}}/{{track:{TRACK}}}/init.mp4", init_segment)
        app.router.add_get(f"{base}/{{scheme:{SCHEME}}}/{{track:{TRACK}}}/{{file:[^/]+}}", media_segment)
        app.router.add_get(f"{base}/ts/{{track:{TRACK}}}/index.m3u8", transport.ts_media_playlist)
        app.router.add_get(f"{base}/ts/{{track:{TRACK}}}/{{file:[^/]+}}", transport.ts_segment)
        app.router.add_get(f"{base}/{{track:{TRACK}}}/index.m3u8", media_playlist)
        app.router.add_get(f"{base}/{{track:{TRACK}}}/init.mp4", init_segment)
        app.router.add_get(f"{base}/{{track:{TRACK}}}/{{file:[^/]+}}", media_segment)
    app.router.add_get(f"{program}/{{rest:.*}}", not_a_program_url)

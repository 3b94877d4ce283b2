"""Program URLs: plain and Azure Media Services forms, over the program's recorded timeline.

``/<locator>/<manifest>.m3u8`` and ``.mpd``, and the AMS forms under
``/<locator>/<manifest>.ism/``: ``manifest(format=m3u8-cmaf)`` (HLS, CMAF segments),
``manifest(format=m3u8-aapl)`` (HLS with TS segments), ``manifest(format=mpd-time-cmaf)`` and
``manifest(format=mpd-time-csf)`` (DASH).  Manifests name their renditions relatively, so the
renditions' playlists and segments are served under both ``/<locator>/`` and
``/<locator>/<manifest>.ism/``.  Anything else is a 4xx that says what is accepted.
"""

from __future__ import annotations

import re

from aiohttp import web

from . import transport
from .app import TRACK, _timeline, dash_manifest, init_segment, media_playlist, media_segment, multivariant, not_found

LOCATOR = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
MANIFEST = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
FORMATS = {"m3u8-cmaf": "hls", "m3u8-aapl": "hls-ts", "mpd-time-cmaf": "dash", "mpd-time-csf": "dash"}
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
    from .app import TIMELINES

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
        return web.Response(status=406, text="Smooth Streaming manifests are not served yet; use format=m3u8-cmaf, m3u8-aapl or mpd-time-cmaf\n")
    if wanted == "hls":
        return await multivariant(request)
    if wanted == "hls-ts":
        return await transport.ts_multivariant(request)
    return await dash_manifest(request)


async def not_a_program_url(request: web.Request) -> web.Response:
    await _timeline(request)  # 404 for an unknown program first
    return not_found("not a program URL: /<locator>/<manifest>.m3u8, .mpd or .ism/manifest(format=…)")


def add_routes(app: web.Application) -> None:
    program = f"/{{locator:{LOCATOR}}}"
    app.router.add_get(f"{program}/{{manifest:{MANIFEST}}}.m3u8", plain_hls)
    app.router.add_get(f"{program}/{{manifest:{MANIFEST}}}.mpd", plain_dash)
    for base in (program, f"{program}/{{manifest:{MANIFEST}}}.ism"):
        if base != program:
            app.router.add_get(f"{base}/{{resource:manifest[^/]*}}", ams_manifest)
        app.router.add_get(f"{base}/ts/{{track:{TRACK}}}/index.m3u8", transport.ts_media_playlist)
        app.router.add_get(f"{base}/ts/{{track:{TRACK}}}/{{file:[^/]+}}", transport.ts_segment)
        app.router.add_get(f"{base}/{{track:{TRACK}}}/index.m3u8", media_playlist)
        app.router.add_get(f"{base}/{{track:{TRACK}}}/init.mp4", init_segment)
        app.router.add_get(f"{base}/{{track:{TRACK}}}/{{file:[^/]+}}", media_segment)
    app.router.add_get(f"{program}/{{rest:.*}}", not_a_program_url)

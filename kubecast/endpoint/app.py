"""The streaming endpoint's HTTP application: stateless, read-only, one process per replica.

Every name taken from a URL is matched against a strict pattern before it is used, and the
storage key is then built by ``kubecast.storage.layout`` (and checked again by ``Store``), so
no request can address anything outside the store; whatever does not match is a 404.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime, timezone
from html import escape
from importlib import resources

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kubecast.media.timeline import Timeline, TimelineTrack
from kubecast.storage import InvalidKey, Store, layout

from . import dash, hls, metrics
from .objects import CachedObject, ObjectCache, etag_of
from .ranges import UnsatisfiableRange, parse_range
from .statuspage import program_document, program_entries, program_table
from .timelines import TimelineCache

log = logging.getLogger("kubecast.endpoint")

CHANNEL = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?"
TRACK = r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}"
SEGMENT_FILE = re.compile(r"^(?:(\d{1,12})|t(\d{1,18}))\.m4s$")
STATIC_FILES = {
    "kubecast.css": "text/css", "preview.js": "text/javascript",
    "vendor/hls.min.js": "text/javascript", "vendor/dash.all.min.js": "text/javascript", "vendor/dash.mss.min.js": "text/javascript",
}
IMMUTABLE = "public, max-age=31536000, immutable"
STORE_KEY = web.AppKey("store", Store)
TIMELINES = web.AppKey("timelines", TimelineCache)
OBJECTS = web.AppKey("objects", ObjectCache)
CACHE_BYTES = 256 << 20


def _static(name: str) -> bytes:
    return resources.files("kubecast.endpoint").joinpath("static", name).read_bytes()


def not_found(text: str = "not found") -> web.Response:
    return web.Response(status=404, text=text + "\n")


@web.middleware
async def observe(request: web.Request, handler):
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
    try:
        # CORS preflight is answered for every path here, so that no catch-all route turns
        # unknown GETs into 405s.
        response = await (preflight(request) if request.method == "OPTIONS" else handler(request))
    except web.HTTPException as error:
        response = web.Response(status=error.status, text=error.text, headers={k: v for k, v in error.headers.items() if k.lower() not in ("content-type", "content-length")})
    except InvalidKey:
        response = not_found()
    except Exception:  # noqa: BLE001 - a viewer's request must never take the process down
        log.exception("request %s failed", request.path)
        response = web.Response(status=503, text="temporarily unavailable\n", headers={"Retry-After": "1"})
    response.headers.setdefault("Access-Control-Allow-Origin", "*")
    response.headers.setdefault("Access-Control-Expose-Headers", "Content-Length, Content-Range, Date, ETag")
    metrics.REQUESTS.labels(route, str(response.status)).inc()
    body = getattr(response, "body", None)
    if isinstance(body, (bytes, bytearray)):
        metrics.BYTES.labels(route).inc(len(body))
    return response


async def preflight(request: web.Request) -> web.Response:
    return web.Response(status=204, headers={
        "Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
        "Access-Control-Allow-Headers": request.headers.get("Access-Control-Request-Headers", "Range"),
        "Access-Control-Max-Age": "86400",
    })


async def _timeline(request: web.Request) -> Timeline:
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


def _track(timeline: Timeline, track_id: str) -> TimelineTrack:
    track = next((t for t in timeline.tracks if t.info.id == track_id), None)
    if track is None:
        raise web.HTTPNotFound(text="no such rendition\n")
    return track


def _manifest_cache_control(timeline: Timeline) -> str:
    if timeline.state == "stopped":
        return "public, max-age=3600"
    return f"public, max-age={max(1, timeline.segment_duration_ms // 2000)}"


def _manifest(request: web.Request, timeline: Timeline, kind: str, content_type: str, render) -> web.Response:
    started = time.perf_counter()
    locator = request.match_info.get("locator")
    key = (f"locator:{locator}" if locator else timeline.channel, kind, request.host)
    text, hit = request.app[TIMELINES].rendered(key, timeline, render)
    metrics.CACHE.labels("hit" if hit else "miss").inc()
    if not hit:
        metrics.RENDER_SECONDS.labels(kind).observe(time.perf_counter() - started)
    return web.Response(text=text, content_type=content_type, headers={"Cache-Control": _manifest_cache_control(timeline)})


def start_over(request: web.Request) -> bool:
    """``?startover`` on an HLS playlist: start at the window's start, not the live edge."""
    return "startover" in request.query


async def multivariant(request: web.Request) -> web.Response:
    timeline = await _timeline(request)
    over = start_over(request)
    return _manifest(request, timeline, f"m3u8:{over}", "application/vnd.apple.mpegurl", lambda: hls.multivariant_playlist(timeline, start_over=over))


async def media_playlist(request: web.Request) -> web.Response:
    timeline = await _timeline(request)
    track = _track(timeline, request.match_info["track"])
    over = start_over(request)
    return _manifest(request, timeline, f"m3u8:{track.info.id}:{over}", "application/vnd.apple.mpegurl", lambda: hls.media_playlist(timeline, track, start_over=over))


async def dash_manifest(request: web.Request) -> web.Response:
    timeline = await _timeline(request)
    time_url = f"{request.scheme}://{request.host}/time"
    return _manifest(request, timeline, "mpd", "application/dash+xml", lambda: dash.mpd(timeline, time_url=time_url, now=datetime.now(timezone.utc)))


async def _object(request: web.Request, key: str, content_type: str, cache_control: str) -> web.StreamResponse:
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
    return web.Response(status=206, body=found.data[start:end], content_type=content_type,
                        headers={**headers, "Content-Range": f"bytes {start}-{end - 1}/{size}"})


def _media_type(track: TimelineTrack) -> str:
    return "audio/mp4" if track.info.kind == "audio" else "video/mp4"


async def init_segment(request: web.Request) -> web.StreamResponse:
    timeline = await _timeline(request)
    track = _track(timeline, request.match_info["track"])
    key = layout.init_key(timeline.channel, track.init_source, track.info.id, track.info.init)
    return await _object(request, key, _media_type(track), IMMUTABLE)


async def media_segment(request: web.Request) -> web.StreamResponse:
    match = SEGMENT_FILE.match(request.match_info["file"])
    if match is None:
        return not_found()
    timeline = await _timeline(request)
    track = _track(timeline, request.match_info["track"])
    number, start = match.groups()
    if number is not None:
        row = next((r for r in track.segments if r[0] == int(number)), None)
    else:
        row = next((r for r in track.segments if r[1] == int(start)), None)
    if row is None:
        raise web.HTTPNotFound(text="segment not in the timeline\n")
    key = layout.segment_key(timeline.channel, row[4], track.info.id, row[0])
    return await _object(request, key, _media_type(track), IMMUTABLE)


async def utc_time(request: web.Request) -> web.Response:
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return web.Response(text=now, headers={"Cache-Control": "no-store"})


def channel_urls(request: web.Request, channel: str) -> dict[str, str]:
    base = f"{request.scheme}://{request.host}"
    return {
        "preview": f"{base}/preview/{channel}/", "hls": f"{base}/live/{channel}/index.m3u8",
        "dash": f"{base}/live/{channel}/manifest.mpd", "thumbnail": f"{base}/preview/{channel}/thumbnail.jpg",
    }


async def preview_page(request: web.Request) -> web.Response:
    channel = request.match_info["channel"]
    await _timeline(request)
    urls = channel_urls(request, channel)
    template = _static("preview.html").decode()
    page = template.replace("{channel}", escape(channel)).replace("{hls}", escape(urls["hls"])).replace("{dash}", escape(urls["dash"]))
    return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-cache"})


async def preview_redirect(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently(f"/preview/{request.match_info['channel']}/")


async def thumbnail(request: web.Request) -> web.StreamResponse:
    timeline = await _timeline(request)
    if timeline.thumbnail_source is None:
        raise web.HTTPNotFound(text="no thumbnail yet\n")
    return await _object(request, layout.thumbnail_key(timeline.channel, timeline.thumbnail_source), "image/jpeg", "no-cache")


def status_document(request: web.Request, timeline: Timeline) -> dict:
    return {
        "channel": timeline.channel, "state": timeline.state, "updated": timeline.updated.isoformat(),
        "segmentDurationMs": timeline.segment_duration_ms,
        "tracks": [
            {**t.info.model_dump(by_alias=True, exclude={"init"}), "bandwidth": t.peak_bandwidth or t.info.bandwidth,
             "segments": len(t.segments), "latest": t.segments[-1][0] if t.segments else None}
            for t in timeline.tracks
        ],
        "encoders": {name: health.model_dump(by_alias=True, mode="json") for name, health in timeline.encoders.items()},
        "conditions": timeline.conditions,
        "urls": channel_urls(request, timeline.channel),
    }


async def channel_status(request: web.Request) -> web.Response:
    timeline = await _timeline(request)
    document = status_document(request, timeline)
    entries = await program_entries(request.app[STORE_KEY], request.app[TIMELINES], channel=timeline.channel)
    document["programs"] = [program_document(entry, f"{request.scheme}://{request.host}") for entry in entries]
    return web.json_response(document, headers={"Cache-Control": "no-store"})


async def channels(request: web.Request) -> list[str]:
    infos = await request.app[STORE_KEY].list("channels")
    return sorted({info.key.split("/")[1] for info in infos if info.key.endswith("/timeline.json") and info.key.count("/") == 2})


async def status_page(request: web.Request) -> web.Response:
    rows = []
    for channel in await channels(request):
        timeline = await request.app[TIMELINES].get(channel)
        if timeline is None:
            continue
        urls = channel_urls(request, channel)
        rows.append(
            f"<tr><td><a href='{escape(urls['preview'])}'>{escape(channel)}</a></td><td><span class='state {timeline.state}'>{timeline.state}</span></td>"
            f"<td>{len([t for t in timeline.tracks if t.info.kind == 'video'])}</td>"
            f"<td><a href='{escape(urls['hls'])}'>HLS</a> · <a href='{escape(urls['dash'])}'>DASH</a></td></tr>"
        )
    body = "".join(rows) or "<tr><td colspan=4>No channels yet.</td></tr>"
    programs = program_table(await program_entries(request.app[STORE_KEY], request.app[TIMELINES]), f"{request.scheme}://{request.host}")
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>kubecast</title>"
        "<link rel='stylesheet' href='/static/kubecast.css'><meta http-equiv='refresh' content='5'></head>"
        "<body><header><strong>kubecast</strong></header><main style='display:block'>"
        "<table class='channels'><thead><tr><th>Channel</th><th>State</th><th>Video renditions</th><th>Playback</th></tr></thead>"
        f"<tbody>{body}</tbody></table>{programs}</main></body></html>"
    )
    return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-cache"})


async def static_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC_FILES:
        return not_found()
    return web.Response(body=_static(name), content_type=STATIC_FILES[name], headers={"Cache-Control": "public, max-age=3600"})


async def prometheus(request: web.Request) -> web.Response:
    response = web.Response(body=generate_latest())
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return response


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def make_app(store: Store, *, cache_bytes: int = CACHE_BYTES) -> web.Application:
    app = web.Application(middlewares=[observe])
    app[STORE_KEY] = store
    app[TIMELINES] = TimelineCache(store)
    app[OBJECTS] = ObjectCache(max_bytes=cache_bytes)
    live = f"/live/{{channel:{CHANNEL}}}"
    from .transport import add_routes as add_transport_stream_routes  # it builds on this module's handlers

    add_transport_stream_routes(app, live, TRACK)  # before /<rendition>/…: "ts" is not a rendition there
    app.router.add_get(f"{live}/index.m3u8", multivariant)
    app.router.add_get(f"{live}/manifest.mpd", dash_manifest)
    app.router.add_get(f"{live}/{{track:{TRACK}}}/index.m3u8", media_playlist)
    app.router.add_get(f"{live}/{{track:{TRACK}}}/init.mp4", init_segment)
    app.router.add_get(f"{live}/{{track:{TRACK}}}/{{file:[^/]+}}", media_segment)
    app.router.add_get(f"/preview/{{channel:{CHANNEL}}}/", preview_page)
    app.router.add_get(f"/preview/{{channel:{CHANNEL}}}", preview_redirect)
    app.router.add_get(f"/preview/{{channel:{CHANNEL}}}/thumbnail.jpg", thumbnail)
    app.router.add_get(f"/status/{{channel:{CHANNEL}}}.json", channel_status)
    app.router.add_get("/static/{name:.+}", static_file)
    app.router.add_get("/time", utc_time)
    app.router.add_get("/metrics", prometheus)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/", status_page)
    from .programs import add_routes as add_program_routes

    add_program_routes(app)  # last: a locator is any other first path element
    return app

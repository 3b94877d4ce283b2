"""The streaming endpoint's HTTP application: stateless, read-only, one process per replica.

Every name taken from a URL is matched against a strict pattern before it is used, and the
storage key is then built by ``kubecast.storage.layout`` (and checked again by ``Store``), so
no request can address anything outside the store; whatever does not match is a 404.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from html import escape
from importlib import resources
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest

from kubecast.media.timeline import Timeline
from kubecast.outage import Outage, left_out_note
from kubecast.storage import InvalidKey, Store, layout

from . import metrics
from .access import POLICY, ROUTE, TOKEN_PREFIX, AccessPolicy, cors_headers
from .chunked import add_routes as add_low_latency_dash_routes
from .keydelivery import add_key_routes
from .live import (
    CHANNEL,
    HLS_CUE_TAGS,
    OBJECTS,
    SCHEME,
    STORE_KEY,
    TIMELINES,
    TRACK,
    cenc_media_playlist,
    cenc_multivariant,
    dash_manifest,
    init_segment,
    media_playlist,
    media_segment,
    multivariant,
    not_found,
    object_response,
    timeline_of,
)
from .lowlatency import add_routes as add_low_latency_routes
from .objects import ObjectCache
from .programs import add_routes as add_program_routes
from .protection import PROTECTION, Protection
from .statuspage import program_document, program_entries, program_table
from .timelines import TimelineCache
from .transport import add_routes as add_transport_stream_routes

log = logging.getLogger("kubecast.endpoint")

STATIC_FILES = {
    "kubecast.css": "text/css",
    "preview.js": "text/javascript",
    "vendor/hls.min.js": "text/javascript",
    "vendor/dash.all.min.js": "text/javascript",
    "vendor/dash.mss.min.js": "text/javascript",
    "vendor/shaka-player.compiled.js": "text/javascript",
}
CACHE_BYTES = 256 << 20


def _static(name: str) -> bytes:
    return resources.files("kubecast.endpoint").joinpath("static", name).read_bytes()


_failures = Outage()  # requests failing for a reason of ours (storage away): one traceback per interval


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
    try:
        # CORS preflight is answered for every path here, so that no catch-all route turns
        # unknown GETs into 405s.
        response = await (preflight(request) if request.method == "OPTIONS" else handler(request))
    except web.HTTPException as error:
        response = web.Response(
            status=error.status,
            text=error.text,
            headers={k: v for k, v in error.headers.items() if k.lower() not in ("content-type", "content-length")},
        )
    except InvalidKey:
        response = not_found()
    except Exception:  # noqa: BLE001 - a viewer's request must never take the process down
        if (left_out := _failures.failed()) is not None:
            log.exception("request %s failed%s", request.path, left_out_note(left_out))
        response = web.Response(status=503, text="temporarily unavailable\n", headers={"Retry-After": "1"})
    for name, value in _cors(request).items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Access-Control-Expose-Headers", "Content-Length, Content-Range, Date, ETag")
    route = request.get(ROUTE, route)  # a signed request's: the route under its token
    requests, sent = _counters(route, response.status)
    requests.inc()
    body = getattr(response, "body", None)
    if isinstance(body, (bytes, bytearray)):
        sent.inc(len(body))
    return response


_COUNTERS: dict[tuple[str, int], tuple[Counter, Counter]] = {}


def _counters(route: str, status: int) -> tuple[Counter, Counter]:
    """A route's request and byte counters, looked up in the registry once (``labels`` takes a
    lock and builds a key on every call, a few per cent of a manifest request)."""
    found = _COUNTERS.get((route, status))
    if found is None:
        found = _COUNTERS[route, status] = (metrics.REQUESTS.labels(route, str(status)), metrics.BYTES.labels(route))
    return found


def _cors(request: web.Request) -> dict[str, str]:
    """Allow-Origin from the policy's cross-site origins (every origin when it lists none)."""
    return cors_headers(request.app.get(POLICY) or AccessPolicy(), request.headers.get("Origin"))


async def preflight(request: web.Request) -> web.Response:
    return web.Response(
        status=204,
        headers={
            **_cors(request),
            "Access-Control-Allow-Methods": "GET, HEAD, POST, OPTIONS",
            "Access-Control-Allow-Headers": request.headers.get("Access-Control-Request-Headers", "Range"),
            "Access-Control-Max-Age": "86400",
        },
    )


async def utc_time(request: web.Request) -> web.Response:
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return web.Response(text=now, headers={"Cache-Control": "no-store"})


def channel_urls(request: web.Request, channel: str) -> dict[str, str]:
    # A signed request's links keep its token: the page's player, its polls and its links work.
    base = f"{request.scheme}://{request.host}{request.get(TOKEN_PREFIX, '')}"
    return {
        "preview": f"{base}/preview/{channel}/",
        "hls": f"{base}/live/{channel}/index.m3u8",
        "dash": f"{base}/live/{channel}/manifest.mpd",
        "thumbnail": f"{base}/preview/{channel}/thumbnail.jpg",
    }


async def preview_page(request: web.Request) -> web.Response:
    channel = request.match_info["channel"]
    await timeline_of(request)
    urls = channel_urls(request, channel)
    template = _static("preview.html").decode()
    page = (
        template.replace("{channel}", escape(channel))
        .replace("{hls}", escape(urls["hls"]))
        .replace("{dash}", escape(urls["dash"]))
    )
    return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-cache"})


async def preview_redirect(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently(f"{request.match_info['channel']}/")  # relative: a token before it stays


async def thumbnail(request: web.Request) -> web.StreamResponse:
    timeline = await timeline_of(request)
    if timeline.thumbnail_source is None:
        raise web.HTTPNotFound(text="no thumbnail yet\n")
    return await object_response(
        request, layout.thumbnail_key(timeline.channel, timeline.thumbnail_source), "image/jpeg", "no-cache"
    )


def status_document(request: web.Request, timeline: Timeline) -> dict[str, Any]:
    return {
        "channel": timeline.channel,
        "state": timeline.state,
        "updated": timeline.updated.isoformat(),
        "segmentDurationMs": timeline.segment_duration_ms,
        "tracks": [
            {
                **t.info.model_dump(by_alias=True, exclude={"init"}),
                "bandwidth": t.peak_bandwidth or t.info.bandwidth,
                "segments": len(t.segments),
                "latest": t.segments[-1].number if t.segments else None,
            }
            for t in timeline.tracks
        ],
        "encoders": {name: health.model_dump(by_alias=True, mode="json") for name, health in timeline.encoders.items()},
        "conditions": timeline.conditions,
        "urls": channel_urls(request, timeline.channel),
    }


async def channel_status(request: web.Request) -> web.Response:
    timeline = await timeline_of(request)
    document = status_document(request, timeline)
    entries = await program_entries(request.app[STORE_KEY], request.app[TIMELINES], channel=timeline.channel)
    document["programs"] = [program_document(entry, f"{request.scheme}://{request.host}") for entry in entries]
    return web.json_response(document, headers={"Cache-Control": "no-store"})


async def channels(request: web.Request) -> list[str]:
    infos = await request.app[STORE_KEY].list("channels")
    return sorted(
        {info.key.split("/")[1] for info in infos if info.key.endswith("/timeline.json") and info.key.count("/") == 2}
    )


async def status_page(request: web.Request) -> web.Response:
    rows = []
    for channel in await channels(request):
        timeline = await request.app[TIMELINES].get(channel)
        if timeline is None:
            continue
        urls = channel_urls(request, channel)
        rows.append(
            f"<tr><td><a href='{escape(urls['preview'])}'>{escape(channel)}</a></td><td><span class='state "
            f"{timeline.state}'>{timeline.state}</span></td>"
            f"<td>{len([t for t in timeline.tracks if t.info.kind == 'video'])}</td>"
            f"<td><a href='{escape(urls['hls'])}'>HLS</a> · <a href='{escape(urls['dash'])}'>DASH</a></td></tr>"
        )
    body = "".join(rows) or "<tr><td colspan=4>No channels yet.</td></tr>"
    programs = program_table(
        await program_entries(request.app[STORE_KEY], request.app[TIMELINES]), f"{request.scheme}://{request.host}"
    )
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>kubecast</title>"
        "<link rel='stylesheet' href='/static/kubecast.css'><meta http-equiv='refresh' content='5'></head>"
        "<body><header><strong>kubecast</strong></header><main style='display:block'>"
        "<table class='channels'><thead><tr><th>Channel</th><th>State</th><th>Video "
        "renditions</th><th>Playback</th></tr></thead>"
        f"<tbody>{body}</tbody></table>{programs}</main></body></html>"
    )
    return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-cache"})


async def static_file(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC_FILES:
        return not_found()
    return web.Response(
        body=_static(name), content_type=STATIC_FILES[name], headers={"Cache-Control": "public, max-age=3600"}
    )


async def prometheus(request: web.Request) -> web.Response:
    response = web.Response(body=generate_latest())
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return response


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def make_app(
    store: Store,
    *,
    cache_bytes: int = CACHE_BYTES,
    protection: Protection | None = None,
    hls_cue_tags: bool = False,
) -> web.Application:
    app = web.Application(middlewares=[observe])
    app[HLS_CUE_TAGS] = hls_cue_tags
    if protection is not None:
        app[PROTECTION] = protection
    app[STORE_KEY] = store
    app[TIMELINES] = TimelineCache(store)
    app[OBJECTS] = ObjectCache(max_bytes=cache_bytes)
    live = f"/live/{{channel:{CHANNEL}}}"
    add_transport_stream_routes(app, live, TRACK)  # before /<rendition>/…: "ts" is not a rendition there
    add_key_routes(app, live)  # before /<rendition>/…: "keys" is not a rendition there
    add_low_latency_routes(app, live, TRACK)  # before /<rendition>/…: "ll" is not a rendition there
    add_low_latency_dash_routes(app, live, TRACK)  # likewise
    # before /<rendition>/…, and the playlists before the segments: "cenc" is not a rendition there
    app.router.add_get(f"{live}/{{scheme:{SCHEME}}}/index.m3u8", cenc_multivariant)
    app.router.add_get(f"{live}/{{scheme:{SCHEME}}}/{{track:{TRACK}}}/index.m3u8", cenc_media_playlist)
    app.router.add_get(f"{live}/{{scheme:{SCHEME}}}/{{track:{TRACK}}}/init.mp4", init_segment)
    app.router.add_get(f"{live}/{{scheme:{SCHEME}}}/{{track:{TRACK}}}/{{file:[^/]+}}", media_segment)
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
    add_program_routes(app)  # last: a locator is any other first path element
    return app

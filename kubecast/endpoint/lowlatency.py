"""Low-latency HLS routes, beside the standard ones (which do not change):

    /live/<channel>/ll/index.m3u8                multivariant playlist
    /live/<channel>/ll/<rendition>/index.m3u8    media playlist: parts, blocking reload, delta updates
    /live/<channel>/ll/<rendition>/init.mp4
    /live/<channel>/ll/<rendition>/<n>.m4s       segment n
    /live/<channel>/ll/<rendition>/<n>.<k>.<encoder>.m4s   part k of segment n, from that encoder

How a replica learns of a part: it reads the encoders' ``parts.json`` (``TimelineCache.parts``,
at most ``PARTS_TTL`` old, one read shared by every request waiting on the channel) and, while a
request waits for a part not listed yet, reads again every ``POLL_SECONDS``.  Storage stays the
only state shared with the encoders: no push from them, no state between replicas.  The pure
rules (what a playlist lists, when a blocked request is answered) are in ``llhls``; the choice of
encoder in ``kubecast.media.parts.choose_part_source``.

Low latency is offered only for clear content: an endpoint with content protection answers 404
here rather than serve parts that its protection would not cover.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from aiohttp import web

from kubecast.media.parts import EncoderParts, choose_part_source
from kubecast.media.timeline import Timeline, TimelineTrack
from kubecast.storage import layout

from . import hls, llhls, metrics
from .live import (
    IMMUTABLE,
    TIMELINES,
    cached,
    init_segment,
    manifest_response,
    media_segment,
    media_type,
    object_response,
    serve_bytes,
    timeline_of,
    track_of,
)
from .objects import CachedObject
from .protected import protection_of

POLL_SECONDS = 0.05  # how often a waiting request looks for a new part (the read itself is shared)
PART_FILE = re.compile(r"^(\d{1,12})\.(\d{1,2})\.([A-Za-z0-9_-]{1,16})\.m4s$")
SEGMENT_FILE = re.compile(r"^(\d{1,12})\.m4s$")
KEPT_SOURCES = web.AppKey("low_latency_sources", dict)  # channel -> the encoder this replica serves parts from
LIVE_EDGES = web.AppKey("low_latency_edges", dict)  # channel -> its _Edge (channels found in storage only)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _clear_only(request: web.Request) -> None:
    if protection_of(request) is not None:
        raise web.HTTPNotFound(text="low-latency HLS is served for clear content only\n")


async def _edges(request: web.Request, channel: str) -> dict[str, EncoderParts | None]:
    timelines = request.app[TIMELINES]
    read = await asyncio.gather(*(timelines.parts(channel, name) for name in layout.ENCODER_INSTANCES))
    edges = dict(zip(layout.ENCODER_INSTANCES, read))
    if not any(edges.values()):
        raise web.HTTPNotFound(text="this channel has no low-latency output (spec.lowLatency)\n")
    return edges


@dataclass
class _Edge:
    """A channel's live edge as this replica last built it: every rendition's view, and the
    playlists rendered from them, for one version of the timeline and of the encoders' parts.json.
    Requests waiting on the channel share it; it is rebuilt only when something changed."""

    version: tuple[object, ...]
    views: dict[str, llhls.LowLatencyView]
    texts: dict[tuple[str, bool], str] = field(default_factory=dict)  # (rendition, delta update) -> playlist


async def _edge(request: web.Request, timeline: Timeline) -> _Edge:
    """Every rendition's view of the live edge, all from the one encoder chosen for the channel."""
    edges = await _edges(request, timeline.channel)
    kept: dict[str, str] = request.app[KEPT_SOURCES]
    source = choose_part_source(
        edges, preferred=timeline.active_source, kept=kept.get(timeline.channel), now=_utc_now()
    )
    if source is not None:
        kept[timeline.channel] = source
    version = (
        timeline.generation,
        timeline.updated,
        source,
        tuple(edge.updated if edge is not None else None for edge in edges.values()),
    )
    built: dict[str, _Edge] = request.app[LIVE_EDGES]
    if (known := built.get(timeline.channel)) is not None and known.version == version:
        return known
    any_edge = next(edge for edge in edges.values() if edge is not None)
    views = {}
    for track in timeline.tracks:
        view = llhls.build_view(timeline, track, edges[source] if source else None, source)
        if source is None:  # nobody cuts parts now: the playlist keeps its part target, lists none
            view = dataclasses.replace(
                view,
                part_target_ms=any_edge.part_target_ms,
                parts_per_segment=math.ceil(timeline.segment_duration_ms / any_edge.part_duration_ms),
            )
        views[track.info.id] = view
    built[timeline.channel] = edge = _Edge(version, views)
    return edge


def _directive(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None:
        return None
    if not value.isdigit() or len(value) > 12:
        raise web.HTTPBadRequest(text=f"{name} must be a decimal integer\n")
    return int(value)


async def ll_multivariant(request: web.Request) -> web.Response:
    _clear_only(request)
    timeline = await timeline_of(request)
    await _edges(request, timeline.channel)
    return manifest_response(
        request,
        timeline,
        "m3u8-ll",
        "application/vnd.apple.mpegurl",
        lambda: hls.multivariant_playlist(timeline, low_latency=True),
    )


async def ll_media_playlist(request: web.Request) -> web.Response:
    _clear_only(request)
    msn, part = _directive(request, "_HLS_msn"), _directive(request, "_HLS_part")
    if part is not None and msn is None:
        raise web.HTTPBadRequest(text="_HLS_part without _HLS_msn\n")  # 6.2.5.2
    skip = request.query.get("_HLS_skip") in ("YES", "v2")
    track_id = request.match_info["track"]
    timeline = await timeline_of(request)
    track_of(timeline, track_id)
    edge = await _edge(request, timeline)
    if msn is not None and timeline.state != "stopped":  # 6.2.5.2: ignored once the playlist has ENDLIST
        started = time.monotonic()
        deadline = started + llhls.block_seconds(edge.views[track_id])
        while (state := llhls.reload_state(edge.views[track_id], msn, part)) is not llhls.Reload.READY:
            if state is llhls.Reload.TOO_FAR:
                metrics.BLOCKING_RELOADS.labels("refused").inc()
                raise web.HTTPBadRequest(text="_HLS_msn/_HLS_part too far beyond the live edge\n")
            if time.monotonic() >= deadline:
                metrics.BLOCKING_RELOADS.labels("timed_out").inc()
                raise web.HTTPServiceUnavailable(text="the requested part did not appear in time\n")
            await asyncio.sleep(POLL_SECONDS)
            timeline = await timeline_of(request)
            track_of(timeline, track_id)
            edge = await _edge(request, timeline)
            if timeline.state == "stopped":
                break
        metrics.BLOCKING_RELOADS.labels("answered").inc()
        metrics.BLOCKED_SECONDS.observe(time.monotonic() - started)
    view = edge.views[track_id]
    text = edge.texts.get((track_id, skip))
    if text is None:
        reports = [
            report
            for other, other_view in edge.views.items()
            if other != track_id and (report := llhls.rendition_report(other_view, f"../{other}/index.m3u8"))
        ]
        text = edge.texts[(track_id, skip)] = llhls.media_playlist(timeline, view, skip=skip, reports=reports)
    # A blocking request's answer holds at least what it asked for whenever it is served, so a
    # CDN may keep it; a plain request must see the edge as it is.
    cache = f"public, max-age={view.target}" if msn is not None else "no-cache"
    return web.Response(
        text=text, content_type="application/vnd.apple.mpegurl", charset="utf-8", headers={"Cache-Control": cache}
    )


async def ll_file(request: web.Request) -> web.StreamResponse:
    _clear_only(request)
    name = request.match_info["file"]
    if (match := PART_FILE.match(name)) is not None:
        return await _part(request, int(match[1]), int(match[2]), match[3])
    if (match := SEGMENT_FILE.match(name)) is None:
        raise web.HTTPNotFound(text="not found\n")
    timeline = await timeline_of(request)
    track = track_of(timeline, request.match_info["track"])
    number = int(match[1])
    if any(row.number == number for row in track.segments):
        return await media_segment(request)
    # Stored whole by the encoder whose parts are served, and not in the timeline yet.
    view = (await _edge(request, timeline)).views[track.info.id]
    row = next((row for row in view.rows if row.number == number), None)
    if row is None:
        raise web.HTTPNotFound(text="segment not in the playlist\n")
    key = layout.segment_key(timeline.channel, row.source, track.info.id, number)
    return await object_response(request, key, media_type(track), IMMUTABLE)


async def _part(request: web.Request, number: int, index: int, source: str) -> web.StreamResponse:
    """A part, held until it is stored when it is the one the playlist hints or close to it
    (blocking preload, 6.2.6): no byte is sent before the whole part can be."""
    if source not in layout.ENCODER_INSTANCES:
        raise web.HTTPNotFound(text="no such encoder\n")
    timeline = await timeline_of(request)
    track = track_of(timeline, request.match_info["track"])
    key = layout.part_key(timeline.channel, source, track.info.id, number, index)
    found = await cached(request, key)
    if found is None:
        found = await _await_part(request, timeline, track, number, index, source, key)
    return serve_bytes(request, found, media_type(track), IMMUTABLE)


async def _await_part(
    request: web.Request, timeline: Timeline, track: TimelineTrack, number: int, index: int, source: str, key: str
) -> CachedObject:
    timelines = request.app[TIMELINES]
    edge = await timelines.parts(timeline.channel, source)
    if edge is None or not edge.fresh(_utc_now()):
        raise web.HTTPNotFound(text="part not stored\n")
    view = llhls.build_view(timeline, track, edge, source)
    newest = view.last_part
    pps = view.parts_per_segment
    if newest is None or (number * pps + index) - (newest[0] * pps + newest[1]) > llhls.advance_part_limit(
        edge.part_target_ms
    ):
        raise web.HTTPNotFound(text="part not stored, and not about to be\n")  # 6.2.6: not hinted
    if (number, index) <= newest:
        raise web.HTTPNotFound(text="part not stored\n")  # listed, yet gone: retention took it
    deadline = time.monotonic() + llhls.block_seconds(view)
    started = time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(POLL_SECONDS)
        edge = await timelines.parts(timeline.channel, source)
        records = edge.tracks.get(track.info.id) if edge is not None else None
        if records is not None and any(r.number == number and r.part == index for r in records.parts):
            found = await cached(request, key)
            if found is not None:
                metrics.PRELOAD_SECONDS.observe(time.monotonic() - started)
                return found
    raise web.HTTPNotFound(text="the hinted part was not made\n")  # 6.2.6: a hint not published


def add_routes(app: web.Application, live: str, track: str) -> None:
    app[KEPT_SOURCES] = {}
    app[LIVE_EDGES] = {}
    app.router.add_get(f"{live}/ll/index.m3u8", ll_multivariant)
    app.router.add_get(f"{live}/ll/{{track:{track}}}/index.m3u8", ll_media_playlist)
    app.router.add_get(f"{live}/ll/{{track:{track}}}/init.mp4", init_segment)
    app.router.add_get(f"{live}/ll/{{track:{track}}}/{{file:[^/]+}}", ll_file)

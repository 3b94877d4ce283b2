"""LL-DASH: the low-latency MPD, and a segment sent with chunked transfer encoding while it is written.

A low-latency channel's encoders store each part of the segment they are writing as its own
object and list it in their ``parts.json`` (``kubecast.media.parts``).  The LL MPD
(``kubecast.endpoint.lldash``) lets dash.js ask for segment n one part after it begins; this
module answers that request with ``styp`` and then, as each part of n is listed, the part's
``moof`` + ``mdat`` as one chunk, and ends the response when n is finished: a valid CMAF
segment of the same samples as the stored one (one fragment per part instead of one for all).

Every part of one response comes from one encoder (``choose_part_source``): a part's frames
refer to earlier frames of the same encoder.  If that encoder stops cutting parts mid-segment
(dead, hung, cut off), the response ends with the parts it had; the player has the segment's
beginning and asks for the next segment, which comes whole from the other encoder: a stall of
at most one segment, as with any failover.  A response that got no part at all (the encoder's
parts writer, a segment behind, dropped them; or it stopped before the first) sends the segment
stored whole, by either encoder, once it is: a whole segment refers to nothing before it.

Storage stays the only shared state: each endpoint process reads a channel's ``parts.json``
files through the timeline cache (``TimelineCache.parts``: one read at most every
``PARTS_TTL``, shared with LL-HLS), whatever the number of open responses, and parts come
through the object cache (they are immutable), so many viewers of the open segment cost one
storage read per part.  A finished segment is served from storage as the standard route
serves it, from the timeline or, just before the timeline lists it, from the encoder whose
``parts.json`` says it is stored whole.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import NamedTuple

from aiohttp import web

from kubecast.media.mp4 import iter_boxes, styp
from kubecast.media.parts import PARTS_KEPT_SEGMENTS, EncoderParts, PartRecord, choose_part_source
from kubecast.media.timeline import Timeline
from kubecast.storage import layout

from . import dash
from .live import (
    IMMUTABLE,
    TIMELINES,
    cached,
    manifest_response,
    media_type,
    not_found,
    object_response,
    serve_bytes,
    timeline_of,
    track_of,
)
from .lldash import LowLatencyDash
from .lowlatency import KEPT_SOURCES
from .objects import CachedObject
from .protected import protection_of

POLL_SECONDS = 0.05  # how often an open response looks for its next part (through the shared read)
# dash.js asks for segment n by its own clock, one part after n begins; an encoder a little behind
# real time (a loaded machine) has not begun n yet.  A 404 makes dash.js stop and stall for many
# seconds (bench/glass_to_glass.py saw 13 s), so a request up to this many segments beyond the newest
# one being written is held while the encoder catches up; further ahead is a client's mistake.
AHEAD_SEGMENTS = 2
SEGMENT_FILE = r"\d{1,12}\.m4s"


class OpenSegment(NamedTuple):
    """Where segment ``number`` of a track stands at its chosen encoder."""

    parts: list[PartRecord]  # its parts listed so far, in order, from part 0 without a gap
    finished: bool  # no more parts will be listed for it


def open_segment(edge: EncoderParts, track_id: str, number: int, segment_end: int) -> OpenSegment:
    """Segment ``number``'s parts in ``edge`` (pure).  It is finished once the encoder lists a part
    of a later segment, records it stored whole, or lists a part reaching ``segment_end`` (its
    end in the track's timescale): parts of one track are listed in order."""
    track = edge.tracks.get(track_id)
    if track is None:
        return OpenSegment([], False)
    rows = sorted((row for row in track.parts if row.number == number), key=lambda row: row.part)
    parts: list[PartRecord] = []
    for row in rows:
        if row.part != len(parts):
            break  # a part was never stored (dropped): what follows it cannot be decoded
        parts.append(row)
    later = any(row.number > number for row in track.parts)
    stored = track.complete is not None and track.complete >= number
    reached = bool(parts) and parts[-1].start + parts[-1].duration >= segment_end
    gap = len(parts) < len(rows)
    return OpenSegment(parts, later or stored or reached or gap)


async def _edges(request: web.Request, channel: str) -> dict[str, EncoderParts | None]:
    """The encoders' parts.json, through the timeline cache's shared read (``TimelineCache.parts``)."""
    timelines = request.app[TIMELINES]
    read = await asyncio.gather(*(timelines.parts(channel, name) for name in layout.ENCODER_INSTANCES))
    return dict(zip(layout.ENCODER_INSTANCES, read))


def low_latency_of(timeline: Timeline, edges: dict[str, EncoderParts | None]) -> LowLatencyDash | None:
    """The channel's part duration, from the parts.json of its encoders (none: not a low-latency
    channel; a stopped one has nothing being written)."""
    found = [edge for edge in edges.values() if edge is not None]
    if timeline.state == "stopped" or not found:
        return None
    return LowLatencyDash(timeline.segment_duration_ms, found[0].part_duration_ms)


async def ll_manifest(request: web.Request) -> web.Response:
    timeline = await timeline_of(request)
    if protection_of(request) is not None:
        return not_found("low latency is not served by an endpoint with content protection")
    edges = await _edges(request, timeline.channel)
    low_latency = low_latency_of(timeline, edges)
    if low_latency is None:
        return not_found("not a low-latency channel, or stopped")
    time_url = f"{request.scheme}://{request.host}/time"
    return manifest_response(
        request,
        timeline,
        f"mpd-ll:{low_latency.part_duration_ms}",
        "application/dash+xml",
        lambda: dash.mpd(timeline, time_url=time_url, now=datetime.now(timezone.utc), low_latency=low_latency),
    )


async def ll_segment(request: web.Request) -> web.StreamResponse:
    if protection_of(request) is not None:
        return not_found("low latency is not served by an endpoint with content protection")
    timeline = await timeline_of(request)
    track = track_of(timeline, request.match_info["track"])
    number = int(request.match_info["file"].split(".")[0])
    channel, content_type = timeline.channel, media_type(track)
    row = next((row for row in track.segments if row.number == number), None)
    if row is not None:  # finished and listed: as the standard route serves it
        key = layout.segment_key(channel, row.source, track.info.id, number)
        return await object_response(request, key, content_type, IMMUTABLE)
    edges = await _edges(request, channel)
    if (found := await _stored_by_an_encoder(request, channel, edges, track.info.id, number)) is not None:
        return serve_bytes(request, found, content_type, IMMUTABLE)
    # the encoder this replica serves LL-HLS parts from, if it still cuts parts: both outputs alike
    kept = request.app[KEPT_SOURCES].get(channel)
    source = choose_part_source(edges, preferred=timeline.active_source, kept=kept, now=datetime.now(timezone.utc))
    edge = edges.get(source) if source is not None else None
    if source is None or edge is None:
        return not_found("no encoder of this channel is cutting low-latency parts now")
    stored = edge.tracks.get(track.info.id)
    if stored is None or not stored.parts:
        return not_found("this rendition has no parts yet")
    newest = max(row.number for row in stored.parts)
    if not stored.parts[0].number <= number <= newest + AHEAD_SEGMENTS:
        return not_found("segment not in the timeline nor being written")
    segment_end = (number + 1) * timeline.segment_duration_ms * track.info.timescale // 1000

    async def read_edge() -> EncoderParts | None:
        edge = await request.app[TIMELINES].parts(channel, source)
        return edge if edge is not None and edge.fresh(datetime.now(timezone.utc)) else None

    async def read_part(part: PartRecord) -> bytes | None:
        key = layout.part_key(channel, source, track.info.id, number, part.part)
        found = await cached(request, key)
        return found.data if found is not None else None

    # a bounded response: the segment lasts D, and it may be asked for before its encoder began it
    deadline = time.monotonic() + (AHEAD_SEGMENTS + 1) * timeline.segment_duration_ms / 1000 + 1
    response = web.StreamResponse(
        headers={
            "Content-Type": content_type,
            # a copy cut short by a failover must not be served for longer than a segment
            "Cache-Control": f"public, max-age={max(1, timeline.segment_duration_ms // 1000)}",
        }
    )
    response.enable_chunked_encoding()
    await response.prepare(request)
    sent = await send_parts(response, track.info.id, number, segment_end, read_edge, read_part, deadline)
    if sent == 0:
        # Not one part of it was stored: its encoder's parts writer, a segment behind, dropped them
        # (kubecast.encoder.parts_writer), or the encoder stopped before its first.  Rather than
        # an empty segment (a hole of D in the player's buffer), the segment stored whole, by
        # either encoder, once it is.
        whole = await _wait_for_whole(request, channel, track.info.id, number, deadline)
        if whole is not None:
            await response.write(_after_styp(whole))
    await response.write_eof()
    return response


async def _stored_by_an_encoder(
    request: web.Request, channel: str, edges: dict[str, EncoderParts | None], track_id: str, number: int
) -> CachedObject | None:
    """Segment ``number`` stored whole a moment ago, not yet in the timeline (the packager is a step
    behind, or hung): from the encoder that says so, fresh or not.  Only recent numbers: made-up
    ones cost no read."""
    for name, edge in edges.items():
        records = edge.tracks.get(track_id) if edge is not None else None
        if records is not None and records.complete is not None:
            if records.complete - PARTS_KEPT_SEGMENTS < number <= records.complete:
                found = await cached(request, layout.segment_key(channel, name, track_id, number))
                if found is not None:
                    return found
    return None


async def _wait_for_whole(
    request: web.Request, channel: str, track_id: str, number: int, deadline: float
) -> bytes | None:
    """Segment ``number`` once it is stored whole (listed in the timeline, or by an encoder), until
    ``deadline`` (monotonic).  The response has begun: nothing here may raise an HTTP error."""
    while time.monotonic() < deadline:
        timeline = await request.app[TIMELINES].get(channel)
        tracks = timeline.tracks if timeline is not None else []
        track = next((t for t in tracks if t.info.id == track_id), None)
        row = next((r for r in track.segments if r.number == number), None) if track is not None else None
        if row is not None:
            found = await cached(request, layout.segment_key(channel, row.source, track_id, number))
        else:
            found = await _stored_by_an_encoder(request, channel, await _edges(request, channel), track_id, number)
        if found is not None:
            return found.data
        await asyncio.sleep(POLL_SECONDS)
    return None


def _after_styp(segment: bytes) -> bytes:
    """A stored segment's boxes after its ``styp`` (the response began with one)."""
    for kind, _, end in iter_boxes(segment):
        return segment[end:] if kind == b"styp" else segment
    return segment


async def send_parts(
    response: web.StreamResponse,
    track_id: str,
    number: int,
    segment_end: int,
    read_edge: Callable[[], Awaitable[EncoderParts | None]],
    read_part: Callable[[PartRecord], Awaitable[bytes | None]],
    deadline: float,
) -> int:
    """``styp``, then each part of segment ``number`` as its encoder lists it, until the segment
    is finished, the encoder goes stale, or ``deadline`` (monotonic) passes; the parts sent."""
    await response.write(styp())
    sent = 0
    while time.monotonic() < deadline:
        edge = await read_edge()
        if edge is None:
            break  # the encoder stopped cutting parts: the player gets the segment's beginning
        segment = open_segment(edge, track_id, number, segment_end)
        for part in segment.parts[sent:]:
            data = await read_part(part)
            if data is None:
                return sent  # listed but gone (retention): nothing after it can be decoded
            await response.write(data)
            sent += 1
        if segment.finished:
            break
        await asyncio.sleep(POLL_SECONDS)
    return sent


def add_routes(app: web.Application, live: str, track: str) -> None:
    """Before /<rendition>/…: "ll" is not a rendition there."""
    app.router.add_get(f"{live}/ll/manifest.mpd", ll_manifest)
    app.router.add_get(f"{live}/ll/dash/{{track:{track}}}/{{file:{SEGMENT_FILE}}}", ll_segment)

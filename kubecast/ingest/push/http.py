"""HTTP push ingest: Smooth Streaming fragmented MP4 and DASH-IF CMAF ingest (interface 1).

URLs (the key element is left out for a channel without a stream key):

* Smooth: ``POST http://host:port/<key>/ingest/<channel>.isml/Streams(<name>)``, one
  long-running (chunked) POST per stream, as the Azure Media Services fragmented MP4 live
  ingest specification defines it: ``ftyp``, the live server manifest box, ``moov``, then
  ``moof``/``mdat`` fragments timed by ``tfxd``, ended by an ``mfra``.  A stream may hold one
  track (AMS encoders) or several (ffmpeg ``-f ismv``).  An empty POST is a probe.
* CMAF: ``PUT`` or ``POST http://host:port/<key>/ingest/<channel>.cmaf/<path>``: one request per
  init or media segment, as ``ffmpeg -f dash`` or ``-f hls -hls_segment_type fmp4`` send them
  over HTTP.  Segments of one track are recognised by their folder and ``stream<N>`` or
  ``Streams(<name>)`` in their name (ffmpeg's ``init-stream0.m4s`` / ``chunk-stream0-00001.m4s``);
  manifests (``.mpd``, ``.m3u8``) and ``DELETE``s are acknowledged and ignored.

Every video track is one rendition of the channel's contribution and the first audio track is
its audio; a further audio track of the same stream whose ``mdhd`` names a language of its own
is another language of it (an HLS audio rendition, a DASH AdaptationSet), as in the TS path.
Timestamps are absolute in both protocols, so fragments resent after a reconnect are recognised
by time and dropped, and a reconnecting stream continues the same timeline.
Each sample goes on as a frame record in its track's own timescale, with its duration and
composition offset exactly as the fragment states them.  A Smooth sparse track of SCTE-35
messages (``sparse.py``) becomes cues on the same clock; a broken sparse fragment is dropped,
logged and counted, and the media goes on.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import ssl
import time

from aiohttp import web

from kubecast.media.mp4 import Mp4Error

from .. import metrics
from ..config import ChannelRoute, IngestConfig
from ..publication import Busy, ChannelStopped, Publications
from .stream import PushStream, RequestBody

log = logging.getLogger("kubecast.ingest")

_TRACK_TOKEN = re.compile(r"Streams\(([^)]*)\)|stream(\d+)", re.IGNORECASE)


class PathError(ValueError):
    def __init__(self, status: int, message: str, label: str):
        super().__init__(message)
        self.status, self.label = status, label


def parse_path(config: IngestConfig, path: str) -> tuple[ChannelRoute, str, str]:
    """(route, "FragmentedMP4" | "CMAF", the rest of the path) of an ingest URL; checks the key."""
    parts = [part for part in path.split("/") if part]
    for index, part in enumerate(parts):
        stem, dot, extension = part.rpartition(".")
        if dot and extension in ("isml", "cmaf") and index >= 1 and parts[index - 1] == "ingest":
            route = config.channels.get(stem)
            if route is None:
                raise PathError(404, f"no channel {stem!r}", "bad_name")
            key = parts[index - 2] if index >= 2 else ""
            if index > 2 or (route.key is not None and not hmac.compare_digest(route.key.encode(), key.encode())):
                raise PathError(403, f"wrong stream key for channel {route.name}", "bad_key")
            return route, ("FragmentedMP4" if extension == "isml" else "CMAF"), "/".join(parts[index + 1 :])
    raise PathError(
        404,
        "not an ingest URL: expected …/ingest/<channel>.isml/Streams(<name>) or …/ingest/<channel>.cmaf/<segment>",
        "bad_name",
    )


def loggable_path(path: str) -> str:
    """The path without the stream key: everything before `ingest/` may be a key, right or wrong,
    and a log is read by more people than the key's owner."""
    head, marker, tail = path.partition("/ingest/")
    if not marker:
        return "(not an ingest path)"
    return ("/…" if head.strip("/") else "") + marker + tail


def track_key(rest: str) -> str:
    """Which track a CMAF segment belongs to: its folder plus its stream token."""
    folder, _, name = rest.rpartition("/")
    match = _TRACK_TOKEN.search(name)
    return f"{folder}/{(match.group(1) or match.group(2)) if match else ''}"


class HttpIngest:
    def __init__(self, config: IngestConfig, publications: Publications):
        self.config = config
        self.publications = publications
        self.streams: dict[tuple[str, str], PushStream] = {}  # (channel, stream name) -> live stream
        self.last_time: dict[tuple[str, str, int], int] = {}  # (channel, stream, track) -> last decode time
        self._newest: dict[str, tuple[int, int]] = {}  # channel -> (timescale, newest frame's decode time)
        self.runner: web.AppRunner | None = None
        self._idle_task: asyncio.Task[None] | None = None

    async def start(self, host: str, port: int, *, tls: ssl.SSLContext | None = None) -> int:
        """Listen on ``host:port``: HTTP, or HTTPS with ``tls`` (call once for each)."""
        if self.runner is None:
            app = web.Application(client_max_size=64 << 20)
            app.router.add_route("*", "/{tail:.*}", self.handle)
            self.runner = web.AppRunner(app, access_log=None)
            await self.runner.setup()
            self._idle_task = asyncio.get_running_loop().create_task(self._end_idle())
        site = web.TCPSite(self.runner, host, port, ssl_context=tls)
        await site.start()
        return int(self.runner.addresses[-1][1])  # this site's real port when 0 was asked for

    async def stop(self) -> None:
        if self._idle_task is not None:
            self._idle_task.cancel()
        for stream in list(self.streams.values()):
            await stream.end("the ingest stops")
        if self.runner is not None:
            await self.runner.cleanup()

    async def _end_idle(self) -> None:
        while True:
            await asyncio.sleep(1)
            now = time.monotonic()
            for key, stream in list(self.streams.items()):
                if now - stream.last_activity > self.config.idle_timeout:
                    self.streams.pop(key, None)
                    await stream.end(f"nothing received for {self.config.idle_timeout:g} s")
            for channel in {key[0] for key in self.last_time}:
                if not self.publications.live(channel) and not any(k[0] == channel for k in self.streams):
                    self.forget(channel)  # the contribution is over

    def forget(self, channel: str) -> None:
        """The channel's next contribution starts a timeline of its own."""
        for key in [k for k in self.last_time if k[0] == channel]:
            del self.last_time[key]
        self._newest.pop(channel, None)

    def saw(self, channel: str, timescale: int, time: int) -> None:
        """A frame of ``channel`` at ``time``: what a sparse cue's time is judged against."""
        newest = self._newest.get(channel)
        if newest is None or time * newest[0] > newest[1] * timescale:
            self._newest[channel] = (timescale, time)

    def newest(self, channel: str, timescale: int) -> int | None:
        """The newest frame's time of ``channel``'s push, in ``timescale``."""
        newest = self._newest.get(channel)
        return None if newest is None else newest[1] * timescale // newest[0]

    def _refuse(self, request: web.Request, status: int, label: str, message: str) -> web.Response:
        metrics.REJECTED.labels(label).inc()
        log.warning("refused %s %s from %s: %s", request.method, loggable_path(request.path), request.remote, message)
        return web.Response(status=status, text=message + "\n")

    def _refuse_busy(self, request: web.Request, busy: Busy) -> web.Response:
        if isinstance(busy, ChannelStopped):  # stopped while it pushed
            return self._refuse(request, 403, "stopped", str(busy))
        return self._refuse(request, 409, "busy", str(busy))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            route, protocol, rest = parse_path(self.config, request.path)
        except PathError as error:
            return self._refuse(request, error.status, error.label, str(error))
        if not route.accepts(protocol):
            return self._refuse(request, 403, "protocol", f"channel {route.name} does not accept {protocol}")
        if refusal := route.refuses_transport(secure=request.secure):
            return self._refuse(request, 403, "tls_required" if not request.secure else "tls_not_accepted", refusal)
        if not route.admits(request.remote or ""):
            return self._refuse(
                request, 403, "not_allowed", f"{request.remote} may not publish to channel {route.name}"
            )
        if self.publications.stopped(route.name):
            return self._refuse(request, 403, "stopped", str(ChannelStopped(route.name)))
        if request.method not in ("POST", "PUT", "DELETE"):
            return self._refuse(request, 405, "method", f"{request.method} is not an ingest method")
        if request.method == "DELETE" or rest.endswith((".mpd", ".m3u8")):
            await request.read()
            return web.Response(status=200 if request.method != "DELETE" else 204)
        if protocol == "FragmentedMP4":
            return await self._smooth(request, route, rest)
        return await self._cmaf(request, route, rest)

    def _stream(self, request: web.Request, route: ChannelRoute, name: str, protocol: str) -> PushStream:
        key = (route.name, name)
        current = self.streams.get(key)
        if current is not None and not current.ended:
            if current.peer != request.remote:
                raise Busy(
                    f"stream {name or '(default)'} of channel {route.name} is already being pushed from elsewhere"
                )
            return current
        stream = PushStream(self, route, name, protocol, request.remote or "?")
        self.streams[key] = stream
        return stream

    async def _smooth(self, request: web.Request, route: ChannelRoute, rest: str) -> web.StreamResponse:
        match = re.fullmatch(r"Streams\(([^)/]*)\)", rest)
        if match is None:
            return self._refuse(request, 404, "bad_name", "a Smooth ingest URL ends in /Streams(<name>)")
        if request.content_length == 0:
            return web.Response(status=200)  # the encoder's probe before it starts
        try:
            stream = self._stream(request, route, match.group(1), "FragmentedMP4")
        except Busy as busy:
            return self._refuse_busy(request, busy)
        body = RequestBody()
        try:
            async for chunk in request.content.iter_any():
                if stream.feed(body, chunk):
                    await self._finish(stream, "the encoder ended the stream (mfra)")
                    break
        except (Busy, Mp4Error) as error:
            return await self._end_refused(request, stream, error, f"stream {stream.name} of {route.name}")
        except (ConnectionError, OSError):
            pass
        # Without an mfra the POST broke off: the stream stays live for the idle timeout, so the
        # encoder's reconnect (same address) continues it and its resent fragments are dropped.
        return web.Response(status=200)

    async def _finish(self, stream: PushStream, reason: str) -> None:
        if self.streams.get((stream.route.name, stream.name)) is stream:
            del self.streams[(stream.route.name, stream.name)]
        await stream.end(reason)

    async def _end_refused(
        self, request: web.Request, stream: PushStream, error: Busy | Mp4Error, what: str
    ) -> web.Response:
        """Ends ``stream`` for an error met while reading ``what`` (its push), and refuses the request."""
        if isinstance(error, Busy):
            await self._finish(stream, str(error))
            return self._refuse_busy(request, error)
        metrics.PROTOCOL_ERRORS.labels("fragment").inc()
        await self._finish(stream, f"bad input: {error}")
        return self._refuse(request, 400, "bad_fragment", f"{what}: {error}")

    async def _cmaf(self, request: web.Request, route: ChannelRoute, rest: str) -> web.StreamResponse:
        try:
            stream = self._stream(request, route, track_key(rest), "CMAF")
        except Busy as busy:
            return self._refuse_busy(request, busy)
        body = RequestBody()
        try:
            async with asyncio.timeout(self.config.idle_timeout):
                await stream.lock.acquire()  # the track's previous segment goes first
        except TimeoutError:
            return self._refuse(
                request, 503, "busy", f"{rest} of {route.name}: the previous segment of the track is still arriving"
            )
        try:
            try:
                async for chunk in request.content.iter_any():
                    stream.feed(body, chunk)
            finally:
                stream.lock.release()
            if body.boxes.pending:
                raise Mp4Error(f"segment {rest} ends inside a box")
        except (Busy, Mp4Error) as error:
            return await self._end_refused(request, stream, error, f"{rest} of {route.name}")
        return web.Response(status=201 if request.method == "PUT" else 200)

"""The RTMP ingest server: asyncio glue around ``RtmpSession`` and ``EncoderLink``.

Each connection is a task; everything that can go wrong with one peer (a malformed chunk,
a wrong key, a timeout) ends that task with a logged reason and leaves every other
publisher alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
import uuid
from typing import Any

from kubecast.media.contribution import CodecConfig, Cue, Frame, Kind
from kubecast.media.flv import AAC_FOURCC, AUDIO_FORMAT_EX_HEADER, FlvError, parse_audio_tracks, parse_video

from .. import metrics
from ..config import IngestConfig, decide
from ..cues import CueGate
from ..metadata import MetadataGate
from ..publication import Busy, ChannelStopped, Publications, Source
from ..reading import read_unless_idle
from ..timestamps import TimestampGuard
from ..tls import TlsListener
from . import chunks
from .cuepoints import CuePointError, parse_cue_point
from .session import CueData, Media, ProtocolError, PublishRequest, RtmpSession, TextData, Unpublished
from .textdata import text_record

log = logging.getLogger("kubecast.ingest")

SUPPORTED_VIDEO, SUPPORTED_AUDIO = 7, 10  # H.264, AAC


def check_codec(media: Media) -> str | None:
    """Why a contribution's codec cannot be taken, or None."""
    if media.type == chunks.VIDEO and media.body:
        codec = media.body[0] & 0x0F
        if media.body[0] & 0x80 or codec != SUPPORTED_VIDEO:  # bit 7: enhanced RTMP (HEVC, AV1 ...)
            return "video must be H.264 (AVC); this codec is not supported"
    if media.type == chunks.AUDIO and media.body:
        sound_format = media.body[0] >> 4
        if sound_format == AUDIO_FORMAT_EX_HEADER:  # Enhanced RTMP: the codec is a FourCC
            try:
                packets = parse_audio_tracks(media.body)
            except FlvError:
                return None  # not a codec question: ``media_records`` closes the connection with the reason
            if any(packet.fourcc != AAC_FOURCC for packet in packets):
                return "audio must be AAC; this codec is not supported"
        elif sound_format != SUPPORTED_AUDIO:
            return "audio must be AAC; this codec is not supported"
    return None


RTMP_TIMESCALE = 1000  # RTMP message timestamps are milliseconds, and stay so


def media_records(media: Media) -> list[CodecConfig | Frame]:
    """An RTMP audio or video message (an FLV tag body) as contribution records: one, or one per
    audio track of an Enhanced RTMP multitrack message (its track id is the record's audio
    track); none for what the encoder does not use (metadata, an AVC end-of-sequence marker).
    Raises ``FlvError``."""
    if media.type == chunks.VIDEO:
        video = parse_video(media.body)
        if video.is_sequence_header:
            return [CodecConfig(Kind.VIDEO, 0, video.payload)]
        if video.end_of_sequence:
            return []
        return [
            Frame(
                Kind.VIDEO,
                0,
                RTMP_TIMESCALE,
                media.timestamp,
                video.composition_offset,
                None,
                video.keyframe,
                video.payload,
            )
        ]
    if media.type == chunks.AUDIO:
        return [
            CodecConfig(Kind.AUDIO, audio.track, audio.payload)
            if audio.is_sequence_header
            else Frame(Kind.AUDIO, audio.track, RTMP_TIMESCALE, media.timestamp, 0, None, True, audio.payload)
            for audio in parse_audio_tracks(media.body)
        ]
    return []


def cue_record(gate: CueGate, data: CueData, *, newest: int | None) -> Cue | None:
    """The cue of an ``onCuePoint`` message, on the frames' clock, if ``gate`` lets it through
    (``newest``: the newest frame's timestamp); a broken or untimely one is refused into
    ``gate`` and None."""
    try:
        point = parse_cue_point(data.body, timestamp=data.timestamp)
    except CuePointError as error:
        gate.refuse(error.reason, str(error))
        return None
    if point is None:
        return None
    if newest is None:
        gate.refuse("early", "an RTMP cue point before the contribution's first frame")
        return None
    cue = Cue(RTMP_TIMESCALE, point.time, point.out, point.duration, point.event_id, point.section)
    return gate.timed(cue, now=newest, what="RTMP cue point")


class IngestServer:
    def __init__(self, config: IngestConfig, publications: Publications | None = None) -> None:
        self.config = config
        self.publications = publications or Publications()
        self.connections = 0
        self.servers: list[asyncio.AbstractServer] = []
        self._listeners: list[TlsListener] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self, host: str, port: int, *, tls: ssl.SSLContext | None = None) -> tuple[str, int]:
        """Listen on ``host:port``: RTMP, or RTMPS with ``tls`` (call once for each).  Which one a
        connection came in on decides which channels it may publish to."""
        if tls is not None:
            listener = TlsListener(self._serve, tls, self.config.handshake_timeout)
            self._listeners.append(listener)
            return await listener.start(host, port)
        server = await asyncio.start_server(self._serve, host, port)
        self.servers.append(server)
        address = server.sockets[0].getsockname()
        return str(address[0]), int(address[1])

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
        for listener in self._listeners:
            listener.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # asyncio runs each connection's handler in a task
        self._tasks.add(task)
        peer = (writer.get_extra_info("peername") or ("?", 0))[0]
        session_id = uuid.uuid4().hex[:8]
        self.connections += 1
        try:
            if self.connections > self.config.max_connections:
                metrics.REJECTED.labels("too_many_connections").inc()
                log.warning("refusing %s: %d connections already", peer, self.config.max_connections)
                return
            await self._run(reader, writer, peer, session_id, secure=writer.get_extra_info("sslcontext") is not None)
        except asyncio.CancelledError:
            pass
        except (ConnectionError, ssl.SSLError) as error:  # the publisher went away mid-write: its connection alone ends
            log.info("connection from %s lost: %s", peer, type(error).__name__)
        finally:
            self.connections -= 1
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _run(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: str,
        session_id: str,
        *,
        secure: bool = False,
    ) -> None:
        session = RtmpSession()
        clock = TimestampGuard()
        cues = CueGate()
        texts = MetadataGate()
        newest: int | None = None  # the newest frame's timestamp: what a cue point's time is judged against
        source: Source | None = None
        channel: str | None = None
        started = time.monotonic()

        async def refuse(reason: str) -> None:
            session.reject(reason)
            writer.write(session.take_outgoing())
            await writer.drain()

        try:
            while True:
                timeout = self.config.idle_timeout
                if session.phase.name in ("C0C1", "C2"):
                    timeout = max(0.1, self.config.handshake_timeout - (time.monotonic() - started))
                data = await read_unless_idle(reader, timeout)
                if data is None:
                    reason = "handshake timeout" if session.phase.name in ("C0C1", "C2") else "idle timeout"
                    metrics.PROTOCOL_ERRORS.labels(reason.replace(" ", "_")).inc()
                    log.warning("closing %s (%s): %s", peer, channel or "no channel", reason)
                    return
                if not data:
                    return
                try:
                    events = session.feed(data)
                except ProtocolError as error:
                    metrics.PROTOCOL_ERRORS.labels("protocol").inc()
                    log.warning("closing %s (%s): %s", peer, channel or "no channel", error)
                    return
                for event in events:
                    if isinstance(event, PublishRequest):
                        decision = decide(self.config, app=event.app, name=event.name, peer=peer, secure=secure)
                        if decision.route is None:
                            metrics.REJECTED.labels(decision.label).inc()
                            log.warning("refused a publish from %s: %s", peer, decision.reason)
                            return await refuse(decision.reason)
                        try:
                            source = self.publications.join(
                                decision.route, name=decision.rendition, session_id=session_id, protocol="RTMP"
                            )
                        except Busy as busy:
                            metrics.REJECTED.labels("stopped" if isinstance(busy, ChannelStopped) else "busy").inc()
                            log.warning("refused a publish from %s: %s", peer, busy)
                            return await refuse(str(busy))
                        channel = decision.route.name
                        session.accept()
                        log.info(
                            "%s publishes channel %s%s (session %s)",
                            peer,
                            channel,
                            f" rendition {decision.rendition} (track {source.track})" if decision.rendition else "",
                            session_id,
                        )
                    elif isinstance(event, Media) and source is not None:
                        if self.publications.stopped(source.channel):
                            metrics.REJECTED.labels("stopped").inc()
                            stopped = ChannelStopped(source.channel)
                            log.warning("ending the contribution of %s: %s", peer, stopped)
                            return await refuse(str(stopped))
                        if reason := check_codec(event):
                            metrics.REJECTED.labels("codec").inc()
                            log.warning("refused the contribution of %s on %s: %s", peer, channel, reason)
                            return await refuse(reason)
                        try:
                            records = media_records(event)
                        except FlvError as error:
                            metrics.PROTOCOL_ERRORS.labels("protocol").inc()
                            log.warning("closing %s (%s): %s", peer, channel, error)
                            return
                        kind = {chunks.AUDIO: "audio", chunks.VIDEO: "video"}.get(event.type)
                        timed = any(isinstance(record, Frame) for record in records)  # a sequence header has no time
                        if kind and timed and (jump := clock.check(kind, event.timestamp)):
                            metrics.PROTOCOL_ERRORS.labels("timestamp_jump").inc()
                            log.warning(
                                "ending the contribution of %s on %s: %s; its reconnect starts a new epoch",
                                peer,
                                channel,
                                jump,
                            )
                            return await refuse(f"{jump}: reconnect to continue")
                        for record in records:
                            source.forward(record)
                            if isinstance(record, Frame):
                                newest = max(newest or record.decode_time, record.decode_time)
                    elif isinstance(event, CueData) and source is not None:
                        if (cue := cue_record(cues, event, newest=newest)) is not None:
                            source.forward(cue)
                        cues.report(source.channel, peer)
                    elif isinstance(event, TextData) and source is not None:
                        item = text_record(texts, event.body, timestamp=event.timestamp, newest=newest)
                        if item is not None:
                            source.forward(item)
                        texts.report(source.channel, peer)
                    elif isinstance(event, Unpublished) and source is not None:
                        log.info("channel %s unpublished by %s", channel, peer)
                        await self.publications.leave(source)
                        source = None
                if session.outgoing:
                    writer.write(session.take_outgoing())
                    await writer.drain()
        finally:
            if source is not None:
                log.info("publisher of %s (%s) disconnected", channel, peer)
                await self.publications.leave(source)

"""One RTMP connection's protocol logic, without sockets.

``RtmpSession.feed(bytes)`` parses what the peer sent and returns ``Event``s; what must be
sent back accumulates in ``outgoing``.  The publish decision (which channel, right key, is
the channel free) belongs to the caller, which answers ``PublishRequest`` with ``accept`` or
``reject``.  Anything the protocol does not allow raises ``ProtocolError``: the caller logs
the reason and closes this connection only.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import Enum
from typing import Any

from . import amf0, chunks, cuepoints, textdata
from .handshake import HANDSHAKE_SIZE, HandshakeError, server_response

OUT_CHUNK_SIZE = 4096
WINDOW = 5_000_000
STREAM_ID = 1


class ProtocolError(ValueError):
    pass


class Phase(Enum):
    C0C1 = 1
    C2 = 2
    OPEN = 3
    CLOSED = 4


@dataclass(frozen=True)
class PublishRequest:
    app: str
    name: str  # the publish name, query string removed


@dataclass(frozen=True)
class Media:
    type: int  # chunks.AUDIO, chunks.VIDEO or chunks.DATA_AMF0 (onMetaData)
    timestamp: int
    body: bytes


@dataclass(frozen=True)
class CueData:
    """An ``onCuePoint`` data message, undecoded: ``cuepoints.parse_cue_point`` judges it, and a
    broken one is dropped and counted without ending the connection."""

    timestamp: int
    body: bytes


@dataclass(frozen=True)
class TextData:
    """An ``onTextData`` data message (timed text, as ffmpeg's FLV muxer writes a text subtitle
    stream), undecoded: ``kubecast.ingest.rtmp.textdata`` judges it."""

    timestamp: int
    body: bytes


@dataclass(frozen=True)
class Unpublished:
    pass


Event = PublishRequest | Media | CueData | TextData | Unpublished  # what a session reports to its server


class RtmpSession:
    def __init__(self) -> None:
        self.phase = Phase.C0C1
        self.outgoing = bytearray()
        self.reader = chunks.ChunkReader()
        self._handshake = bytearray()
        self.app: str | None = None
        self.tc_url: str | None = None
        self.stream_created = False
        self.publishing = False
        self.peer_window = 2_500_000
        self._acknowledged = 0
        self._publish_transaction: float = 0  # AMF0 numbers are doubles

    # -- input --
    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        if self.phase in (Phase.C0C1, Phase.C2):
            self._handshake += data
            data = b""
            if self.phase == Phase.C0C1 and len(self._handshake) >= 1 + HANDSHAKE_SIZE:
                try:
                    self.outgoing += server_response(bytes(self._handshake[: 1 + HANDSHAKE_SIZE]))
                except HandshakeError as error:
                    raise ProtocolError(str(error)) from None
                del self._handshake[: 1 + HANDSHAKE_SIZE]
                self.phase = Phase.C2
            if self.phase == Phase.C2 and len(self._handshake) >= HANDSHAKE_SIZE:
                data = bytes(self._handshake[HANDSHAKE_SIZE:])
                self._handshake = bytearray()
                self.phase = Phase.OPEN
        if self.phase != Phase.OPEN or not data:
            return events
        try:
            messages = self.reader.feed(data)
        except chunks.ChunkError as error:
            raise ProtocolError(str(error)) from None
        for message in messages:
            events += self._message(message)
        received = self.reader.bytes_received
        if received - self._acknowledged >= self.peer_window:
            self._acknowledged = received
            self._send(chunks.ACKNOWLEDGEMENT, struct.pack(">I", received & 0xFFFFFFFF), csid=2)
        return events

    def _message(self, message: chunks.Message) -> list[Event]:
        kind = message.type
        if kind == chunks.WINDOW_ACK_SIZE and len(message.body) >= 4:
            self.peer_window = max(1, struct.unpack(">I", message.body[:4])[0])
        elif kind in (chunks.COMMAND_AMF0, chunks.COMMAND_AMF3):
            body = message.body[1:] if kind == chunks.COMMAND_AMF3 and message.body[:1] == b"\x00" else message.body
            try:
                values = amf0.decode_all(body)
            except amf0.AmfError as error:
                raise ProtocolError(f"bad command: {error}") from None
            return self._command(values)
        elif kind in (chunks.DATA_AMF0, chunks.DATA_AMF3):
            body = message.body[1:] if kind == chunks.DATA_AMF3 and message.body[:1] == b"\x00" else message.body
            if self.publishing and body.startswith(cuepoints.PREFIX):
                return [CueData(message.timestamp, body)]
            if self.publishing and body.startswith(textdata.PREFIX):
                return [TextData(message.timestamp, body)]
            if self.publishing:
                try:
                    values = amf0.decode_all(body)
                except amf0.AmfError as error:
                    raise ProtocolError(f"bad data message: {error}") from None
                if values and values[0] == "@setDataFrame":
                    values = values[1:]  # what is stored is the frame itself: onMetaData + properties
                if values and values[0] == "onMetaData":
                    return [Media(chunks.DATA_AMF0, message.timestamp, amf0.encode_all(*values))]
        elif kind in (chunks.AUDIO, chunks.VIDEO):
            if not self.publishing:
                raise ProtocolError("media before a successful publish")
            if message.body:
                return [Media(kind, message.timestamp, message.body)]
        return []

    def _command(self, values: list[Any]) -> list[Event]:
        if not values or not isinstance(values[0], str):
            raise ProtocolError("command without a name")
        name = values[0]
        transaction = values[1] if len(values) > 1 and isinstance(values[1], (int, float)) else 0
        if name == "connect":
            args = values[2] if len(values) > 2 and isinstance(values[2], dict) else {}
            self.app = str(args.get("app", "")).strip("/")
            self.tc_url = str(args.get("tcUrl", "")) or None
            self._send(chunks.WINDOW_ACK_SIZE, struct.pack(">I", WINDOW), csid=2)
            self._send(chunks.SET_PEER_BANDWIDTH, struct.pack(">IB", WINDOW, 2), csid=2)
            self._send(chunks.SET_CHUNK_SIZE, struct.pack(">I", OUT_CHUNK_SIZE), csid=2)
            self._out_chunk_size = OUT_CHUNK_SIZE
            self._command_reply(
                "_result",
                transaction,
                {"fmsVer": "FMS/3,5,7,7009", "capabilities": 31.0, "mode": 1.0},
                {
                    "level": "status",
                    "code": "NetConnection.Connect.Success",
                    "description": "Connection succeeded.",
                    "objectEncoding": 0.0,
                },
            )
            return []
        if self.app is None:
            raise ProtocolError(f"{name} before connect")
        if name == "releaseStream":
            self._command_reply("_result", transaction, None, amf0.UNDEFINED)
        elif name == "FCPublish":
            stream = values[3] if len(values) > 3 else ""
            self._command_reply("onFCPublish", 0, None, {"code": "NetStream.Publish.Start", "description": str(stream)})
        elif name == "createStream":
            self.stream_created = True
            self._command_reply("_result", transaction, None, STREAM_ID)
        elif name == "publish":
            if not self.stream_created:
                raise ProtocolError("publish before createStream")
            if self.publishing:
                raise ProtocolError("publish while already publishing")
            published = values[3] if len(values) > 3 and isinstance(values[3], str) else ""
            self._publish_transaction = transaction
            return [PublishRequest(app=self.app, name=published.split("?", 1)[0].strip("/"))]
        elif name in ("FCUnpublish", "deleteStream", "closeStream"):
            if self.publishing:
                self.publishing = False
                self._status("status", "NetStream.Unpublish.Success", "Stopped publishing.")
                return [Unpublished()]
        elif name in ("play", "play2"):
            self._status(
                "error",
                "NetStream.Play.Failed",
                "This is an ingest endpoint: publish to it, play from the streaming endpoint.",
            )
        elif name == "getStreamLength":
            self._command_reply("_result", transaction, None, 0)
        return []

    # -- decisions of the caller --
    def accept(self) -> None:
        self.publishing = True
        self._send(chunks.USER_CONTROL, struct.pack(">HI", 0, STREAM_ID), csid=2)  # Stream Begin
        self._status("status", "NetStream.Publish.Start", "Publishing.")

    def reject(self, description: str) -> None:
        self._status("error", "NetStream.Publish.BadName", description)
        self.phase = Phase.CLOSED

    # -- output --
    _out_chunk_size = chunks.DEFAULT_CHUNK_SIZE

    def _send(self, type_: int, body: bytes, *, csid: int, stream_id: int = 0) -> None:
        message = chunks.Message(type_, stream_id, 0, body)
        self.outgoing += chunks.encode_message(message, chunk_size=self._out_chunk_size, csid=csid)

    def _command_reply(self, name: str, transaction: float, *args: object) -> None:
        self._send(chunks.COMMAND_AMF0, amf0.encode_all(name, transaction, *args), csid=3)

    def _status(self, level: str, code: str, description: str) -> None:
        body = amf0.encode_all("onStatus", 0, None, {"level": level, "code": code, "description": description})
        self._send(chunks.COMMAND_AMF0, body, csid=5, stream_id=STREAM_ID)

    def take_outgoing(self) -> bytes:
        data = bytes(self.outgoing)
        self.outgoing.clear()
        return data

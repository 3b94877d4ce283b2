"""The RTMP chunk stream: messages cut into chunks, interleaved by chunk stream id.

``ChunkReader`` is an incremental parser with no I/O: feed it the bytes as they come, take
whole messages.  It applies Set Chunk Size itself (the very next chunk may already use the new
size) and enforces limits, so a hostile or broken peer gets a ``ChunkError`` rather than an
unbounded buffer.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Literal

DEFAULT_CHUNK_SIZE = 128
MAX_CHUNK_SIZE = 0x7FFFFFFF >> 7  # 16 MiB: far above the 4-64 KiB real encoders use
MAX_MESSAGE_SIZE = 8 * 1024 * 1024
MAX_CHUNK_STREAMS = 64
# Unfinished messages held across all chunk streams: one large video frame and the audio beside
# it.  Without it, 64 streams each one chunk short of 8 MiB would hold 512 MiB per connection.
MAX_PENDING = 2 * MAX_MESSAGE_SIZE
EXTENDED = 0xFFFFFF

SET_CHUNK_SIZE, ABORT, ACKNOWLEDGEMENT, USER_CONTROL, WINDOW_ACK_SIZE, SET_PEER_BANDWIDTH = 1, 2, 3, 4, 5, 6
AUDIO, VIDEO, DATA_AMF3, COMMAND_AMF3, DATA_AMF0, COMMAND_AMF0 = 8, 9, 15, 17, 18, 20


class ChunkError(ValueError):
    """A protocol violation in the chunk stream; the connection is closed with this reason."""


@dataclass(frozen=True)
class Message:
    type: int
    stream_id: int
    timestamp: int
    body: bytes


@dataclass
class _ChunkStream:
    timestamp: int = 0
    delta: int = 0
    length: int = 0
    type: int = 0
    stream_id: int = 0
    extended: bool = False
    payload: bytearray = field(default_factory=bytearray)
    started: bool = False


class ChunkReader:
    def __init__(self) -> None:
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self._buffer = bytearray()
        self._start = 0  # bytes at the front of _buffer already parsed; dropped once per feed
        self._streams: dict[int, _ChunkStream] = {}
        self._pending = 0  # payload bytes of unfinished messages, over all chunk streams
        self.bytes_received = 0

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        self.bytes_received += len(data)
        messages = []
        try:
            while (message := self._next()) is not False:
                if message is not None:
                    messages.append(message)
        finally:
            # One trim per feed, not one per chunk: what is left is at most one partial chunk, so each
            # byte is moved at most once whatever the chunk size and however much arrived at once.
            del self._buffer[: self._start]
            self._start = 0
        return messages

    def _next(self) -> Message | None | Literal[False]:
        """A Message, None (a chunk consumed, no message completed), or False (need more bytes)."""
        buf, first = self._buffer, self._start
        if len(buf) <= first:
            return False
        fmt, csid, pos = buf[first] >> 6, buf[first] & 0x3F, first + 1
        if csid == 0:
            if len(buf) < first + 2:
                return False
            csid, pos = 64 + buf[first + 1], first + 2
        elif csid == 1:
            if len(buf) < first + 3:
                return False
            csid, pos = 64 + buf[first + 1] + buf[first + 2] * 256, first + 3
        header_size = (11, 7, 3, 0)[fmt]
        if len(buf) < pos + header_size:
            return False
        stream = self._streams.get(csid)
        if stream is None:
            if fmt != 0:
                raise ChunkError(f"chunk stream {csid} starts with a type {fmt} header")
            if len(self._streams) >= MAX_CHUNK_STREAMS:
                raise ChunkError("too many chunk streams")
            stream = _ChunkStream()
        header = bytes(buf[pos : pos + header_size])
        pos += header_size
        time_field = int.from_bytes(header[0:3], "big") if fmt < 3 else 0  # type 3 carries none
        extended = stream.extended if fmt == 3 else time_field == EXTENDED
        if extended:
            if len(buf) < pos + 4:
                return False
            time_field = struct.unpack(">I", buf[pos : pos + 4])[0]
            pos += 4
        new_message = not stream.payload
        length, type_, stream_id = stream.length, stream.type, stream.stream_id
        if fmt <= 1:
            length, type_ = int.from_bytes(header[3:6], "big"), header[6]
        if fmt == 0:
            stream_id = struct.unpack("<I", header[7:11])[0]
        if fmt <= 1 and not new_message:
            raise ChunkError(f"chunk stream {csid}: a new message header arrived inside a message")
        if length > MAX_MESSAGE_SIZE:
            raise ChunkError(f"message of {length} bytes exceeds the {MAX_MESSAGE_SIZE}-byte limit")
        take = min(self.chunk_size, length - len(stream.payload))
        if len(buf) < pos + take:
            return False
        # The whole chunk is here: commit the header state.
        if fmt == 0:
            stream.timestamp, stream.delta = time_field, 0
        elif fmt in (1, 2):
            stream.delta = time_field
            stream.timestamp = (stream.timestamp + time_field) & 0xFFFFFFFF
        elif new_message and stream.started:
            stream.timestamp = (
                stream.timestamp + stream.delta
            ) & 0xFFFFFFFF  # type 3 starting a message repeats the delta
        stream.length, stream.type, stream.stream_id, stream.extended = length, type_, stream_id, extended
        stream.started = True
        stream.payload += buf[pos : pos + take]
        self._start = pos + take
        self._streams[csid] = stream
        if len(stream.payload) < stream.length:
            self._pending += take
            if self._pending > MAX_PENDING:
                raise ChunkError(f"more than {MAX_PENDING} bytes of unfinished messages")
            return None
        self._pending -= len(stream.payload) - take
        message = Message(stream.type, stream.stream_id, stream.timestamp, bytes(stream.payload))
        stream.payload = bytearray()
        if message.type == SET_CHUNK_SIZE:
            if len(message.body) < 4:
                raise ChunkError("truncated Set Chunk Size")
            size = struct.unpack(">I", message.body[:4])[0] & 0x7FFFFFFF
            if not 1 <= size <= MAX_CHUNK_SIZE:
                raise ChunkError(f"absurd chunk size {size}")
            self.chunk_size = size
        elif message.type == ABORT and len(message.body) >= 4:
            aborted = self._streams.get(struct.unpack(">I", message.body[:4])[0])
            if aborted is not None:
                self._pending -= len(aborted.payload)
                aborted.payload = bytearray()
        return message


def encode_message(message: Message, *, chunk_size: int, csid: int) -> bytes:
    """A message as chunks: a type 0 header, then type 3 continuations."""
    extended = message.timestamp >= EXTENDED
    time_field = EXTENDED if extended else message.timestamp
    extra = struct.pack(">I", message.timestamp) if extended else b""
    header = (
        bytes([csid & 0x3F])
        + time_field.to_bytes(3, "big")
        + len(message.body).to_bytes(3, "big")
        + bytes([message.type])
        + struct.pack("<I", message.stream_id)
        + extra
    )
    parts = [header, message.body[:chunk_size]]
    for offset in range(chunk_size, len(message.body), chunk_size):
        parts += [bytes([0xC0 | (csid & 0x3F)]) + extra, message.body[offset : offset + chunk_size]]
    return b"".join(parts)

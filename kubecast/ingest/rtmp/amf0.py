"""AMF0, the encoding of RTMP commands and metadata (Adobe's Action Message Format 0)."""

from __future__ import annotations

import math
import struct
from datetime import datetime, timezone
from typing import Any


class AmfError(ValueError):
    """Bytes that are not valid AMF0."""


class Undefined:
    def __repr__(self) -> str:
        return "undefined"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Undefined)

    def __hash__(self) -> int:
        return 0


UNDEFINED = Undefined()


class EcmaArray(dict[str, Any]):
    """An associative array (AMF0 type 8), as onMetaData carries; a dict that remembers its type."""


MAX_DEPTH = 32


def encode(value: object) -> bytes:
    if value is None:
        return b"\x05"
    if isinstance(value, Undefined):
        return b"\x06"
    if isinstance(value, bool):
        return b"\x01" + (b"\x01" if value else b"\x00")
    if isinstance(value, (int, float)):
        return b"\x00" + struct.pack(">d", float(value))
    if isinstance(value, str):
        raw = value.encode()
        if len(raw) > 0xFFFF:
            return b"\x0c" + struct.pack(">I", len(raw)) + raw
        return b"\x02" + struct.pack(">H", len(raw)) + raw
    if isinstance(value, datetime):
        return b"\x0b" + struct.pack(">dh", value.timestamp() * 1000, 0)
    if isinstance(value, EcmaArray):
        return b"\x08" + struct.pack(">I", len(value)) + _pairs(value)
    if isinstance(value, dict):
        return b"\x03" + _pairs(value)
    if isinstance(value, (list, tuple)):
        return b"\x0a" + struct.pack(">I", len(value)) + b"".join(encode(item) for item in value)
    raise TypeError(f"cannot encode {type(value).__name__} as AMF0")


def _pairs(mapping: dict[Any, Any]) -> bytes:
    out = b""
    for key, item in mapping.items():
        raw = str(key).encode()
        out += struct.pack(">H", len(raw)) + raw + encode(item)
    return out + b"\x00\x00\x09"


def encode_all(*values: object) -> bytes:
    return b"".join(encode(value) for value in values)


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, count: int) -> bytes:
        if self.pos + count > len(self.data):
            raise AmfError(f"truncated AMF0 value at byte {self.pos}")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def utf8(self, length: int) -> str:
        try:
            return self.take(length).decode()
        except UnicodeDecodeError as error:
            raise AmfError("AMF0 string is not UTF-8") from error

    def value(self, depth: int = 0) -> Any:  # an AMF0 value: number, bool, str, None, dict, list …
        if depth > MAX_DEPTH:
            raise AmfError("AMF0 nesting too deep")
        marker = self.take(1)[0]
        if marker == 0x00:
            number = struct.unpack(">d", self.take(8))[0]
            return int(number) if math.isfinite(number) and number.is_integer() else number
        if marker == 0x01:
            return self.take(1) != b"\x00"
        if marker == 0x02:
            return self.utf8(struct.unpack(">H", self.take(2))[0])
        if marker == 0x03:
            return self.pairs({}, depth)
        if marker in (0x05, 0x0D):  # null, unsupported
            return None
        if marker == 0x06:
            return UNDEFINED
        if marker == 0x08:
            self.take(4)  # the count is a hint; the end marker is authoritative
            return self.pairs(EcmaArray(), depth)
        if marker == 0x0A:
            count = struct.unpack(">I", self.take(4))[0]
            if count > len(self.data):
                raise AmfError("AMF0 array longer than its message")
            return [self.value(depth + 1) for _ in range(count)]
        if marker == 0x0B:
            millis, _zone = struct.unpack(">dh", self.take(10))
            try:
                return datetime.fromtimestamp(millis / 1000, timezone.utc)
            except (OverflowError, ValueError, OSError) as error:  # NaN, or beyond the years datetime holds
                raise AmfError(f"AMF0 date {millis!r} ms is out of range") from error
        if marker == 0x0C:
            return self.utf8(struct.unpack(">I", self.take(4))[0])
        raise AmfError(f"unsupported AMF0 type marker 0x{marker:02x}")

    def pairs(self, target: dict[str, Any], depth: int) -> dict[str, Any]:
        while True:
            length = struct.unpack(">H", self.take(2))[0]
            if length == 0 and self.data[self.pos : self.pos + 1] == b"\x09":
                self.pos += 1
                return target
            key = self.utf8(length)
            target[key] = self.value(depth + 1)


def decode_all(data: bytes) -> list[Any]:
    reader = _Reader(data)
    values = []
    while reader.pos < len(data):
        values.append(reader.value())
    return values

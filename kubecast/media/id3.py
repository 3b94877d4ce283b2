"""ID3v2 tags as timed metadata (id3.org ID3v2.3.0 and ID3v2.4.0 structure), checked, pure.

HLS carries timed metadata as ID3v2 tags (Apple's "Timed Metadata for HTTP Live Streaming"): a
contribution brings them on a PES stream of its own, and the endpoint writes them into the TS
segments at the same media time.  The tags pass through as sent (players read their frames);
what is checked here is that the bytes are whole tags a player can walk: the ``ID3`` header of
version 2.3 or 2.4, a syncsafe size that matches the bytes, frames whose headers lie within the
tag, padding of zero bytes after them.  A PES may hold several tags one after another.

Anything else raises ``Id3Error`` with a one-word ``reason`` (counted per reason by the ingest):
a truncated tag, a size that does not match, a tag over ``MAX_TAGS`` bytes (a picture in a tag
would travel in every timeline read, so tags are for short text and identifiers).
"""

from __future__ import annotations

MAX_TAGS = 16 * 1024  # of one timed metadata item: an ad identifier or a title, never an image
HEADER = 10
_FOOTER_FLAG = 0x10
_EXTENDED_FLAG = 0x40
_UNSYNCHRONISATION_FLAG = 0x80


class Id3Error(ValueError):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _syncsafe(data: bytes, reason: str) -> int:
    if any(byte & 0x80 for byte in data):
        raise Id3Error(reason, "a size that is not syncsafe (a byte with its top bit set)")
    return data[0] << 21 | data[1] << 14 | data[2] << 7 | data[3]


def _frames(body: bytes, version: int) -> None:
    """The frame headers of a tag body lie within it, and only zero padding follows them."""
    position = 0
    while position + HEADER <= len(body):
        identifier = body[position : position + 4]
        if identifier == b"\x00\x00\x00\x00":
            if body[position:].strip(b"\x00"):
                raise Id3Error("padding", "non-zero bytes in the padding after the last frame")
            return
        if not all(0x30 <= c <= 0x39 or 0x41 <= c <= 0x5A for c in identifier):
            raise Id3Error("frame", f"a frame id {identifier!r} that is not four capitals or digits")
        raw = body[position + 4 : position + 8]
        size = _syncsafe(raw, "frame") if version == 4 else int.from_bytes(raw, "big")
        if size == 0 or position + HEADER + size > len(body):
            raise Id3Error("frame", f"frame {identifier.decode()} of {size} bytes does not fit the tag")
        position += HEADER + size
    if body[position:].strip(b"\x00"):
        raise Id3Error("truncated", "a frame header cut off at the end of the tag")


def text_tag(description: str, text: str) -> bytes:
    """An ID3v2.4 tag of one TXXX frame (user-defined text, UTF-8): how timed text that arrives
    without ID3 (RTMP ``onTextData``) is carried as timed metadata."""
    body = b"\x03" + description.encode() + b"\x00" + text.encode()
    frame = b"TXXX" + _syncsafe_bytes(len(body)) + b"\x00\x00" + body
    return b"ID3\x04\x00\x00" + _syncsafe_bytes(len(frame)) + frame


def _syncsafe_bytes(value: int) -> bytes:
    return bytes([(value >> 21) & 0x7F, (value >> 14) & 0x7F, (value >> 7) & 0x7F, value & 0x7F])


def split_tags(data: bytes) -> list[bytes]:
    """The whole ID3v2 tags ``data`` holds, one after another (trailing zero bytes allowed)."""
    if len(data) > MAX_TAGS:
        raise Id3Error("size", f"{len(data)} bytes of timed metadata, more than {MAX_TAGS}")
    tags: list[bytes] = []
    position = 0
    while position < len(data):
        if tags and not data[position:].strip(b"\x00"):
            break  # stuffing after the last tag
        if len(data) - position < HEADER:
            raise Id3Error("truncated", f"{len(data) - position} bytes where a tag header needs {HEADER}")
        header = data[position : position + HEADER]
        if header[:3] != b"ID3":
            raise Id3Error("header", "no ID3v2 tag header")
        version, revision, flags = header[3], header[4], header[5]
        if version not in (3, 4) or revision == 0xFF:
            raise Id3Error("version", f"ID3v2.{version}.{revision}: only 2.3 and 2.4 are read")
        size = _syncsafe(header[6:10], "size")
        end = position + HEADER + size + (HEADER if version == 4 and flags & _FOOTER_FLAG else 0)
        if end > len(data):
            raise Id3Error("truncated", f"a tag of {size} bytes with {len(data) - position - HEADER} there")
        body = data[position + HEADER : position + HEADER + size]
        # With an extended header or unsynchronised frames the frame walk needs the tag decoded;
        # players do that, and the size check above already bounds the tag.
        if not flags & (_EXTENDED_FLAG | _UNSYNCHRONISATION_FLAG):
            _frames(body, version)
        tags.append(data[position:end])
        position = end
    if not tags:
        raise Id3Error("empty", "no ID3v2 tag")
    return tags

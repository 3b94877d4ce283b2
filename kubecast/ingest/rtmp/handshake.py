"""The RTMP handshake, in both forms.

The simple form echoes C1 as S2.  The digest form, which Flash Player and most encoders
since (FFmpeg, OBS through librtmp) send, hides an HMAC-SHA256 digest in C1 at one of two
offsets; the server must answer with a digest of its own in S1 and an S2 signed with a key
derived from the client's digest, or strict clients give up.  Keys and layout follow the
published descriptions of the Flash handshake.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import time

HANDSHAKE_SIZE = 1536
DIGEST_SIZE = 32
_KEY_TAIL = bytes.fromhex("f0eec24a8068bee82e00d0d1029e7e576eec5d2d29806fab93b8e636cfeb31ae")
CLIENT_KEY = b"Genuine Adobe Flash Player 001" + _KEY_TAIL
SERVER_KEY = b"Genuine Adobe Flash Media Server 001" + _KEY_TAIL
SERVER_VERSION = bytes([4, 5, 0, 1])


class HandshakeError(ValueError):
    pass


def _digest_offset(packet: bytes, schema: int) -> int:
    base = 8 if schema == 1 else 772
    return sum(packet[base : base + 4]) % 728 + base + 4


def _digest(packet: bytes, offset: int, key: bytes) -> bytes:
    return hmac.new(key, packet[:offset] + packet[offset + DIGEST_SIZE :], hashlib.sha256).digest()


def find_client_digest(c1: bytes) -> tuple[int, bytes] | None:
    """(schema, digest) when C1 carries a valid Flash digest, None for a simple handshake."""
    for schema in (1, 0):
        offset = _digest_offset(c1, schema)
        expected = _digest(c1, offset, CLIENT_KEY[:30])
        if hmac.compare_digest(expected, c1[offset : offset + DIGEST_SIZE]):
            return schema, expected
    return None


def server_response(c0c1: bytes) -> bytes:
    """S0 + S1 + S2 for a received C0 + C1."""
    if len(c0c1) != 1 + HANDSHAKE_SIZE:
        raise HandshakeError("C0/C1 of the wrong size")
    if c0c1[0] != 3:
        raise HandshakeError(f"RTMP version {c0c1[0]} is not 3 (RTMPE and others are not supported)")
    c1 = c0c1[1:]
    found = find_client_digest(c1)
    if found is None:
        s1 = struct.pack(">I", int(time.time()) & 0xFFFFFFFF) + b"\x00\x00\x00\x00" + os.urandom(HANDSHAKE_SIZE - 8)
        return b"\x03" + s1 + c1
    schema, client_digest = found
    s1 = bytearray(struct.pack(">I", int(time.time()) & 0xFFFFFFFF) + SERVER_VERSION + os.urandom(HANDSHAKE_SIZE - 8))
    offset = _digest_offset(bytes(s1), schema)
    s1[offset : offset + DIGEST_SIZE] = _digest(bytes(s1), offset, SERVER_KEY[:36])
    s2 = bytearray(os.urandom(HANDSHAKE_SIZE))
    key = hmac.new(SERVER_KEY, client_digest, hashlib.sha256).digest()
    s2[-DIGEST_SIZE:] = hmac.new(key, bytes(s2[:-DIGEST_SIZE]), hashlib.sha256).digest()
    return b"\x03" + bytes(s1) + bytes(s2)


def client_c1(*, digest: bool, schema: int = 1) -> bytes:
    """A C1 as a client would send it (tests and the relay use it)."""
    c1 = bytearray(
        struct.pack(">I", 0) + (bytes([9, 0, 124, 2]) if digest else b"\x00" * 4) + os.urandom(HANDSHAKE_SIZE - 8)
    )
    if digest:
        offset = _digest_offset(bytes(c1), schema)
        c1[offset : offset + DIGEST_SIZE] = _digest(bytes(c1), offset, CLIENT_KEY[:30])
    return bytes(c1)

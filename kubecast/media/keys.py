"""Content keys derived from one master key: every endpoint replica gives the same key.

A content key is never stored anywhere.  The master key (at least 16 random bytes, from a
Kubernetes Secret) and a public key id determine it:

    key id = HMAC-SHA256(master, "kubecast key id" | channel | key period)[:16]
    key    = HMAC-SHA256(master, "kubecast content key" | key id)[:16]
    iv     = HMAC-SHA256(master, "kubecast iv" | key id)[:16]

so any replica, given only the key id a player asks for, computes the key without a key
database or any state shared between replicas, and a key id reveals nothing of the key.
Programs play the channel's own stored segments, so they use the channel's keys.  With
rotation every N segments, segment n belongs to key period n // N; without, to period 0.
Common Encryption uses one key per channel and scheme (``cenc``, ``cbcs``) in place of a
period: one key is never used in two cipher modes.

The IV is constant per key (HLS AES-128 writes it once per key in the playlist, as the
``cbcs`` scheme does in ``tenc``); rotation bounds how much media one key and IV cover.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from dataclasses import dataclass

MIN_MASTER_BYTES = 16


@dataclass(frozen=True)
class ContentKey:
    key_id: bytes  # 16 bytes, public: in playlists, tenc, pssh
    key: bytes  # 16 bytes, AES-128
    iv: bytes  # 16 bytes, constant per key

    @property
    def key_id_uuid(self) -> str:
        return str(uuid.UUID(bytes=self.key_id))


def parse_master_key(text: str | bytes) -> bytes:
    """A master key as a Secret holds it: hex or base64 text (what `openssl rand -hex` prints
    and a ``stringData`` field can hold).  Refuses anything shorter than 16 bytes."""
    value = text.decode() if isinstance(text, bytes) else text
    value = value.strip()
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        try:
            raw = base64.b64decode(value, validate=True)
        except binascii.Error:
            raise ValueError("the content-protection master key must be hex or base64") from None
    if len(raw) < MIN_MASTER_BYTES:
        raise ValueError(f"the content-protection master key must be at least {MIN_MASTER_BYTES} bytes, got {len(raw)}")
    return raw


def key_period(segment_number: int, rotation_segments: int) -> int:
    return segment_number // rotation_segments if rotation_segments > 0 else 0


class KeyDeriver:
    def __init__(self, master: bytes):
        if len(master) < MIN_MASTER_BYTES:
            raise ValueError(f"a master key of at least {MIN_MASTER_BYTES} bytes is needed")
        self._master = master

    def _mac(self, label: bytes, *parts: bytes) -> bytes:
        message = label + b"".join(len(part).to_bytes(2, "big") + part for part in parts)
        return hmac.new(self._master, message, hashlib.sha256).digest()[:16]

    def key_id(self, channel: str, period: int) -> bytes:
        return self._mac(b"kubecast key id", channel.encode(), str(period).encode())

    def for_key_id(self, key_id: bytes) -> ContentKey:
        if len(key_id) != 16:
            raise ValueError("a key id is 16 bytes")
        return ContentKey(key_id, self._mac(b"kubecast content key", key_id), self._mac(b"kubecast iv", key_id))

    def for_period(self, channel: str, period: int) -> ContentKey:
        return self.for_key_id(self.key_id(channel, period))

    def for_scheme(self, channel: str, scheme: str) -> ContentKey:
        """A channel's key for a Common Encryption scheme: one key per cipher mode, never the
        AES-128 keys' (the label is a scheme name, never a period's digits)."""
        if scheme.isdigit():
            raise ValueError("a scheme name, not a number")
        return self.for_key_id(self._mac(b"kubecast key id", channel.encode(), scheme.encode()))

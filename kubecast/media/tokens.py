"""Signed-URL tokens: who may fetch which paths until when, checked without any state.

A token is ``<key id>.<expiry>.<scope>.<signature>``: the expiry in Unix seconds, the scope
base64url-encoded, and the signature the base64url HMAC-SHA256 of ``<key id>.<expiry>.<scope
text>`` under the key named by the key id.  Every part is URL-path safe (no ``/``), so a token
travels as a path element, ``/t/<token>/live/demo/index.m3u8``: every relative URL inside the
manifests (child playlists, init and media segments, Smooth fragments, key URLs) then carries
it without rewriting anything, and unmodified players work.

Scopes say which request paths a token opens:

- ``channel:<name>``: the channel's live URLs and its preview (``/live/<name>/...``,
  ``/preview/<name>/...``, and the ``/status/<name>.json`` the preview page polls);
- ``program:<locator>``: a program's URLs (``/<locator>/...``);
- ``prefix:<path>``: any path that starts with ``<path>`` (``prefix:/`` opens everything).

Several keys may be live at once (a dict key id -> key): rotating adds the new key, signs with
it, and drops the old one once every token signed with it has expired.  Signatures are compared
with ``hmac.compare_digest``.  Nothing here logs, and a ``Decision`` never holds the token.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_SCOPE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MAX_TOKEN = 512  # longer is refused before any decoding: nothing legitimate is that long


class Reason(str, enum.Enum):
    """Why a request was refused; the metric label and the log word (never sent to the client)."""

    MISSING = "missing"
    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    OUT_OF_SCOPE = "out_of_scope"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: Reason | None = None  # None when allowed
    key_id: str | None = None  # the key that signed it, once the signature checked out

    @property
    def status(self) -> int:
        """The HTTP status of a refusal: 401 without a token, 403 with a bad one."""
        return 200 if self.allowed else (401 if self.reason is Reason.MISSING else 403)


def check_scope(scope: str) -> str:
    """``scope`` if it is one of the three forms, else ValueError naming the forms."""
    kind, _, value = scope.partition(":")
    if kind in ("channel", "program") and _SCOPE_NAME.match(value):
        return scope
    if kind == "prefix" and value.startswith("/") and "\x00" not in value and ".." not in value.split("/"):
        return scope
    raise ValueError(f"a scope is channel:<name>, program:<locator> or prefix:/<path>, not {scope!r}")


def in_scope(scope: str, path: str) -> bool:
    """Whether the request ``path`` (the token element removed) lies in ``scope``."""
    kind, _, value = scope.partition(":")
    if kind == "channel":
        return path.startswith((f"/live/{value}/", f"/preview/{value}/")) or path in (
            f"/preview/{value}",
            f"/status/{value}.json",
        )
    if kind == "program":
        return path.startswith(f"/{value}/")
    if kind == "prefix":
        return path.startswith(value)
    return False


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(key: bytes, key_id: str, expires: int, scope: str) -> str:
    return _b64(hmac.new(key, f"{key_id}.{expires}.{scope}".encode(), hashlib.sha256).digest())


def sign(*, key: bytes, key_id: str, scope: str, expires: int) -> str:
    """A token for ``scope`` valid until ``expires`` (Unix seconds), signed with ``key``."""
    if not KEY_ID.match(key_id):
        raise ValueError(f"a key id is 1 to 32 letters, digits, '-' or '_', not {key_id!r}")
    if not key:
        raise ValueError("the signing key is empty")
    check_scope(scope)
    return f"{key_id}.{int(expires)}.{_b64(scope.encode())}.{_signature(key, key_id, int(expires), scope)}"


@dataclass(frozen=True)
class Signed:
    """What a token whose signature checked out says: who signed it, until when, for what."""

    key_id: str
    expires: int
    scope: str

    def decide(self, path: str, now: float) -> Decision:
        if self.expires <= now:
            return Decision(False, Reason.EXPIRED, self.key_id)
        if not in_scope(self.scope, path):
            return Decision(False, Reason.OUT_OF_SCOPE, self.key_id)
        return Decision(True, None, self.key_id)


def signed_by(token: str | None, keys: Mapping[str, bytes]) -> Signed | Decision:
    """What ``token`` says if one of ``keys`` signed it, else the refusal."""
    if not token:
        return Decision(False, Reason.MISSING)
    parts = token.split(".") if len(token) <= MAX_TOKEN else []
    if len(parts) != 4 or not parts[1].isdigit() or len(parts[1]) > 12:
        return Decision(False, Reason.MALFORMED)
    key_id, expires_text, scope_text, signature = parts
    key = keys.get(key_id)
    if key is None:
        return Decision(False, Reason.UNKNOWN_KEY)
    try:
        scope = _unb64(scope_text).decode()
    except (ValueError, UnicodeDecodeError):
        return Decision(False, Reason.MALFORMED)
    expected = _signature(key, key_id, int(expires_text), scope)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return Decision(False, Reason.BAD_SIGNATURE)
    return Signed(key_id, int(expires_text), scope)


def verify(token: str | None, path: str, now: float, keys: Mapping[str, bytes]) -> Decision:
    """Whether ``token`` lets its bearer fetch ``path`` at ``now`` (Unix seconds) under ``keys``
    (key id -> key; every key live at once).  The signature is checked before the expiry and the
    scope are believed, so a forged token learns nothing about which part was wrong."""
    signed = signed_by(token, keys)
    return signed.decide(path, now) if isinstance(signed, Signed) else signed


class Verifier:
    """``verify`` under fixed ``keys``, checking each token's signature once: a player sends the
    same token with every playlist and segment request, and the HMAC and the decoding were a
    good part of a signed request's cost.  Only tokens whose signature checked out are
    remembered (a forger cannot fill the memory), at most ``remember`` of them, forgotten all at
    once when it is full; the expiry and the scope are judged on every request."""

    def __init__(self, keys: Mapping[str, bytes], *, remember: int = 4096) -> None:
        self.keys = dict(keys)
        self.remember = remember
        self._signed: dict[str, Signed] = {}

    def verify(self, token: str | None, path: str, now: float) -> Decision:
        signed = self._signed.get(token) if token else None
        if signed is None:
            found = signed_by(token, self.keys)
            if not isinstance(found, Signed):
                return found
            assert token  # only a token can check out
            if len(self._signed) >= self.remember:
                self._signed.clear()
            signed = self._signed[token] = found
        return signed.decide(path, now)

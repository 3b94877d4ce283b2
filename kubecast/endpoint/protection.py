"""Content protection on the streaming endpoint: which key encrypts what, and who may have it.

Encryption happens per request from the one clear stored copy (``kubecast.media.aes128``),
and the encrypted bytes go to the object cache beside the clear ones, so a hot segment is
encrypted once per replica.  Keys are derived from the master key (``kubecast.media.keys``):
every replica serves the same key for the same key id with no shared state.

Key delivery follows Azure Media Services' key delivery with a token restriction: with
``keyDelivery`` set, ``GET …/keys/<period>.key`` answers the 16-byte key only to a request
carrying a JWT (``Authorization: Bearer <jwt>``, or ``?token=<jwt>`` for players that cannot
set headers), HS256-signed by the configured key, unexpired (``exp`` is required), with the
configured ``iss`` and ``aud``, and, when it has a ``kubecast.io/channel`` claim, for this
channel.  Without ``keyDelivery`` the key URL is as open as the playlists are (the endpoint's
own access rules).  Refusals are 401 (no token) or 403 (any bad token) with no detail; the
log line and the metric name the reason, never the token.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import jwt
from aiohttp import web
from pydantic import ValidationError

from kubecast.api.endpoint import CONTENT_MASTER_KEY_ENV, KEY_DELIVERY_JWT_KEY_ENV, ContentProtection
from kubecast.media.cenc import Scheme
from kubecast.media.keys import ContentKey, KeyDeriver, key_period, parse_master_key

CHANNEL_CLAIM = "kubecast.io/channel"
KEY_FILE = r"\d{1,12}\.key"
MAX_TOKEN = 4096


class Refusal(str, enum.Enum):
    MISSING = "missing"
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    WRONG_CLAIMS = "wrong_claims"
    OUT_OF_SCOPE = "out_of_scope"

    @property
    def status(self) -> int:
        return 401 if self is Refusal.MISSING else 403


@dataclass(frozen=True)
class JwtRule:
    key: bytes
    issuer: str | None = None
    audience: str | None = None

    def check(self, token: str | None, *, channel: str, now: float) -> Refusal | None:
        """None if ``token`` opens the keys of ``channel`` at ``now`` (Unix seconds)."""
        if not token:
            return Refusal.MISSING
        if len(token) > MAX_TOKEN:
            return Refusal.MALFORMED
        try:
            claims = jwt.decode(
                token, self.key, algorithms=["HS256"], issuer=self.issuer, audience=self.audience,
                options={"require": ["exp"], "verify_aud": self.audience is not None, "verify_exp": False},
            )
        except jwt.InvalidSignatureError:
            return Refusal.BAD_SIGNATURE
        except (jwt.InvalidIssuerError, jwt.InvalidAudienceError, jwt.MissingRequiredClaimError, jwt.ImmatureSignatureError):
            return Refusal.WRONG_CLAIMS
        except jwt.InvalidTokenError:
            return Refusal.MALFORMED
        # expiry checked here, against the caller's clock, so tests and replicas agree on "now"
        expires = claims.get("exp")
        if not isinstance(expires, (int, float)) or expires <= now:
            return Refusal.EXPIRED
        scope = claims.get(CHANNEL_CLAIM)
        if scope is not None and scope != channel:
            return Refusal.OUT_OF_SCOPE
        return None


def request_token(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The bearer token of a key request: the Authorization header, else ``?token=``."""
    authorization = headers.get("Authorization", "")
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return query.get("token") or None


@dataclass(frozen=True)
class Protection:
    keys: KeyDeriver
    rotation_segments: int = 0
    jwt: JwtRule | None = None
    cenc_scheme: Scheme = "cenc"

    @classmethod
    def from_spec(cls, spec: ContentProtection, *, master_key: str, jwt_key: str | None) -> "Protection":
        """The endpoint's protection from its resource and the two Secrets' values."""
        rule = None
        if spec.key_delivery is not None:
            if not jwt_key:
                raise ValueError("contentProtection.keyDelivery is set but its JWT key is empty")
            rule = JwtRule(jwt_key.encode(), spec.key_delivery.issuer, spec.key_delivery.audience)
        return cls(KeyDeriver(parse_master_key(master_key)), spec.key_rotation_segments, rule, spec.cenc_scheme)

    def cenc_key(self, channel: str) -> ContentKey:
        return self.keys.for_scheme(channel, self.cenc_scheme)

    def key_for(self, channel: str, segment_number: int) -> ContentKey:
        return self.keys.for_period(channel, key_period(segment_number, self.rotation_segments))

    def key_tag(self, channel: str, *, keys_path: str) -> Callable[[int], str]:
        """The ``EXT-X-KEY`` line of each segment number; ``keys_path`` is the key folder
        relative to the media playlist."""

        def tag(number: int) -> str:
            period = key_period(number, self.rotation_segments)
            key = self.keys.for_period(channel, period)
            return f'#EXT-X-KEY:METHOD=AES-128,URI="{keys_path}{period}.key",IV=0x{key.iv.hex()}'

        return tag


class LicenseError(ValueError):
    """A ClearKey licence request that is not one, or asks for none of the keys offered."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def clearkey_license(body: bytes, offered: list[ContentKey]) -> dict:
    """The W3C EME ClearKey licence (JSON Web Key set) answering ``body``, a licence request
    ``{"kids": [<base64url key id>, ...], "type": "temporary"}``, with those of ``offered``
    it names."""
    try:
        request = json.loads(body)
        kids = request["kids"]
        if not isinstance(kids, list) or not 0 < len(kids) <= 16 or not all(isinstance(kid, str) and len(kid) <= 64 for kid in kids):
            raise ValueError
        wanted = [base64.urlsafe_b64decode(kid + "=" * (-len(kid) % 4)) for kid in kids]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, binascii.Error):
        raise LicenseError("not a ClearKey licence request") from None
    known = {key.key_id: key for key in offered}
    keys = [{"kty": "oct", "kid": _b64url(kid), "k": _b64url(known[kid].key)} for kid in wanted if kid in known]
    if not keys:
        raise LicenseError("none of the requested key ids is this stream's")
    session = request.get("type") if request.get("type") in ("temporary", "persistent-license") else "temporary"
    return {"keys": keys, "type": session}


PROTECTION = web.AppKey("protection", Protection)
def protection_from_environment(spec_json: str | None, environ: Mapping[str, str]) -> Protection | None:
    """The endpoint process's protection: its spec from the command line, the Secrets' values
    from the environment (never arguments, which every process on the node can read)."""
    if not spec_json:
        return None
    try:
        spec = ContentProtection.model_validate_json(spec_json)
    except ValidationError as error:
        raise ValueError(str(error)) from None
    master = environ.get(CONTENT_MASTER_KEY_ENV)
    if not master:
        raise ValueError(f"{CONTENT_MASTER_KEY_ENV} is not set")
    return Protection.from_spec(spec, master_key=master, jwt_key=environ.get(KEY_DELIVERY_JWT_KEY_ENV))


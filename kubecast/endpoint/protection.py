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
from typing import Any

import jwt
from aiohttp import web

from kubecast.api.components import ContentProtectionConfig
from kubecast.media.cenc import Scheme
from kubecast.media.cpix import DrmSignal, DrmSystem
from kubecast.media.keys import ContentKey, KeyDeriver, key_period, parse_master_key

from .keyserver import KeyServer, KeyServerUnavailable

CHANNEL_CLAIM = "kubecast.io/channel"
CLEARKEY_KEY_FORMAT = "org.w3.clearkey"
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
                token,
                self.key,
                algorithms=["HS256"],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp"], "verify_aud": self.audience is not None, "verify_exp": False},
            )
        except jwt.InvalidSignatureError:
            return Refusal.BAD_SIGNATURE
        except (
            jwt.InvalidIssuerError,
            jwt.InvalidAudienceError,
            jwt.MissingRequiredClaimError,
            jwt.ImmatureSignatureError,
        ):
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
class CencKeys:
    """A channel's Common Encryption key and how players find it: from a DRM key server, with
    its systems' signalling; else derived here and given out as ClearKey licences."""

    key: ContentKey
    signals: tuple[DrmSignal, ...] = ()
    from_key_server: bool = False

    def hls_key_lines(self, scheme: Scheme) -> str:
        """The ``EXT-X-KEY`` lines of an fMP4 HLS rendition in ``scheme`` (``SAMPLE-AES`` for
        cbcs, ``SAMPLE-AES-CTR`` for cenc), one per ``KEYFORMAT``.  A key server's system is
        named by its ``URIExtXKey`` if it gave one (FairPlay's ``skd://``), else by its PSSH in
        a data URI (PlayReady: the PlayReady Object inside it, as UTF-16 data); ClearKey by the
        key id (the licence comes from the player's configured licence URL)."""
        method = "SAMPLE-AES" if scheme == "cbcs" else "SAMPLE-AES-CTR"
        kid = self.key.key_id
        if not self.from_key_server:
            uri = f"data:text/plain;base64,{base64.b64encode(kid).decode()}"
            return (
                f'#EXT-X-KEY:METHOD={method},URI="{uri}",KEYID=0x{kid.hex()},KEYFORMAT="{CLEARKEY_KEY_FORMAT}",'
                'KEYFORMATVERSIONS="1"'
            )
        lines = []
        for signal in self.signals:
            if signal.uri_ext_x_key is not None:
                uri = signal.uri_ext_x_key
            elif signal.system is DrmSystem.PLAYREADY:
                uri = f"data:text/plain;charset=UTF-16;base64,{base64.b64encode(signal.pssh_data).decode()}"
            else:
                uri = f"data:text/plain;base64,{base64.b64encode(signal.pssh or b'').decode()}"
            key_id = "" if signal.system is DrmSystem.FAIRPLAY else f",KEYID=0x{kid.hex()}"
            lines.append(
                f'#EXT-X-KEY:METHOD={method},URI="{uri}"{key_id},KEYFORMAT="{signal.system.hls_key_format}",'
                'KEYFORMATVERSIONS="1"'
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class Protection:
    keys: KeyDeriver
    rotation_segments: int = 0
    jwt: JwtRule | None = None
    cenc_scheme: Scheme = "cenc"
    key_server: KeyServer | None = None

    @classmethod
    def from_config(
        cls,
        config: ContentProtectionConfig,
        *,
        master_key: str,
        jwt_key: bytes | None,
        cpix_authorization: str | None = None,
    ) -> "Protection":
        """The endpoint's protection from its config and the values of the key files it names."""
        rule = None
        if config.key_delivery is not None:
            if not jwt_key:
                raise ValueError("contentProtection.keyDelivery is set but its JWT key is empty")
            rule = JwtRule(jwt_key, config.key_delivery.issuer, config.key_delivery.audience)
        server = None
        if config.cpix is not None:
            if config.cpix.credentials_file is not None and not cpix_authorization:
                raise ValueError("contentProtection.cpix.credentialsFile is set but its value is empty")
            server = KeyServer(
                config.cpix.url, [DrmSystem(name) for name in config.cpix.drm_systems], cpix_authorization
            )
        return cls(
            KeyDeriver(parse_master_key(master_key)), config.key_rotation_segments, rule, config.cenc_scheme, server
        )

    def cenc_key(self, channel: str) -> ContentKey:
        """A channel's derived Common Encryption key: the ClearKey one, and with a key server
        the key id asked for (the key itself is then the key server's)."""
        return self.keys.for_scheme(channel, self.cenc_scheme)

    async def cenc(self, channel: str) -> CencKeys:
        """A channel's Common Encryption key and signalling; raises 503 when the key server fails."""
        derived = self.cenc_key(channel)
        if self.key_server is None:
            return CencKeys(derived)
        try:
            answer = await self.key_server.answer(content_id=channel, key_id=derived.key_id, scheme=self.cenc_scheme)
        except KeyServerUnavailable:
            raise web.HTTPServiceUnavailable(
                text="the DRM key server is unavailable\n", headers={"Retry-After": "5"}
            ) from None
        # the IV is public (in tenc for cbcs): the key server's if it chose one
        return CencKeys(ContentKey(derived.key_id, answer.key, answer.explicit_iv or derived.iv), answer.signals, True)

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


def clearkey_license(body: bytes, offered: list[ContentKey]) -> dict[str, Any]:
    """The W3C EME ClearKey licence (JSON Web Key set) answering ``body``, a licence request
    ``{"kids": [<base64url key id>, ...], "type": "temporary"}``, with those of ``offered``
    it names."""
    try:
        request = json.loads(body)
        kids = request["kids"]
        if (
            not isinstance(kids, list)
            or not 0 < len(kids) <= 16
            or not all(isinstance(kid, str) and len(kid) <= 64 for kid in kids)
        ):
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

"""Protected delivery: encrypted segments made from the clear stored ones, on request.

With ``contentProtection`` on the endpoint (``kubecast.endpoint.protection``):

- HLS: every media playlist, fMP4 and TS, names its key (``EXT-X-KEY:METHOD=AES-128`` with
  the key's IV) and every media segment at its usual URL is the stored one (or its TS remux)
  in AES-128-CBC; the init segment stays clear (codec configuration only);
- DASH: the MPD signals Common Encryption and ClearKey and lists ``<scheme>/`` segments,
  ``cenc`` or ``cbcs`` as configured, made by ``kubecast.media.cenc``;
- HLS from the same encrypted segments: ``<scheme>/index.m3u8`` lists ``<scheme>/<rendition>/``
  playlists with ``EXT-X-KEY:METHOD=SAMPLE-AES`` (cbcs) or ``SAMPLE-AES-CTR`` (cenc) and a
  ``KEYFORMAT`` per DRM system (ClearKey, or the key server's Widevine, PlayReady, FairPlay);
- nothing is ever served in the clear: Smooth Streaming (no PlayReady here) is refused.

Encrypted bytes are cached in the endpoint's object cache under the clear object's key, the
scheme and the key id, so each is made once per replica while it is hot.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable

from aiohttp import web

from kubecast.media import aes128, cenc
from kubecast.media.fmp4 import parse_init
from kubecast.media.keys import ContentKey
from kubecast.media.mp4 import Mp4Error

from .objects import CachedObject, ObjectCache
from .protection import PROTECTION, CencKeys, Protection


def protection_of(request: web.Request) -> Protection | None:
    return request.app.get(PROTECTION)


Loader = Callable[[], Awaitable[CachedObject | None]]


async def aes128_object(
    objects: ObjectCache, cache_key: tuple[Hashable, ...], clear: Loader, content_key: ContentKey
) -> CachedObject | None:
    """``clear()``'s bytes (a stored object or a remux) in AES-128, through the object cache."""

    async def encrypt() -> bytes | None:
        found = await clear()
        return None if found is None else aes128.encrypt_segment(found.data, key=content_key.key, iv=content_key.iv)

    return await objects.get(("aes-128", content_key.key_id, *cache_key), encrypt)


def pssh_boxes(keys: CencKeys) -> list[bytes]:
    """The init segment's ``pssh`` boxes: the key server's systems' (as it made them) or
    ClearKey's; and the common system id's, which lists the key id for every client."""
    common = cenc.pssh(cenc.COMMON_SYSTEM_ID, [keys.key.key_id])
    if keys.from_key_server:
        return [signal.pssh for signal in keys.signals if signal.pssh is not None] + [common]
    return [cenc.pssh(cenc.CLEARKEY_SYSTEM_ID, [keys.key.key_id]), common]


async def cenc_init(
    objects: ObjectCache, store_key: str, clear: Loader, keys: CencKeys, scheme: cenc.Scheme
) -> CachedObject | None:
    content_key = keys.key

    async def protect() -> bytes | None:
        found = await clear()
        if found is None:
            return None
        return cenc.protect_init(
            found.data,
            scheme=scheme,
            key_id=content_key.key_id,
            constant_iv=content_key.iv,
            pssh_boxes=pssh_boxes(keys),
        )

    return await _guarded(objects.get((scheme, content_key.key_id, store_key), protect))


async def cenc_segment(
    objects: ObjectCache,
    store_key: str,
    clear: Loader,
    clear_init: Loader,
    track_id: str,
    content_key: ContentKey,
    scheme: cenc.Scheme,
) -> CachedObject | None:
    async def protect() -> bytes | None:
        found, init = await clear(), await clear_init()
        if found is None or init is None:
            return None
        config = parse_init(init.data)[0]
        length_size = (config.codec_config[4] & 0x03) + 1 if config.kind == "video" else 4
        return cenc.protect_segment(
            found.data,
            scheme=scheme,
            key=content_key.key,
            constant_iv=content_key.iv,
            video=config.kind == "video",
            nal_length_size=length_size,
            iv_start=cenc.sample_iv_start(content_key.key, track_id),
        )

    return await _guarded(objects.get((scheme, content_key.key_id, store_key), protect))


async def _guarded(pending: Awaitable[CachedObject | None]) -> CachedObject | None:
    try:
        return await pending
    except (Mp4Error, IndexError) as error:
        raise web.HTTPBadGateway(text=f"stored media unreadable: {error}\n") from None

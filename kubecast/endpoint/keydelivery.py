"""Key delivery: ``GET <base>/keys/<period>.key`` (HLS AES-128, the raw 16 bytes) and
``POST <base>/keys/clearkey`` (the W3C EME ClearKey licence for DASH CENC), where ``<base>`` is
the channel's ``/live/<channel>`` or a program's ``/<locator>`` (and ``/<locator>/<name>.ism``).
The playlists name their keys relatively, so the key URLs resolve there: a signed-URL token
in the path carries to them, and a token scoped to a channel or a program covers its keys.
The token rules themselves are ``kubecast.endpoint.protection``'s.
"""

from __future__ import annotations

import logging
import time

from aiohttp import web

from . import metrics
from .live import timeline_of
from .protected import protection_of
from .protection import KEY_FILE, LicenseError, Protection, clearkey_license, request_token

log = logging.getLogger("kubecast.endpoint.keys")
MAX_LICENSE_REQUEST = 4096


def _authorize(request: web.Request, protection: Protection, channel: str) -> None:
    if protection.jwt is None:
        return
    refusal = protection.jwt.check(request_token(request.headers, request.query), channel=channel, now=time.time())
    if refusal is not None:
        metrics.KEY_REQUESTS.labels(refusal.value).inc()
        log.warning("key request for channel %s refused: %s (from %s)", channel, refusal.value, request.remote)
        raise (
            web.HTTPUnauthorized(text="unauthorized\n")
            if refusal.status == 401
            else web.HTTPForbidden(text="forbidden\n")
        )


NO_STORE = {"Cache-Control": "private, no-store"}


async def aes_key(request: web.Request) -> web.Response:
    protection = protection_of(request)
    if protection is None:
        raise web.HTTPNotFound(text="this endpoint serves no encrypted content\n")
    timeline = await timeline_of(request)
    _authorize(request, protection, timeline.channel)
    period = int(request.match_info["file"].removesuffix(".key"))
    metrics.KEY_REQUESTS.labels("served").inc()
    key = protection.keys.for_period(timeline.channel, period)
    return web.Response(body=key.key, content_type="application/octet-stream", headers=NO_STORE)


async def clearkey(request: web.Request) -> web.Response:
    protection = protection_of(request)
    if protection is None:
        raise web.HTTPNotFound(text="this endpoint serves no Common Encryption\n")
    if protection.key_server is not None:
        raise web.HTTPNotFound(text="licences come from the DRM vendor's licence server\n")
    timeline = await timeline_of(request)
    _authorize(request, protection, timeline.channel)
    body = await request.content.read(MAX_LICENSE_REQUEST + 1)
    try:
        answer = clearkey_license(
            body if len(body) <= MAX_LICENSE_REQUEST else b"", [protection.cenc_key(timeline.channel)]
        )
    except LicenseError as error:
        metrics.KEY_REQUESTS.labels("bad_request").inc()
        return web.Response(status=400, text=f"{error}\n", headers=NO_STORE)
    metrics.KEY_REQUESTS.labels("served").inc()
    return web.json_response(answer, headers=NO_STORE)


def add_key_routes(app: web.Application, base: str) -> None:
    app.router.add_get(f"{base}/keys/{{file:{KEY_FILE}}}", aes_key)
    app.router.add_post(f"{base}/keys/clearkey", clearkey)

"""Who may fetch what from the streaming endpoint: the access policy and its middleware.

The policy comes from the endpoint's config (``kubecast.endpoint.config``; the operator and
``kubecast up`` write it from the StreamingEndpoint and the Channels):

- ``allowed``: client ranges allowed at all (playback and previews); empty allows all;
- ``preview_allowed``: channel -> ranges allowed to open ``/preview/<channel>/`` (page and
  thumbnail), on top of ``allowed``;
- ``trusted_proxies``: direct peers whose ``X-Forwarded-For`` / ``Forwarded`` header names the
  client.  From any other peer those headers are ignored, since anyone can write them;
- ``signing_keys``: key id -> key.  Set, every content URL needs a token
  (``kubecast.media.tokens``) as its first path element, ``/t/<token>/live/...``;
- ``origin_header`` / ``origin_secret``: a request without that header and value is refused,
  so only the CDN holding the secret can pull;
- ``cross_site_origins``: web origins for CORS and the Flash / Silverlight policy files.

``/healthz`` and ``/metrics`` are always open (probes and scraping come from inside the
cluster, not through the CDN).  A refusal is a bare 401 (a token is needed and there is none)
or 403 (anything else), a log line naming the reason and the path with any token elided, and
``kubecast_endpoint_denied_total{reason}``.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html import escape

from aiohttp import web
from aiohttp.typedefs import Handler
from yarl import URL

from kubecast.media import tokens

from . import metrics

log = logging.getLogger("kubecast.endpoint.access")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

TOKEN_ELEMENT = "t"
ALWAYS_OPEN = ("/healthz", "/metrics")
# Paths that show no content: they need no token (a player fetches /time from the MPD's
# UTCTiming, browsers fetch the policy files on their own), but the allow-lists still apply.
NO_TOKEN = ("/time", "/crossdomain.xml", "/clientaccesspolicy.xml")
NO_TOKEN_PREFIXES = ("/static/",)


@dataclass(frozen=True)
class AccessPolicy:
    allowed: tuple[Network, ...] = ()
    preview_allowed: Mapping[str, tuple[Network, ...]] = field(default_factory=dict)
    trusted_proxies: tuple[Network, ...] = ()
    signing_keys: Mapping[str, bytes] = field(default_factory=dict)
    origin_header: str | None = None
    origin_secret: bytes | None = None
    cross_site_origins: tuple[str, ...] = ()
    verifier: tokens.Verifier = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "verifier", tokens.Verifier(self.signing_keys))

    @property
    def signed(self) -> bool:
        return bool(self.signing_keys)


def networks(values: Iterable[str] | None) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(value, strict=False) for value in values or ())


def _address(text: str | None) -> Address | None:
    if not text:
        return None
    text = text.strip().strip('"')
    if text.startswith("["):  # Forwarded: for="[2001:db8::1]:4711"
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:  # 192.0.2.1:4711
        text = text.split(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _forwarded_chain(headers: Mapping[str, str]) -> list[str]:
    """Client addresses the proxies appended, nearest proxy's last (RFC 7239 first, else XFF)."""
    forwarded = headers.get("Forwarded")
    if forwarded:
        chain = []
        for element in forwarded.split(","):
            for pair in element.split(";"):
                name, _, value = pair.strip().partition("=")
                if name.lower() == "for":
                    chain.append(value)
        return chain
    return [part.strip() for part in headers.get("X-Forwarded-For", "").split(",") if part.strip()]


def client_address(peer: str | None, headers: Mapping[str, str], trusted: tuple[Network, ...]) -> Address | None:
    """The client's address: the direct peer's, unless the peer is a trusted proxy; then the
    forwarded chain is walked from the nearest hop back, past every trusted proxy, to the first
    address no trusted proxy owns (what a client writes into the header itself lies further
    back and is never reached while a trusted proxy appended the real one)."""
    address = _address(peer)
    if address is None or not _within(address, trusted):
        return address
    for hop in reversed(_forwarded_chain(headers)):
        hop_address = _address(hop)
        if hop_address is None:
            return None  # an unparseable hop after trusted ones: nothing to trust
        address = hop_address
        if not _within(address, trusted):
            return address
    return address


def _within(address: Address | None, ranges: tuple[Network, ...]) -> bool:
    if address is None:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
    return any(address.version == net.version and address in net for net in ranges)


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str


def split_token(path: str) -> tuple[str | None, str]:
    """(token, path without it) for ``/t/<token>/rest``; (None, path) otherwise."""
    prefix = f"/{TOKEN_ELEMENT}/"
    if not path.startswith(prefix):
        return None, path
    token, slash, rest = path[len(prefix) :].partition("/")
    return token, "/" + rest if slash else "/"


def _preview_channel(path: str) -> str | None:
    parts = path.split("/")
    return parts[2] if len(parts) >= 3 and parts[1] == "preview" else None


def decide(
    policy: AccessPolicy, *, path: str, token: str | None, peer: str | None, headers: Mapping[str, str], now: float
) -> Refusal | None:
    """Whether a request for ``path`` (token element removed; ``token`` what it held) from the
    direct ``peer`` is refused, and why; None serves it.  Pure: the middleware's whole logic."""
    if path in ALWAYS_OPEN:
        return None
    if any(segment in (".", "..") for segment in path.split("/")):
        return Refusal(400, "bad_path")  # a scope is a path prefix: no way around it
    if policy.origin_secret is not None:
        sent = headers.get(policy.origin_header or "", "").encode()
        if not hmac.compare_digest(sent, policy.origin_secret):
            return Refusal(403, "origin_auth")
    if policy.allowed or policy.preview_allowed:
        client = client_address(peer, headers, policy.trusted_proxies)
        if policy.allowed and not _within(client, policy.allowed):
            return Refusal(403, "ip_not_allowed")
        channel = _preview_channel(path)
        if (
            channel is not None
            and channel in policy.preview_allowed
            and not _within(client, policy.preview_allowed[channel])
        ):
            return Refusal(403, "preview_ip_not_allowed")
    if token is not None and not policy.signed:
        return Refusal(404, "token_unexpected")  # nothing signs here: /t/... names nothing
    if not policy.signed or path in NO_TOKEN or path.startswith(NO_TOKEN_PREFIXES):
        return None
    decision = policy.verifier.verify(token, path, now)
    if decision.allowed:
        return None
    assert decision.reason is not None  # every refusal names its reason
    return Refusal(decision.status, decision.reason.value)


def allowed_origin(origins: tuple[str, ...], origin: str | None) -> str | None:
    """CORS ``Access-Control-Allow-Origin`` for a request from ``origin``: ``*`` when the list is
    empty or holds ``*``, the origin itself when listed, else None (no header: browsers refuse)."""
    if not origins or "*" in origins:
        return "*"
    return origin if origin in origins else None


def cors_headers(policy: AccessPolicy, origin: str | None) -> dict[str, str]:
    allowed = allowed_origin(policy.cross_site_origins, origin)
    headers = {"Vary": "Origin"} if allowed != "*" else {}
    if allowed is not None:
        headers["Access-Control-Allow-Origin"] = allowed
    return headers


def crossdomain_xml(origins: tuple[str, ...]) -> str:
    """Flash's policy file: each origin's host (``secure`` for https), or ``*``."""
    entries = []
    for origin in origins or ("*",):
        if origin == "*":
            entries.append('<allow-access-from domain="*" secure="false"/>')
        else:
            host = URL(origin).host or ""
            entries.append(
                f'<allow-access-from domain="{escape(host)}" secure="{str(origin.startswith("https:")).lower()}"/>'
            )
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE cross-domain-policy SYSTEM '
        '"http://www.adobe.com/xml/dtds/cross-domain-policy.dtd">\n'
        "<cross-domain-policy>\n" + "".join(f"  {entry}\n" for entry in entries) + "</cross-domain-policy>\n"
    )


def clientaccesspolicy_xml(origins: tuple[str, ...]) -> str:
    """Silverlight's policy file: the same origins, every path."""
    domains = "".join(f'<domain uri="{escape(origin)}"/>' for origin in origins or ("*",))
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<access-policy><cross-domain-access><policy>'
        f'<allow-from http-request-headers="*">{domains}</allow-from>'
        '<grant-to><resource path="/" '
        'include-subpaths="true"/></grant-to></policy></cross-domain-access></access-policy>\n'
    )


POLICY_FILES = {"/crossdomain.xml": crossdomain_xml, "/clientaccesspolicy.xml": clientaccesspolicy_xml}


def elided(path: str) -> str:
    """``path`` as it may be logged: a token element replaced by ``t/…``."""
    token, rest = split_token(path)
    return path if token is None else f"/{TOKEN_ELEMENT}/…{rest}"


def refusal_response(refusal: Refusal) -> web.Response:
    text = {400: "bad request\n", 401: "token required\n", 404: "not found\n"}.get(refusal.status, "forbidden\n")
    return web.Response(status=refusal.status, text=text, headers={"Cache-Control": "no-store"})


POLICY = web.AppKey("access_policy", AccessPolicy)
TOKEN_PREFIX = web.RequestKey("token_prefix", str)  # "/t/<token>" when the request came with one
ROUTE = web.RequestKey("inner_route", str)  # the route a signed request reached, for the metrics


def install(app: web.Application, policy: AccessPolicy) -> None:
    """Enforce ``policy`` on every request ``app`` serves (innermost middleware: the outer one
    still counts and tags refusals)."""
    app[POLICY] = policy
    app.middlewares.append(enforce)
    # A token path's own route, so that aiohttp's first routing of it takes one pattern (under
    # "/t") instead of trying every program route under "/" before the catch-all; ``enforce``
    # answers every request it matches.
    app.router.add_route("*", f"/{TOKEN_ELEMENT}/{{token}}/{{rest:.*}}", _routed_by_enforce)


async def _routed_by_enforce(request: web.Request) -> web.StreamResponse:
    raise web.HTTPNotFound(text="not found\n")  # not reached: enforce answers every token path


@web.middleware
async def enforce(request: web.Request, handler: Handler) -> web.StreamResponse:
    policy = request.app[POLICY]
    token, path = split_token(request.path)
    refusal = decide(policy, path=path, token=token, peer=request.remote, headers=request.headers, now=time.time())
    if refusal is not None:
        metrics.DENIED.labels(refusal.reason).inc()
        log.info("refused %s %s from %s: %s", request.method, elided(request.path), request.remote, refusal.reason)
        return refusal_response(refusal)
    if path in POLICY_FILES:
        return web.Response(
            text=POLICY_FILES[path](policy.cross_site_origins),
            content_type="text/xml",
            headers={"Cache-Control": "public, max-age=3600"},
        )
    if token is None:
        return await handler(request)
    # The token element goes; the rest is routed as if it had been asked for directly.
    _, _, raw_rest = request.rel_url.raw_path[len(TOKEN_ELEMENT) + 2 :].partition("/")
    inner = request.clone(
        rel_url=URL.build(path="/" + raw_rest, query_string=request.rel_url.raw_query_string, encoded=True)
    )
    match = await request.app.router.resolve(inner)
    match.add_app(request.app)
    match.freeze()
    inner._match_info = match  # what Application._handle does for a request it routes itself
    if match.route.resource is not None:
        request[ROUTE] = match.route.resource.canonical  # not the token's catch-all: never a token in a label
    inner[TOKEN_PREFIX] = f"/{TOKEN_ELEMENT}/{token}"
    return await match.handler(inner)

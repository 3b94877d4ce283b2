"""Access control over HTTP: signed URLs on every URL form, allow-lists, trusted proxies,
origin authentication, against a store holding a live channel and a stopped program."""

import time

import pytest
from aiohttp.test_utils import TestClient, TestServer
from timeline_fixtures import ladder_timeline, store_program

from kubecast.endpoint import metrics
from kubecast.endpoint.access import AccessPolicy, install, networks
from kubecast.endpoint.app import make_app
from kubecast.media.mp4 import Sample, init_segment_video, media_segment
from kubecast.media.tokens import sign
from kubecast.storage import Store, layout

KEYS = {"old": b"the old key, still live", "new": b"the new key"}
AVCC = bytes([1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 4, 0x67, 0x64, 0, 0x1F, 1, 0, 2, 0x68, 0xEE])
# Every URL form, with the scope that opens it.  The Smooth fragment's bitrate is the 720p
# rendition's (ladder_timeline: peak 1.5 Mbit/s).
LIVE = [
    "/live/news/index.m3u8",
    "/live/news/v720/index.m3u8",
    "/live/news/v720/init.mp4",
    "/live/news/v720/12.m4s",
    f"/live/news/v720/t{12 * 180000}.m4s",
    "/live/news/manifest.mpd",
    "/live/news/ts/index.m3u8",
    "/live/news/ts/v720/index.m3u8",
    "/preview/news/",
    "/preview/news/thumbnail.jpg",
    "/status/news.json",
]
PROGRAM = [
    "/evening-news/show.m3u8",
    "/evening-news/show.m3u8?startover",
    "/evening-news/show.mpd",
    "/evening-news/show.ism/manifest",
    "/evening-news/show.ism/manifest(format=m3u8-cmaf)",
    "/evening-news/show.ism/manifest(format=m3u8-aapl)",
    "/evening-news/show.ism/manifest(format=mpd-time-cmaf)",
    "/evening-news/show.ism/manifest(format=mpd-time-csf)",
    "/evening-news/v720/index.m3u8",
    "/evening-news/v720/12.m4s",
    "/evening-news/show.ism/v720/12.m4s",
    "/evening-news/show.ism/QualityLevels(1500000)/Fragments(video=360000)",
]


async def fill(store: Store) -> bytes:
    await store_program(store, ladder_timeline(state="stopped"))
    await store.put(layout.timeline_key("news"), ladder_timeline().to_json())
    segment = media_segment(
        sequence_number=12, base_decode_time=12 * 180000, samples=[Sample(180000, 100)], data=b"s" * 100
    )
    await store.put(layout.segment_key("news", "A", "v720", 12), segment)
    await store.put(layout.segment_key("news", "A", "v720", 2), segment)
    await store.put(
        layout.init_key("news", "A", "v720", "init-aa.mp4"),
        init_segment_video(width=1280, height=720, timescale=90000, avcc=AVCC),
    )
    return segment


@pytest.fixture
async def serve(tmp_path):
    """serve(policy) -> a client of an endpoint enforcing it (None: no policy at all)."""
    store = Store(str(tmp_path / "store"))
    await fill(store)
    clients = []

    async def start(policy: AccessPolicy | None) -> TestClient:
        app = make_app(store)
        if policy is not None:
            install(app, policy)
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


def token(scope, key_id="new", ttl=60, key=None):
    return sign(key=key or KEYS[key_id], key_id=key_id, scope=scope, expires=int(time.time()) + ttl)


def denied(reason: str) -> float:
    return metrics.DENIED.labels(reason)._value.get()


async def test_signed_urls_serve_exactly_what_the_open_endpoint_serves(serve):
    open_client, signed = await serve(None), await serve(AccessPolicy(signing_keys=KEYS))
    for paths, scope in ((LIVE, "channel:news"), (PROGRAM, "program:evening-news")):
        tok = token(scope)
        for path in paths:
            plain = await open_client.get(path)
            through = await signed.get(f"/t/{tok}{path}")
            assert plain.status in (200, 404) and through.status == plain.status, path  # 404: no thumbnail stored
            if plain.status == 200 and not path.startswith(("/preview/", "/status/")):
                same_host = (await through.read()).replace(
                    f":{signed.server.port}/".encode(), f":{open_client.server.port}/".encode()
                )
                assert same_host == await plain.read(), path
    # The open paths stay open, and the token element is not a path of an open endpoint.
    for path in ("/healthz", "/metrics", "/time", "/static/kubecast.css"):
        assert (await signed.get(path)).status == 200, path
    assert (await open_client.get(f"/t/{token('channel:news')}/live/news/index.m3u8")).status == 404


async def test_every_bad_token_is_refused_on_every_url_form(serve, caplog):
    caplog.set_level("INFO", "kubecast.endpoint.access")
    client = await serve(AccessPolicy(signing_keys=KEYS))
    for paths, scope, other in (
        (LIVE, "channel:news", "channel:sport"),
        (PROGRAM, "program:evening-news", "program:other"),
    ):
        good = token(scope)
        kid, expires, scope_b64, signature = good.split(".")
        bad = {
            "expired": token(scope, ttl=-1),
            "forged": token(scope, key=b"guessed"),
            "wrong scope": token(other),
            "wrong key id": f"old.{expires}.{scope_b64}.{signature}",
            "unknown key id": f"gone.{expires}.{scope_b64}.{signature}",
            "garbage": "not-a-token",
        }
        for path in paths:
            before = denied("missing")
            response = await client.get(path)
            assert response.status == 401 and await response.text() == "token required\n", path
            assert denied("missing") == before + 1
            for what, candidate in bad.items():
                response = await client.get(f"/t/{candidate}{path}")
                assert response.status == 403 and await response.text() == "forbidden\n", (what, path)
    assert good not in caplog.text and signature not in caplog.text, "no token in the logs"
    assert "out_of_scope" in caplog.text and "/t/…/live/news/index.m3u8" in caplog.text


async def test_rotation_the_old_key_works_until_it_is_dropped(serve):
    both, only_new = (
        await serve(AccessPolicy(signing_keys=KEYS)),
        await serve(AccessPolicy(signing_keys={"new": KEYS["new"]})),
    )
    old, new = token("channel:news", "old"), token("channel:news", "new")
    for tok in (old, new):
        assert (await both.get(f"/t/{tok}/live/news/index.m3u8")).status == 200
    assert (await only_new.get(f"/t/{new}/live/news/index.m3u8")).status == 200
    before = denied("unknown_key")
    assert (await only_new.get(f"/t/{old}/live/news/index.m3u8")).status == 403, "replayed after rotation"
    assert denied("unknown_key") == before + 1


async def test_relative_child_urls_carry_the_token(serve):
    client = await serve(AccessPolicy(signing_keys=KEYS))
    tok = token("channel:news")
    multivariant = await (await client.get(f"/t/{tok}/live/news/index.m3u8")).text()
    child = next(line for line in multivariant.splitlines() if line and not line.startswith("#"))
    assert not child.startswith(("/", "http")), "relative: resolves under /t/<token>/"
    media = await (await client.get(f"/t/{tok}/live/news/{child}")).text()
    assert '#EXT-X-MAP:URI="init.mp4"' in media and "12.m4s" in media
    # The preview page's player and links keep the token, its redirect too.
    page = await (await client.get(f"/t/{tok}/preview/news/")).text()
    assert f"/t/{tok}/live/news/index.m3u8" in page and f"/t/{tok}/live/news/manifest.mpd" in page
    redirect = await client.get(f"/t/{tok}/preview/news", allow_redirects=False)
    assert redirect.status == 301 and redirect.headers["Location"] == "news/"
    status = await (await client.get(f"/t/{tok}/status/news.json")).json()
    assert status["urls"]["hls"].endswith(f"/t/{tok}/live/news/index.m3u8")


def peer_policy(**kwargs) -> AccessPolicy:
    return AccessPolicy(
        **{
            key: networks(value) if key != "preview_allowed" else {c: networks(v) for c, v in value.items()}
            for key, value in kwargs.items()
        }
    )


async def test_allow_lists_from_the_direct_peer(serve):
    # The test client connects from 127.0.0.1.
    allowed = await serve(peer_policy(allowed=["127.0.0.0/8", "2001:db8::/32"]))
    assert (await allowed.get("/live/news/index.m3u8")).status == 200
    refused = await serve(peer_policy(allowed=["192.0.2.0/24", "2001:db8::/32"]))
    before = denied("ip_not_allowed")
    for path in ("/live/news/index.m3u8", "/evening-news/show.mpd", "/preview/news/", "/"):
        response = await refused.get(path)
        assert response.status == 403 and await response.text() == "forbidden\n", path
    assert denied("ip_not_allowed") == before + 4
    assert (await refused.get("/healthz")).status == 200 and (await refused.get("/metrics")).status == 200
    # A spoofed header from a peer that is no trusted proxy changes nothing.
    for header in ({"X-Forwarded-For": "192.0.2.7"}, {"Forwarded": "for=192.0.2.7"}):
        assert (await refused.get("/live/news/index.m3u8", headers=header)).status == 403


async def test_preview_allow_list_is_per_channel(serve):
    client = await serve(peer_policy(preview_allowed={"news": ["10.0.0.0/8"], "sport": ["127.0.0.1/32"]}))
    assert (await client.get("/preview/news/")).status == 403
    assert (await client.get("/preview/news/thumbnail.jpg")).status == 403
    assert (await client.get("/live/news/index.m3u8")).status == 200, "the preview list guards the preview only"
    open_preview = await serve(peer_policy(preview_allowed={"news": ["127.0.0.1/32"]}))
    assert (await open_preview.get("/preview/news/")).status == 200


async def test_forwarded_addresses_count_only_from_trusted_proxies(serve):
    client = await serve(peer_policy(allowed=["192.0.2.0/24", "2001:db8::/32"], trusted_proxies=["127.0.0.1/32"]))
    cases = {
        ("X-Forwarded-For", "192.0.2.7"): 200,
        ("X-Forwarded-For", "203.0.113.9"): 403,
        (
            "X-Forwarded-For",
            "192.0.2.7, 203.0.113.9",
        ): 403,  # the client wrote the first, the proxy appended the real one
        ("X-Forwarded-For", "203.0.113.9, 192.0.2.7"): 200,
        ("Forwarded", 'for="[2001:db8::5]:4711"'): 200,
        ("Forwarded", "for=203.0.113.9;proto=https"): 403,
        ("Forwarded", 'for="[2001:db9::5]"'): 403,
        ("X-Forwarded-For", "2001:db8::1"): 200,
        ("X-Forwarded-For", "not-an-address"): 403,
        ("X-Forwarded-For", ""): 403,
    }
    for (name, value), status in cases.items():
        assert (await client.get("/live/news/index.m3u8", headers={name: value})).status == status, (name, value)


async def test_origin_authentication(serve):
    client = await serve(AccessPolicy(origin_header="X-Origin-Auth", origin_secret=b"cdn-shared-secret"))
    assert (await client.get("/live/news/index.m3u8", headers={"X-Origin-Auth": "cdn-shared-secret"})).status == 200
    before = denied("origin_auth")
    for headers in (
        {},
        {"X-Origin-Auth": "wrong"},
        {"X-Origin-Auth": "cdn-shared-secret2"},
        {"X-Other": "cdn-shared-secret"},
    ):
        assert (await client.get("/live/news/index.m3u8", headers=headers)).status == 403, headers
    assert denied("origin_auth") == before + 4
    assert (await client.get("/healthz")).status == 200


async def test_cross_site_policy_files_and_cors_follow_the_origins(serve):
    import xml.etree.ElementTree as ET

    listed = await serve(
        AccessPolicy(
            cross_site_origins=("https://player.example.com", "http://old.example.com:8080"), signing_keys=KEYS
        )
    )
    flash = ET.fromstring(await (await listed.get("/crossdomain.xml")).text())
    assert [(e.get("domain"), e.get("secure")) for e in flash.iter("allow-access-from")] == [
        ("player.example.com", "true"),
        ("old.example.com", "false"),
    ]
    silverlight = ET.fromstring(await (await listed.get("/clientaccesspolicy.xml")).text())
    assert [d.get("uri") for d in silverlight.iter("domain")] == [
        "https://player.example.com",
        "http://old.example.com:8080",
    ]
    tok = token("channel:news")
    allowed = await listed.get(f"/t/{tok}/live/news/index.m3u8", headers={"Origin": "https://player.example.com"})
    assert (
        allowed.headers["Access-Control-Allow-Origin"] == "https://player.example.com"
        and "Origin" in allowed.headers["Vary"]
    )
    other = await listed.get(f"/t/{tok}/live/news/index.m3u8", headers={"Origin": "https://evil.example.com"})
    assert other.status == 200 and "Access-Control-Allow-Origin" not in other.headers
    refused = await listed.get("/live/news/index.m3u8", headers={"Origin": "https://player.example.com"})
    assert refused.status == 401 and refused.headers["Access-Control-Allow-Origin"] == "https://player.example.com", (
        "a player can read why"
    )
    preflight = await listed.options(
        "/live/news/index.m3u8", headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "GET"}
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers
    everyone = await serve(AccessPolicy())
    assert (await everyone.get("/live/news/index.m3u8", headers={"Origin": "https://any.example"})).headers[
        "Access-Control-Allow-Origin"
    ] == "*"
    flash = ET.fromstring(await (await everyone.get("/crossdomain.xml")).text())
    assert [e.get("domain") for e in flash.iter("allow-access-from")] == ["*"]


async def test_ipv6_peers_and_ipv4_mapped_addresses(tmp_path):
    store = Store(str(tmp_path / "store"))
    await fill(store)
    for ranges, status in ((["::1/128"], 200), (["2001:db8::/32", "127.0.0.0/8"], 403)):
        app = make_app(store)
        install(app, peer_policy(allowed=ranges))
        async with TestClient(TestServer(app, host="::1")) as client:
            assert (await client.get("/live/news/index.m3u8")).status == status, ranges
    from kubecast.endpoint.access import client_address

    # A dual-stack socket reports an IPv4 client as ::ffff:a.b.c.d: the IPv4 ranges still apply.
    assert decide_ip(peer_policy(allowed=["192.0.2.0/24"]), "::ffff:192.0.2.9") is None
    assert decide_ip(peer_policy(allowed=["192.0.2.0/24"]), "::ffff:198.51.100.1") == "ip_not_allowed"
    assert (
        str(client_address("::ffff:10.0.0.1", {"X-Forwarded-For": "2001:db8::7"}, networks(["10.0.0.0/8"])))
        == "2001:db8::7"
    )


def decide_ip(policy: AccessPolicy, peer: str) -> str | None:
    from kubecast.endpoint.access import decide

    refusal = decide(policy, path="/live/news/index.m3u8", token=None, peer=peer, headers={}, now=time.time())
    return refusal.reason if refusal else None


async def test_signed_requests_are_counted_under_their_own_route(serve):
    client = await serve(AccessPolicy(signing_keys=KEYS))
    tok = token("channel:news")
    requests = lambda: metrics.REQUESTS.labels("/live/{channel}/{track}/index.m3u8", "200")._value.get()  # noqa: E731
    before = requests()
    assert (await client.get(f"/t/{tok}/live/news/v720/index.m3u8")).status == 200
    assert requests() == before + 1
    assert tok not in (await (await client.get("/metrics")).text())

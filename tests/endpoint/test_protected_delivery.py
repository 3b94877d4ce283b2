"""Protected delivery through the endpoint, against real peers: ffmpeg plays what it serves.

A stored channel (and a stopped program over it) of real H.264 + AAC; an endpoint with
content protection in this process on a free port; ffmpeg reads the encrypted HLS over HTTP
(the key from the key-delivery URL, with a JWT) and must decode exactly the clear copy's
frames, and must not without the token.  DASH CENC segments, fetched through the MPD,
decode in ffmpeg with ``-decryption_key`` and not without it.
"""

import base64
import json
import re
import time
import xml.etree.ElementTree as ET
from urllib.parse import urljoin

import jwt
import pytest
from aiohttp.test_utils import TestClient, TestServer
from cmaf_content import CHANNEL, store_channel
from protected_media import MPD, dash_bytes, framemd5, hls_bytes
from timeline_fixtures import store_program

from kubecast.endpoint.app import make_app
from kubecast.endpoint.protection import JwtRule, Protection
from kubecast.media import cenc
from kubecast.media.keys import KeyDeriver
from kubecast.media.mp4 import find_box
from kubecast.storage import Store

MASTER = bytes(range(100, 132))
JWT_KEY = b"the key the viewers' tokens are signed with"


def viewer_token(*, expires_in=300, key=JWT_KEY, **claims):
    return jwt.encode(
        {"iss": "sts", "aud": "kubecast", "exp": int(time.time()) + expires_in, **claims}, key, algorithm="HS256"
    )


async def make_client(tmp_path, tracks, *, scheme="cenc", rotation=2):
    store = Store(str(tmp_path / "store"))
    timeline = await store_channel(store, tracks, state="stopped")
    await store_program(store, timeline, channel=CHANNEL)
    protection = Protection(
        KeyDeriver(MASTER), rotation_segments=rotation, jwt=JwtRule(JWT_KEY, "sts", "kubecast"), cenc_scheme=scheme
    )
    client = TestClient(TestServer(make_app(store, protection=protection), host="127.0.0.1", port=0))
    await client.start_server()
    client.protection = protection
    return client


@pytest.fixture
async def client(tmp_path, tracks):
    client = await make_client(tmp_path, tracks)
    yield client
    await client.close()


@pytest.mark.parametrize(
    "playlist",
    [
        "/live/news/v240/index.m3u8",
        "/live/news/ts/v240/index.m3u8",
        "/evening-news/show.ism/ts/v240/index.m3u8",
        "/evening-news/v240/index.m3u8",
    ],
)
async def test_hls_aes128_plays_in_ffmpeg_with_the_key_url_and_a_token_only(client, clear_frames, playlist):
    text = await (await client.get(playlist)).text()
    keys = re.findall(r'#EXT-X-KEY:METHOD=AES-128,URI="([^"]+)",IV=0x([0-9a-f]{32})', text)
    assert len(keys) == 2, "rotation every 2 segments: segments 0-1 and 2-3 (4 in all)"
    url = str(client.make_url(playlist))
    headers = f"Authorization: Bearer {viewer_token()}\r\n"
    frames = await framemd5(url, "-headers", headers)
    assert frames == clear_frames["video"]
    assert await framemd5(url) != clear_frames["video"], "no token, no key: no picture"
    assert (
        await framemd5(url, "-headers", f"Authorization: Bearer {viewer_token(expires_in=-10)}\r\n")
        != clear_frames["video"]
    )


async def test_key_delivery_refuses_missing_wrong_expired_and_other_channel_tokens(client):
    url = "/live/news/keys/0.key"
    assert (await client.get(url)).status == 401
    for bad in (
        viewer_token(expires_in=-1),
        viewer_token(key=b"x" * 43),
        viewer_token(**{"kubecast.io/channel": "sport"}),
        "junk",
    ):
        response = await client.get(url, headers={"Authorization": f"Bearer {bad}"})
        assert response.status == 403 and "forbidden" in await response.text()
    good = await client.get(url, params={"token": viewer_token(**{"kubecast.io/channel": CHANNEL})})
    assert good.status == 200 and await good.read() == client.protection.keys.for_period(CHANNEL, 0).key
    assert good.headers["Cache-Control"] == "private, no-store"
    assert (
        await client.get("/evening-news/keys/1.key", headers={"Authorization": f"Bearer {viewer_token()}"})
    ).status == 200


async def test_nothing_is_served_in_the_clear(client, tracks):
    video = tracks[0]
    served = await (await client.get("/live/news/v240/1.m4s")).read()
    assert served != video.segments[1] and len(served) % 16 == 0 and len(served) > len(video.segments[1])
    assert await (await client.get("/live/news/v240/init.mp4")).read() == video.init, "the init segment holds no media"
    assert (await client.get("/evening-news/show.ism/manifest")).status == 403, "no Smooth without PlayReady"


@pytest.mark.parametrize("scheme", ["cenc", "cbcs"])
async def test_dash_cenc_and_cbcs_decrypt_in_ffmpeg_with_the_key_and_signal_clearkey(
    tmp_path, tracks, clear_frames, scheme
):
    client = await make_client(tmp_path, tracks, scheme=scheme)
    try:
        key = client.protection.cenc_key(CHANNEL)
        for mpd_path in ("/live/news/manifest.mpd", "/evening-news/show.mpd"):
            for representation, kind in (("v240", "video"), ("audio", "audio")):
                data, adaptation = await dash_bytes(client, mpd_path, representation)
                assert (
                    await framemd5("pipe:0", "-decryption_key", key.key.hex(), data=data, stream="0:0")
                    == clear_frames[kind]
                )
                assert await framemd5("pipe:0", data=data, stream="0:0") != clear_frames[kind]
                protections = {p.get("schemeIdUri"): p for p in adaptation.findall("mpd:ContentProtection", MPD)}
                common = protections["urn:mpeg:dash:mp4protection:2011"]
                assert (
                    common.get("value") == scheme and common.get("{urn:mpeg:cenc:2013}default_KID") == key.key_id_uuid
                )
                clearkey = protections["urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e"]
                laurl = clearkey.find("{https://dashif.org/CPS}Laurl").text
                assert laurl == str(client.make_url(mpd_path.rsplit("/", 1)[0] + "/keys/clearkey"))
                schm = find_box(data, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"])
                assert scheme.encode() in data[schm[0] : schm[1]]
        # the licence the player would get with that URL
        b64 = base64.urlsafe_b64encode(key.key_id).rstrip(b"=").decode()
        response = await client.post(
            "/live/news/keys/clearkey",
            data=json.dumps({"kids": [b64], "type": "temporary"}),
            headers={"Authorization": f"Bearer {viewer_token()}"},
        )
        licence = await response.json()
        assert licence["keys"][0]["kid"] == b64 and base64.urlsafe_b64decode(licence["keys"][0]["k"] + "==") == key.key
        refused = await client.post("/live/news/keys/clearkey", data=json.dumps({"kids": [b64]}))
        assert refused.status == 401
    finally:
        await client.close()


async def test_pssh_boxes_parse_in_pywidevine_with_the_system_and_key_ids(client):
    """The init segments' pssh boxes, read by a parser nobody here wrote: ClearKey's and the
    common system id, each naming the stream's key id."""
    import uuid

    from pywidevine.pssh import PSSH

    from kubecast.media.mp4 import iter_boxes

    key_id = uuid.UUID(bytes=client.protection.cenc_key(CHANNEL).key_id)
    for path in ("/live/news/cenc/v240/init.mp4", "/live/news/cenc/audio/init.mp4", "/evening-news/cenc/v240/init.mp4"):
        init = await (await client.get(path)).read()
        moov = find_box(init, [b"moov"])
        boxes = [init[start - 8 : end] for kind, start, end in iter_boxes(init, *moov) if kind == b"pssh"]
        parsed = [PSSH(data) for data in boxes]
        assert {str(p.system_id) for p in parsed} == {str(cenc.CLEARKEY_SYSTEM_ID), str(cenc.COMMON_SYSTEM_ID)}, path
        assert all(p.key_ids == [key_id] and p.version == 1 for p in parsed), path


async def test_signed_url_tokens_carry_to_the_key_urls_and_the_licence_url(tmp_path, tracks):
    """With signed URLs on, the key-delivery URLs take the same token: the relative key URI of
    a playlist fetched under /t/<token>/ resolves under it, the MPD's absolute licence URL keeps
    it, and without it (or with one for another channel) the keys are refused before any JWT."""
    from kubecast.endpoint.access import AccessPolicy, install
    from kubecast.media.tokens import sign

    store = Store(str(tmp_path / "store"))
    await store_channel(store, tracks, state="stopped")
    app = make_app(store, protection=Protection(KeyDeriver(MASTER), jwt=JwtRule(JWT_KEY, "sts", "kubecast")))
    install(app, AccessPolicy(signing_keys={"k1": b"signing key"}))
    async with TestClient(TestServer(app)) as client:
        token = sign(key=b"signing key", key_id="k1", scope="channel:news", expires=int(time.time()) + 300)
        other = sign(key=b"signing key", key_id="k1", scope="channel:sport", expires=int(time.time()) + 300)
        bearer = {"Authorization": f"Bearer {viewer_token()}"}
        playlist = await (await client.get(f"/t/{token}/live/news/v240/index.m3u8")).text()
        key_uri = re.search(r"#EXT-X-KEY:.*URI=\"([^\"]+)\"", playlist).group(1)
        key_url = urljoin(f"/t/{token}/live/news/v240/index.m3u8", key_uri)
        assert key_url == f"/t/{token}/live/news/keys/0.key"
        served = await client.get(key_url, headers=bearer)
        assert served.status == 200 and await served.read() == KeyDeriver(MASTER).for_period(CHANNEL, 0).key
        assert (await client.get("/live/news/keys/0.key", headers=bearer)).status == 401, "no signed-URL token"
        assert (await client.get(f"/t/{other}/live/news/keys/0.key", headers=bearer)).status == 403, (
            "another channel's token"
        )
        assert (await client.get(key_url)).status == 401, "a signed URL, but no JWT"
        root = ET.fromstring(await (await client.get(f"/t/{token}/live/news/manifest.mpd")).text())
        laurl = root.find(".//{https://dashif.org/CPS}Laurl").text
        assert laurl.endswith(f"/t/{token}/live/news/keys/clearkey")
        kid = base64.urlsafe_b64encode(Protection(KeyDeriver(MASTER)).cenc_key(CHANNEL).key_id).rstrip(b"=").decode()
        licence = await client.post(
            laurl.split(str(client.make_url("")).rstrip("/"))[-1], data=json.dumps({"kids": [kid]}), headers=bearer
        )
        assert licence.status == 200 and (await licence.json())["keys"][0]["kid"] == kid


@pytest.mark.parametrize("scheme", ["cbcs", "cenc"])
async def test_hls_sample_aes_from_the_cenc_segments_decrypts_in_ffmpeg_with_the_key_only(
    tmp_path, tracks, clear_frames, scheme
):
    """fMP4 HLS with Common Encryption, from the same encrypted segments as DASH:
    ``METHOD=SAMPLE-AES`` (cbcs) or ``SAMPLE-AES-CTR`` (cenc) with ClearKey's ``KEYFORMAT``."""
    client = await make_client(tmp_path, tracks, scheme=scheme)
    try:
        key = client.protection.cenc_key(CHANNEL)
        for base in ("/live/news", "/evening-news", "/evening-news/show.ism"):
            multivariant = await (await client.get(f"{base}/{scheme}/index.m3u8")).text()
            assert "v240/index.m3u8" in multivariant and 'URI="audio/index.m3u8' in multivariant
            for rendition, kind in (("v240", "video"), ("audio", "audio")):
                data, playlist = await hls_bytes(client, f"{base}/{scheme}/{rendition}/index.m3u8")
                method = "SAMPLE-AES" if scheme == "cbcs" else "SAMPLE-AES-CTR"
                lines = [line for line in playlist.splitlines() if line.startswith("#EXT-X-KEY")]
                b64 = base64.b64encode(key.key_id).decode()
                assert lines == [
                    f'#EXT-X-KEY:METHOD={method},URI="data:text/plain;base64,{b64}",KEYID=0x{key.key_id.hex()},'
                    'KEYFORMAT="org.w3.clearkey",KEYFORMATVERSIONS="1"'
                ], playlist
                assert playlist.index("#EXT-X-MAP") < playlist.index("#EXT-X-KEY")
                assert (
                    await framemd5("pipe:0", "-decryption_key", key.key.hex(), data=data, stream="0:0")
                    == clear_frames[kind]
                )
                assert await framemd5("pipe:0", data=data, stream="0:0") != clear_frames[kind]
                dash, _ = await dash_bytes(
                    client, f"{base}/manifest.mpd" if base == "/live/news" else "/evening-news/show.mpd", rendition
                )
                assert data == dash, "HLS and DASH serve the same encrypted CMAF"
        other = "cenc" if scheme == "cbcs" else "cbcs"
        assert (await client.get(f"/live/news/{other}/v240/index.m3u8")).status == 404, "only the configured scheme"
    finally:
        await client.close()

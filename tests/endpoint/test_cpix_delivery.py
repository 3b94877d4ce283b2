"""Commercial DRM through CPIX, against a key server run here (tests/cpix_keyserver.py).

The endpoint asks the key server for the channel's content key and its Widevine, PlayReady
and FairPlay signalling, and then: the init segments carry the key server's pssh boxes (parsed
by pywidevine and pyplayready, which nobody here wrote), the MPD signals each system, the HLS
playlists carry a ``KEYFORMAT`` line per system, and ffmpeg decrypts DASH and HLS with the key
the key server made (and not without it).  The key server is asked once, with its credentials;
when it fails, the requests that need it get a 503 and the endpoint keeps serving.
"""

from __future__ import annotations

import base64
import logging
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp.test_utils import TestClient, TestServer
from cmaf_content import CHANNEL, CmafTrack, store_channel
from cpix_keyserver import PLAYREADY, PLAYREADY_LA_URL, WIDEVINE, KeyServer
from protected_media import MPD, dash_bytes, framemd5, hls_bytes
from pyplayready.system.pssh import PSSH as PlayReadyPssh
from pywidevine.pssh import PSSH as WidevinePssh
from timeline_fixtures import store_program

from kubecast.api.components import ContentProtectionConfig
from kubecast.endpoint.app import make_app
from kubecast.endpoint.protection import Protection
from kubecast.media.cenc import COMMON_SYSTEM_ID
from kubecast.media.mp4 import find_box, iter_boxes
from kubecast.storage import Store

MASTER = "00112233445566778899aabbccddeeff"
CREDENTIALS = "Bearer vendor-api-key"
CENC = "{urn:mpeg:cenc:2013}"


@dataclass
class Setup:
    client: TestClient
    keyserver: KeyServer
    protection: Protection

    def key(self) -> tuple[bytes, bytes | None]:
        """(key id, content key as the key server made it, once it was asked)."""
        key_id = self.protection.cenc_key(CHANNEL).key_id
        return key_id, self.keyserver.keys.get(str(uuid.UUID(bytes=key_id)))


async def start(
    tmp_path, tracks: list[CmafTrack], *, scheme: str, systems: list[str], authorization: str = CREDENTIALS
) -> tuple[Setup, TestServer]:
    keyserver = KeyServer(authorization=CREDENTIALS)
    server = TestServer(keyserver.app(), host="127.0.0.1", port=0)
    await server.start_server()
    store = Store(str(tmp_path / "store"))
    timeline = await store_channel(store, tracks, state="stopped")
    await store_program(store, timeline, channel=CHANNEL)
    config = ContentProtectionConfig.model_validate(
        {
            "masterKeyFile": "/keys/master",
            "cencScheme": scheme,
            "cpix": {
                "url": str(server.make_url("/cpix")),
                "drmSystems": systems,
                "credentialsFile": "/keys/cpix-credentials",
            },
        }
    )
    protection = Protection.from_config(config, master_key=MASTER, jwt_key=None, cpix_authorization=authorization)
    client = TestClient(TestServer(make_app(store, protection=protection), host="127.0.0.1", port=0))
    await client.start_server()
    return Setup(client, keyserver, protection), server


@pytest.fixture(params=["cbcs", "cenc"])
async def setup(request, tmp_path, tracks) -> AsyncIterator[Setup]:
    systems = ["Widevine", "PlayReady", "FairPlay"] if request.param == "cbcs" else ["Widevine", "PlayReady"]
    found, server = await start(tmp_path, tracks, scheme=request.param, systems=systems)
    yield found
    await found.client.close()
    await server.close()


def pssh_boxes(init: bytes) -> list[bytes]:
    moov = find_box(init, [b"moov"])
    assert moov is not None
    return [init[start - 8 : end] for kind, start, end in iter_boxes(init, *moov) if kind == b"pssh"]


async def test_init_segments_carry_the_key_servers_pssh_boxes_which_pywidevine_and_pyplayready_read(setup):
    key_id, _key = setup.key()
    kid = uuid.UUID(bytes=key_id)
    scheme = setup.protection.cenc_scheme
    for path in (
        f"/live/news/{scheme}/v240/init.mp4",
        f"/live/news/{scheme}/audio/init.mp4",
        f"/evening-news/{scheme}/v240/init.mp4",
    ):
        boxes = {uuid.UUID(bytes=box[12:28]): box for box in pssh_boxes(await (await setup.client.get(path)).read())}
        assert set(boxes) == {WIDEVINE, PLAYREADY, COMMON_SYSTEM_ID}, "no ClearKey pssh: the keys are the vendor's"
        widevine = WidevinePssh(boxes[WIDEVINE])
        assert widevine.system_id == WIDEVINE and widevine.key_ids == [kid]
        (header,) = PlayReadyPssh(boxes[PLAYREADY]).wrm_headers
        key_ids, la_url, _lui, _ds = header.read_attributes()
        assert [uuid.UUID(bytes_le=base64.b64decode(k.value)) for k in key_ids] == [kid] and la_url == PLAYREADY_LA_URL
        assert key_ids[0].alg_id == ("AESCBC" if scheme == "cbcs" else "AESCTR")
        assert WidevinePssh(boxes[COMMON_SYSTEM_ID]).key_ids == [kid]
    assert len(setup.keyserver.requests) == 1, "one CPIX exchange serves every later request"
    request = setup.keyserver.requests[0]
    assert request.get("contentId") == CHANNEL
    (asked,) = request.iter("{urn:dashif:org:cpix}ContentKey")
    assert asked.get("kid") == str(kid) and asked.get("commonEncryptionScheme") == scheme


async def test_mpd_signals_each_drm_system_and_no_clearkey(setup):
    key_id, _key = setup.key()
    for mpd_path in ("/live/news/manifest.mpd", "/evening-news/show.mpd"):
        root = ET.fromstring(await (await setup.client.get(mpd_path)).text())
        for adaptation in root.iter("{urn:mpeg:dash:schema:mpd:2011}AdaptationSet"):
            elements = {p.get("schemeIdUri"): p for p in adaptation.findall("mpd:ContentProtection", MPD)}
            assert set(elements) == {
                "urn:mpeg:dash:mp4protection:2011",
                f"urn:uuid:{WIDEVINE}",
                f"urn:uuid:{PLAYREADY}",
            }
            assert all(e.get(f"{CENC}default_KID") == str(uuid.UUID(bytes=key_id)) for e in elements.values())
            widevine = base64.b64decode(elements[f"urn:uuid:{WIDEVINE}"].findtext(f"{CENC}pssh"))
            assert WidevinePssh(widevine).key_ids == [uuid.UUID(bytes=key_id)]
            playready = elements[f"urn:uuid:{PLAYREADY}"]
            pro = base64.b64decode(playready.findtext("{urn:microsoft:playready}pro"))
            assert PlayReadyPssh(pro).wrm_headers[0].read_attributes()[1] == PLAYREADY_LA_URL
            assert playready.findtext(f"{CENC}pssh"), "the key server's ContentProtectionData, as given"
    licence = await setup.client.post("/live/news/keys/clearkey", data=b'{"kids": []}')
    assert licence.status == 404, "no ClearKey licences for a vendor's keys"


async def test_dash_and_hls_decrypt_in_ffmpeg_with_the_key_servers_key_only(setup, clear_frames):
    scheme = setup.protection.cenc_scheme
    assert (await setup.client.get(f"/live/news/{scheme}/index.m3u8")).status == 200
    assert setup.keyserver.requests == [], "the multivariant playlist names no key"
    first = await setup.client.get("/live/news/manifest.mpd")
    key_id, key = setup.key()
    assert first.status == 200 and key is not None
    assert key != setup.protection.cenc_key(CHANNEL).key, "the key server's key, not the derived one"
    for rendition, kind in (("v240", "video"), ("audio", "audio")):
        dash, _adaptation = await dash_bytes(setup.client, "/live/news/manifest.mpd", rendition)
        hls, playlist = await hls_bytes(setup.client, f"/evening-news/{scheme}/{rendition}/index.m3u8")
        for data in (dash, hls):
            assert await framemd5("pipe:0", "-decryption_key", key.hex(), data=data, stream="0:0") == clear_frames[kind]
            derived = setup.protection.cenc_key(CHANNEL).key.hex()
            assert await framemd5("pipe:0", "-decryption_key", derived, data=data, stream="0:0") != clear_frames[kind]
        formats = re.findall(
            r'#EXT-X-KEY:METHOD=([A-Z-]+),URI="([^"]+)"(?:,KEYID=0x([0-9a-f]+))?,KEYFORMAT="([^"]+)"', playlist
        )
        method = "SAMPLE-AES" if scheme == "cbcs" else "SAMPLE-AES-CTR"
        assert {(m, f) for m, _u, _k, f in formats} >= {
            (method, f"urn:uuid:{WIDEVINE}"),
            (method, "com.microsoft.playready"),
        }
        uris = {f: (u, k) for _m, u, k, f in formats}
        widevine_uri, widevine_kid = uris[f"urn:uuid:{WIDEVINE}"]
        assert widevine_kid == key_id.hex()
        assert WidevinePssh(base64.b64decode(widevine_uri.split(",", 1)[1])).key_ids == [uuid.UUID(bytes=key_id)]
        playready_uri = uris["com.microsoft.playready"][0]
        assert playready_uri.startswith("data:text/plain;charset=UTF-16;base64,")
        assert (
            PlayReadyPssh(base64.b64decode(playready_uri.split(",", 1)[1])).wrm_headers[0].read_attributes()[1]
            == PLAYREADY_LA_URL
        )
        if scheme == "cbcs":
            assert uris["com.apple.streamingkeydelivery"] == (f"skd://fairplay.keyserver.test/{key_id.hex()}", "")
        else:
            assert "com.apple.streamingkeydelivery" not in uris
    assert len(setup.keyserver.requests) == 1 and setup.keyserver.refused == 0


async def test_a_failing_or_refusing_key_server_is_a_503_and_the_endpoint_keeps_serving(tmp_path, tracks, caplog):
    caplog.set_level(logging.INFO)
    found, server = await start(tmp_path, tracks, scheme="cbcs", systems=["Widevine"], authorization="Bearer wrong")
    try:
        refused = await found.client.get("/live/news/cbcs/v240/init.mp4")
        assert refused.status == 503 and refused.headers["Retry-After"] == "5"
        assert found.keyserver.refused == 1
        assert (await found.client.get("/live/news/manifest.mpd")).status == 503
        assert found.keyserver.refused == 1, "not asked again at once"
        assert (await found.client.get("/live/news/v240/index.m3u8")).status == 200, "AES-128 HLS needs no key server"
        assert (await found.client.get("/healthz")).status == 200
        assert "HTTP 401" in caplog.text and "wrong" not in caplog.text, "the reason, never the credentials"
    finally:
        await found.client.close()
        await server.close()
    caplog.clear()
    found, server = await start(tmp_path / "2", tracks, scheme="cbcs", systems=["Widevine"])
    try:
        assert (await found.client.get("/live/news/cbcs/v240/init.mp4")).status == 200
        key_id, key = found.key()
        assert key is not None and key.hex() not in caplog.text and base64.b64encode(key).decode() not in caplog.text, (
            "keys are never logged"
        )
        assert key_id.hex() in caplog.text
    finally:
        await found.client.close()
        await server.close()

"""The endpoint over HTTP (aiohttp's test server), against a store the test fills."""

import pytest
from aiohttp.test_utils import TestClient, TestServer
from timeline_fixtures import ladder_timeline

from kubecast.endpoint.app import make_app
from kubecast.media.mp4 import Sample, init_segment_video, media_segment
from kubecast.storage import Store, layout


@pytest.fixture
async def client(tmp_path):
    store = Store(str(tmp_path / "store"))
    timeline = ladder_timeline()
    await store.put(layout.timeline_key("news"), timeline.to_json())
    await store.put(
        layout.init_key("news", "A", "v720", "init-aa.mp4"),
        init_segment_video(width=1280, height=720, timescale=90000, avcc=bytes([1, 0x64, 0, 0x1F, 0xFF, 0xE0, 0])),
    )
    segment = media_segment(
        sequence_number=12, base_decode_time=12 * 180000, samples=[Sample(180000, 100)], data=b"s" * 100
    )
    await store.put(layout.segment_key("news", "A", "v720", 12), segment)
    (tmp_path / "secret.txt").write_text("outside the store")
    async with TestClient(TestServer(make_app(store))) as client:
        client.segment = segment
        yield client


async def test_manifests_and_headers(client):
    response = await client.get("/live/news/index.m3u8")
    assert response.status == 200 and response.content_type == "application/vnd.apple.mpegurl"
    assert (
        response.headers["Access-Control-Allow-Origin"] == "*"
        and response.headers["Cache-Control"] == "public, max-age=1"
    )
    response = await client.get("/live/news/manifest.mpd")
    assert response.content_type == "application/dash+xml" and "UTCTiming" in await response.text()
    assert (await client.get("/live/news/v720/index.m3u8")).status == 200
    assert (await client.get("/time")).status == 200


async def test_segments_by_number_and_time_with_ranges(client):
    for path in ("/live/news/v720/12.m4s", f"/live/news/v720/t{12 * 180000}.m4s"):
        response = await client.get(path)
        assert response.status == 200 and await response.read() == client.segment
        assert (
            response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            and response.content_type == "video/mp4"
        )
    response = await client.get("/live/news/v720/12.m4s", headers={"Range": "bytes=0-7"})
    assert response.status == 206 and response.headers["Content-Range"] == f"bytes 0-7/{len(client.segment)}"
    assert await response.read() == client.segment[:8]
    assert (await client.get("/live/news/v720/12.m4s", headers={"Range": "bytes=999999-"})).status == 416
    etag = response.headers["ETag"]
    assert (await client.get("/live/news/v720/12.m4s", headers={"If-None-Match": etag})).status == 304
    assert (await client.get("/live/news/v720/init.mp4")).status == 200


@pytest.mark.parametrize(
    "path",
    [
        "/live/news/v720/13.m4s",  # listed in the timeline, not stored: 404, not 500
        "/live/news/v720/99.m4s",  # not in the timeline
        "/live/news/v999/index.m3u8",
        "/live/other/index.m3u8",
        "/live/News/index.m3u8",
        "/live/news/v720/../../../secret.txt",
        "/live/news/%2e%2e/%2e%2e/secret.txt",
        "/live/news/v720/..%2f..%2fsecret.txt",
        "/live/news/v720/%2e%2e%5c%2e%2e%5csecret.txt",
        "/static/../../secret.txt",
        "/static/preview.html",
        "/preview/..%2f/",
        "/live/news/v720/12.m4s.bak",
        "/nothing",
    ],
)
async def test_unknown_and_traversal_paths_are_404(client, path):
    response = await client.get(path)
    assert response.status == 404, path
    assert "outside the store" not in await response.text()


async def test_preview_status_and_cors_preflight(client):
    page = await (await client.get("/preview/news/")).text()
    assert "/static/vendor/hls.min.js" in page and 'data-channel="news"' in page
    status = await (await client.get("/status/news.json")).json()
    assert status["state"] == "live" and {t["id"] for t in status["tracks"]} == {"v720", "v360", "audio"}
    assert (await client.get("/static/vendor/dash.all.min.js")).status == 200
    assert (await client.get("/static/vendor/shaka-player.compiled.js")).status == 200
    assert "news" in await (await client.get("/")).text()
    preflight = await client.options(
        "/live/news/index.m3u8",
        headers={
            "Origin": "http://x",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "Range",
        },
    )
    assert preflight.status == 204 and "Range" in preflight.headers["Access-Control-Allow-Headers"]
    assert (await client.get("/preview/news/thumbnail.jpg")).status == 404  # no thumbnail yet
    assert "kubecast_endpoint_requests_total" in await (await client.get("/metrics")).text()

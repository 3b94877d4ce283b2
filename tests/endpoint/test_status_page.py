"""The status page and /status/<channel>.json list programs: state, recorded range, playback URLs."""

import pytest
from aiohttp.test_utils import TestClient, TestServer
from timeline_fixtures import ladder_timeline

from kubecast.endpoint.app import make_app
from kubecast.storage import ProgramRecord, Store, layout


@pytest.fixture
async def client(tmp_path):
    store = Store(str(tmp_path / "store"))
    await store.put(layout.timeline_key("news"), ladder_timeline(numbers=range(40, 46)).to_json())
    for name, locator, state in (("evening", "evening-news", "Stopped"), ("late", "late-news", "Running")):
        record = ProgramRecord(
            name=name, channel="news", locator=locator, manifest_name="show", archive_window_seconds=3600, state=state
        )
        await store.put(layout.locator_key(locator), record.to_json())
        await store.put(layout.program_key("news", name), record.to_json())
    await store.put(
        layout.program_timeline_key("news", "evening"), ladder_timeline(state="stopped").to_json()
    )  # segments 10-15
    async with TestClient(TestServer(make_app(store))) as client:
        yield client


async def test_the_status_page_lists_programs_with_state_range_and_urls(client):
    page = await (await client.get("/")).text()
    evening = page[page.index("<td>evening</td>") :].split("</tr>")[0]
    assert "class='state stopped'>Stopped<" in evening
    assert "2026-01-01T12:00:20Z – 2026-01-01T12:00:32Z" in evening and "12s, 6 segments" in evening
    host = f"http://{client.host}:{client.port}"
    for path in (
        "/evening-news/show.m3u8",
        "/evening-news/show.mpd",
        "/evening-news/show.ism/manifest(format=m3u8-aapl)",
        "/evening-news/show.ism/manifest",
    ):
        assert f"href='{host}{path}'" in evening, path
    late = page[page.index("<td>late</td>") :].split("</tr>")[0]
    assert "class='state waiting'>Waiting<" in late and f"href='{host}/late-news/show.m3u8'" in late


async def test_the_channel_status_lists_its_programs(client):
    status = await (await client.get("/status/news.json")).json()
    programs = {p["name"]: p for p in status["programs"]}
    assert programs["evening"]["recording"] == {
        "state": "Stopped",
        "start": "2026-01-01T12:00:20Z",
        "end": "2026-01-01T12:00:32Z",
        "durationSeconds": 12,
        "segments": 6,
    }
    assert programs["late"]["recording"]["state"] == "Waiting" and programs["late"]["state"] == "Running"
    assert programs["evening"]["urls"]["dash-csf"].endswith("/evening-news/show.ism/manifest(format=mpd-time-csf)")
    assert len(programs["evening"]["urls"]) == 8

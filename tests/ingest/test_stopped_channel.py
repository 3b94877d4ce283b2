"""A stopped channel (spec.state Stopped) refuses its publishers over every protocol with a
reason the publisher sees, a log line and a metric, and cuts off the one that was live; the
other channels of the same ingest carry on.  The ingest learns the state from the file
``kubecast up`` rewrites."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest
from fake_encoder import FakeEncoder
from helpers import make_contribution_flv
from test_rtmp_server import publish as publish_flv
from test_rtmp_server import publish_saying
from test_srt import publish as publish_srt

from kubecast.api.components import ChannelStates
from kubecast.ingest import metrics
from kubecast.ingest.config import ChannelRoute, IngestConfig
from kubecast.ingest.mpegts.srt import SrtServer
from kubecast.ingest.publication import Publications
from kubecast.ingest.push.http import HttpIngest
from kubecast.ingest.rtmp.server import IngestServer
from kubecast.ingest.states import follow_states, read_states


def stopped_count() -> float:
    return metrics.REJECTED.labels("stopped")._value.get()


def flv(path: Path, seconds: int) -> bytes:
    return make_contribution_flv(path, seconds=seconds, size="160x90")


@pytest.fixture
async def rtmp():
    fake = FakeEncoder()
    address = await fake.start()
    publications = Publications()
    routes = {name: ChannelRoute(name, "k3y", (address,)) for name in ("news", "other")}
    server = IngestServer(IngestConfig(channels=routes), publications)
    host, port = await server.start("127.0.0.1", 0)
    yield fake, publications, f"rtmp://{host}:{port}/live"
    await server.stop()
    await fake.stop()


async def test_rtmp_publisher_of_a_stopped_channel_is_refused_with_the_reason(rtmp, tmp_path, caplog):
    fake, publications, base = rtmp
    publications.set_stopped(frozenset({"news"}))
    before = stopped_count()
    code, errors = await publish_saying(flv(tmp_path / "in.flv", 1), f"{base}/news/k3y", realtime=False)
    assert code != 0
    assert "channel news is stopped" in errors, errors  # ffmpeg prints the NetStream.Publish error's description
    assert not fake.contributions, "nothing reached the encoder"
    assert stopped_count() == before + 1
    assert any("channel news is stopped" in r.getMessage() for r in caplog.records)
    assert await publish_flv(flv(tmp_path / "other.flv", 1), f"{base}/other/k3y") == 0, "the other channel publishes"
    publications.set_stopped(frozenset())
    assert await publish_flv(flv(tmp_path / "again.flv", 1), f"{base}/news/k3y") == 0, "started again: it publishes"


async def test_stopping_a_channel_cuts_off_its_live_rtmp_publisher(rtmp, tmp_path, caplog):
    """ffmpeg reads no server status while it publishes: it sees its connection closed, and the
    ingest's log line says why."""
    fake, publications, base = rtmp
    data = flv(tmp_path / "long.flv", 8)
    started = time.monotonic()
    publisher = asyncio.ensure_future(publish_saying(data, f"{base}/news/k3y", realtime=True))
    await fake.wait(lambda: bool(fake.contributions) and len(fake.frames(0)) > 30, timeout=15)
    publications.set_stopped(frozenset({"news"}))
    code, errors = await publisher
    assert code != 0, errors
    assert any("ending the contribution" in m and "channel news is stopped" in m for m in caplog.messages)
    assert time.monotonic() - started < 6, "cut off at once, not at the end of its 8 s"


@pytest.fixture
async def push():
    fake = FakeEncoder()
    address = await fake.start()
    publications = Publications()
    routes = {"cam": ChannelRoute("cam", None, (address,), protocols=frozenset({"FragmentedMP4", "CMAF"}))}
    server = HttpIngest(IngestConfig(channels=routes, idle_timeout=1.5), publications)
    port = await server.start("127.0.0.1", 0)
    yield fake, publications, f"http://127.0.0.1:{port}"
    await server.stop()
    await fake.stop()


async def test_http_push_to_a_stopped_channel_is_a_403_with_the_reason(push):
    fake, publications, base = push
    publications.set_stopped(frozenset({"cam"}))
    before = stopped_count()
    async with aiohttp.ClientSession() as session:
        for url in (f"{base}/ingest/cam.isml/Streams(video)", f"{base}/ingest/cam.cmaf/video/init.mp4"):
            async with session.post(url, data=b"\0" * 64) as response:
                assert response.status == 403
                assert "channel cam is stopped" in await response.text()
    assert stopped_count() == before + 2 and not fake.contributions


@pytest.fixture
async def srt():
    fake = FakeEncoder()
    address = await fake.start()
    publications = Publications()
    server = SrtServer(
        {"cam": ChannelRoute("cam", None, (address,), protocols=frozenset({"SRT"}))}, publications, idle_timeout=2
    )
    port = server.start("127.0.0.1", 0)
    yield fake, publications, port
    await server.stop()
    await fake.stop()


async def test_srt_caller_of_a_stopped_channel_is_rejected_in_the_handshake(srt, caplog):
    fake, publications, port = srt
    publications.set_stopped(frozenset({"cam"}))
    before = stopped_count()
    code, _ = await publish_srt(port, "streamid=cam&connect_timeout=2000", seconds=1)
    assert code != 0 and not fake.contributions
    assert stopped_count() == before + 1
    assert any("channel cam is stopped" in r.getMessage() for r in caplog.records)


def test_the_states_file_names_the_stopped_channels(tmp_path):
    path = tmp_path / "channel-states.json"
    path.write_text(ChannelStates(stopped=["news"]).to_json())
    assert read_states(path) == frozenset({"news"})
    path.write_text("{not json")
    with pytest.raises(ValueError, match="channel-states.json"):
        read_states(path)


async def test_the_ingest_follows_the_states_file_and_keeps_the_last_good_one(tmp_path, caplog):
    path = tmp_path / "channel-states.json"
    path.write_text(ChannelStates(stopped=["news"]).to_json())
    publications = Publications()
    follower = asyncio.create_task(follow_states(path, publications))

    async def until(predicate) -> None:
        async with asyncio.timeout(5):
            while not predicate():
                await asyncio.sleep(0.05)

    try:
        await until(lambda: publications.stopped("news"))
        path.write_text(ChannelStates(stopped=["other"]).to_json())
        await until(lambda: publications.stopped("other") and not publications.stopped("news"))
        path.write_text("{broken")
        await until(lambda: any("channel states unchanged" in r.getMessage() for r in caplog.records))
        assert publications.stopped("other"), "a damaged file changes nothing"
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)


async def test_a_publisher_right_after_the_start_is_taken_before_the_next_poll(tmp_path):
    """``kubecast up`` says "channel news: Running" once it has rewritten the states file; a
    publisher that connects at once (before the ingest's next poll of the file, here never) is
    taken: a refusal for a stopped channel looks at the file again first."""
    path = tmp_path / "channel-states.json"
    path.write_text(ChannelStates(stopped=["news"]).to_json())
    fake = FakeEncoder()
    address = await fake.start()
    publications = Publications(recheck_stopped=lambda: read_states(path))
    publications.set_stopped(read_states(path))
    server = IngestServer(IngestConfig(channels={"news": ChannelRoute("news", "k3y", (address,))}), publications)
    host, port = await server.start("127.0.0.1", 0)
    try:
        code, errors = await publish_saying(flv(tmp_path / "in.flv", 1), f"rtmp://{host}:{port}/live/news/k3y")
        assert code != 0 and "channel news is stopped" in errors, "stopped: still refused after the look"
        path.write_text(ChannelStates(stopped=[]).to_json())
        assert await publish_flv(flv(tmp_path / "in.flv", 1), f"rtmp://{host}:{port}/live/news/k3y") == 0
        assert fake.contributions and not publications.stopped("news")
        path.write_text("{broken")
        publications.set_stopped(frozenset({"news"}))
        code, errors = await publish_saying(flv(tmp_path / "in.flv", 1), f"rtmp://{host}:{port}/live/news/k3y")
        assert code != 0 and "channel news is stopped" in errors, "an unreadable file: the last good answer stands"
    finally:
        await server.stop()
        await fake.stop()

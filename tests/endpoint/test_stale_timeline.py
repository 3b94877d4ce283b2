"""A hung packager: the endpoint carries a stale live timeline on with the encoders' progress,
through the packager's own merge, and replicas that do so agree."""

from datetime import datetime, timedelta, timezone

import pytest
from aiohttp.test_utils import TestClient, TestServer

from kubecast.endpoint import metrics
from kubecast.endpoint.app import make_app
from kubecast.endpoint.live import TIMELINES
from kubecast.endpoint.timelines import stale_after_ms
from kubecast.media.merge import merge
from kubecast.media.progress import EncoderProgress, IngestInfo
from kubecast.media.timeline import Timeline
from kubecast.media.tracks import SegmentRecord, TrackInfo
from kubecast.storage import Store, layout

D = 180000  # 2 s at 90 kHz
VIDEO = TrackInfo(
    id="v", kind="video", codecs="avc1.64001f", bandwidth=1_000_000, timescale=90000, init="init-a.mp4", width=640,
    height=360, frame_rate="30",
)  # fmt: skip


def progress(instance: str, numbers: range, updated: datetime) -> EncoderProgress:
    return EncoderProgress(
        channel="news",
        instance=instance,
        session="s",
        state="live",
        updated=updated,
        availability_start_time=updated - timedelta(seconds=2 * numbers[-1] + 2),
        segment_duration_ms=2000,
        tracks=[VIDEO],
        segments={"v": [SegmentRecord(n, n * D, D, 1000 + n) for n in numbers]},
        ingest=IngestInfo(connected=True),
    )


def packager_timeline(numbers: range, written: datetime) -> Timeline:
    """What the packager wrote at ``written`` when both encoders had ``numbers``."""
    both = {i: progress(i, numbers, written) for i in ("A", "B")}
    timeline = merge(None, dict(both), now=written, channel="news", segment_duration_ms=2000, window_ms=60_000).timeline
    timeline.generation = 7
    return timeline


async def store_with(tmp_path, timeline: Timeline, a: range, b: range, now: datetime) -> Store:
    store = Store(str(tmp_path / "store"))
    await store.put(layout.timeline_key("news"), timeline.to_json())
    for instance, numbers in (("A", a), ("B", b)):
        await store.put(layout.progress_key("news", instance), progress(instance, numbers, now).to_json())
        for n in numbers:
            await store.put(layout.segment_key("news", instance, "v", n), f"{instance}{n}".encode())
    return store


def listed(playlist: str) -> list[int]:
    return [int(line.removesuffix(".m4s")) for line in playlist.splitlines() if line.endswith(".m4s")]


def media_sequence(playlist: str) -> int:
    return int(next(line for line in playlist.splitlines() if line.startswith("#EXT-X-MEDIA-SEQUENCE:")).split(":")[1])


async def test_a_stale_timeline_is_carried_on_with_the_encoders_progress(tmp_path):
    now = datetime.now(timezone.utc)
    frozen_at = now - timedelta(milliseconds=stale_after_ms(2000) + 2000)
    store = await store_with(tmp_path, packager_timeline(range(10, 16), frozen_at), range(10, 20), range(10, 20), now)
    merges = metrics.TIMELINE_MERGES._value.get()
    async with TestClient(TestServer(make_app(store))) as client:
        playlist = await (await client.get("/live/news/v/index.m3u8")).text()
        assert listed(playlist) == list(range(10, 20)), "16..19 are stored and listed by the encoders"
        assert await (await client.get("/live/news/v/19.m4s")).read() == b"A19", "the packager's source, A"
    assert metrics.TIMELINE_MERGES._value.get() > merges
    assert not (tmp_path / "store" / "channels" / "news" / "timeline.json").read_bytes().count(b"[19,"), "read-only"


async def test_a_fresh_timeline_is_served_as_the_packager_wrote_it(tmp_path):
    now = datetime.now(timezone.utc)
    store = await store_with(tmp_path, packager_timeline(range(10, 16), now), range(10, 20), range(10, 20), now)
    async with TestClient(TestServer(make_app(store))) as client:
        assert listed(await (await client.get("/live/news/v/index.m3u8")).text()) == list(range(10, 16))


@pytest.mark.parametrize("quick", ["A", "B"])
async def test_replicas_reading_at_different_moments_agree(tmp_path, quick):
    """Replica 1 reads while one encoder has written segment 16 and the other not yet;
    replica 2 after both have.  Both list A's copy under 16 (or none yet): same bytes."""
    now = datetime.now(timezone.utc)
    stale = packager_timeline(range(10, 16), now - timedelta(seconds=10))
    ahead, behind = (range(10, 17), range(10, 16)) if quick == "A" else (range(10, 16), range(10, 17))
    first = await store_with(tmp_path / "1", stale, ahead, behind, now)
    second = await store_with(tmp_path / "2", stale, range(10, 17), range(10, 17), now)
    async with TestClient(TestServer(make_app(first))) as one, TestClient(TestServer(make_app(second))) as two:
        early = await (await one.get("/live/news/v/index.m3u8")).text()
        late = await (await two.get("/live/news/v/index.m3u8")).text()
        assert listed(early) == list(range(10, 17 if quick == "A" else 16))
        assert listed(late) == list(range(10, 17)) and media_sequence(late) >= media_sequence(early)
        assert await (await two.get("/live/news/v/16.m4s")).read() == b"A16"
        if quick == "A":
            assert await (await one.get("/live/news/v/16.m4s")).read() == b"A16"


async def test_the_hand_back_to_the_packager_never_steps_back(tmp_path):
    """The packager wakes up and writes a timeline from progress it read a moment before the
    endpoint's last merge: the replica keeps what it served."""
    now = datetime.now(timezone.utc)
    store = await store_with(
        tmp_path, packager_timeline(range(10, 16), now - timedelta(seconds=10)), range(10, 20), range(10, 20), now
    )
    app = make_app(store)
    app[TIMELINES].ttl = 0  # every request reads the store
    async with TestClient(TestServer(app)) as client:
        assert listed(await (await client.get("/live/news/v/index.m3u8")).text())[-1] == 19
        await store.put(layout.timeline_key("news"), packager_timeline(range(10, 18), now).to_json())
        assert listed(await (await client.get("/live/news/v/index.m3u8")).text())[-1] == 19


async def test_a_segment_another_replica_listed_a_moment_ago_is_served_not_404(tmp_path):
    """The playlist came from a replica that read the timeline after this one cached it."""
    now = datetime.now(timezone.utc)
    store = await store_with(tmp_path, packager_timeline(range(10, 16), now), range(10, 18), range(10, 18), now)
    async with TestClient(TestServer(make_app(store))) as client:
        assert listed(await (await client.get("/live/news/v/index.m3u8")).text())[-1] == 15  # cached for ttl
        await store.put(layout.timeline_key("news"), packager_timeline(range(10, 17), now).to_json())
        assert await (await client.get("/live/news/v/16.m4s")).read() == b"A16"
        assert (await client.get("/live/news/v/99.m4s")).status == 404

"""A hung packager: the endpoint carries a stale live timeline on with the encoders' progress,
through the packager's own merge, and replicas that do so agree; a running program's window
goes on with it, through the packager's own ``record``."""

import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from aiohttp.test_utils import TestClient, TestServer

from kubecast.endpoint import metrics, timelines
from kubecast.endpoint.app import make_app
from kubecast.endpoint.live import TIMELINES
from kubecast.endpoint.timelines import stale_after_ms
from kubecast.media.merge import merge
from kubecast.media.progress import EncoderProgress, IngestInfo
from kubecast.media.timeline import Timeline
from kubecast.media.tracks import SegmentRecord, TrackInfo
from kubecast.storage import ProgramRecord, Store, layout
from kubecast.storage.programs import record

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


async def store_program(store: Store, channel: Timeline, now: datetime, state: str = "Running") -> Timeline:
    """A program the packager began recording (with its own ``record``) and wrote at ``now``."""
    program = ProgramRecord(name="show", channel="news", locator="show", archive_window_seconds=60, state=state)
    await store.put(layout.locator_key("show"), program.to_json())
    await store.put(layout.program_key("news", "show"), program.to_json())
    recorded, _ = record(None, program.model_copy(update={"state": "Running"}), channel, now)
    assert recorded is not None
    await store.put(layout.program_timeline_key("news", "show"), recorded.to_json())
    return recorded


async def test_a_programs_window_is_carried_on_while_the_packager_is_away(tmp_path, monkeypatch):
    """The packager recorded the program up to 15 and froze; the encoders have stored up to 19.
    The program's playlist goes on to 19, as the live one does, and only in memory."""
    now = datetime.now(timezone.utc)
    frozen_at = now - timedelta(seconds=10)
    channel = packager_timeline(range(10, 16), frozen_at)
    store = await store_with(tmp_path, channel, range(10, 20), range(10, 20), now)
    written = await store_program(store, packager_timeline(range(10, 14), frozen_at), frozen_at)
    written, _ = record(written, ProgramRecord.from_json(await store.get(layout.locator_key("show"))), channel, now)
    await store.put(layout.program_timeline_key("news", "show"), written.to_json())
    app = make_app(store)
    app[TIMELINES].ttl = 0
    async with TestClient(TestServer(app)) as client:
        playlist = await (await client.get("/show/v/index.m3u8")).text()
        assert listed(playlist) == list(range(13, 20)), "the window began at 13 and grows to what the encoders hold"
        assert "#EXT-X-ENDLIST" not in playlist
        assert await (await client.get("/show/v/19.m4s")).read() == b"A19"
        stored = Timeline.from_json(await store.get(layout.program_timeline_key("news", "show")))
        assert stored.tracks[0].segments[-1].number == 15, "read-only: the recording is the packager's to write"
        # The packager wakes up and writes the channel and the program from what it read a moment
        # before the endpoint's last merge: the program's playlist does not step back.
        await store.put(layout.timeline_key("news"), packager_timeline(range(10, 18), now).to_json())
        behind, _ = record(stored, ProgramRecord.from_json(await store.get(layout.locator_key("show"))),
                           packager_timeline(range(10, 18), now), now)  # fmt: skip
        await store.put(layout.program_timeline_key("news", "show"), behind.to_json())
        assert listed(await (await client.get("/show/v/index.m3u8")).text())[-1] == 19
        # Past the grace in which the replica still merges the channel: the recording is still
        # behind what was served, so the window is still carried on (over the packager's channel).
        real = time.monotonic
        monkeypatch.setattr(timelines, "time", SimpleNamespace(monotonic=lambda: real() + 60))
        assert listed(await (await client.get("/show/v/index.m3u8")).text())[-1] == 19
        caught_up, _ = record(behind, ProgramRecord.from_json(await store.get(layout.locator_key("show"))),
                              packager_timeline(range(10, 21), now), now)  # fmt: skip
        await store.put(layout.program_timeline_key("news", "show"), caught_up.to_json())
        assert listed(await (await client.get("/show/v/index.m3u8")).text())[-1] == 20, "the packager's again"


async def test_a_programs_playlist_lists_what_the_channels_does_until_the_packager_records_it(tmp_path):
    """The packager records programs after it writes the channel's timeline (and at most every
    second): meanwhile the program's playlist already lists the channel's newest segments."""
    now = datetime.now(timezone.utc)
    store = await store_with(tmp_path, packager_timeline(range(10, 16), now), range(10, 20), range(10, 20), now)
    written = await store_program(store, packager_timeline(range(10, 14), now), now)
    app = make_app(store)
    app[TIMELINES].ttl = 0
    async with TestClient(TestServer(app)) as client:
        assert listed(await (await client.get("/show/v/index.m3u8")).text()) == [13, 14, 15]
        stored = Timeline.from_json(await store.get(layout.program_timeline_key("news", "show")))
        assert stored.tracks[0].segments[-1].number == 13, "read-only: the recording is the packager's to write"
        program = ProgramRecord.from_json(await store.get(layout.locator_key("show")))
        caught_up, _ = record(written, program, packager_timeline(range(10, 16), now), now)
        await store.put(layout.program_timeline_key("news", "show"), caught_up.to_json())
        assert listed(await (await client.get("/show/v/index.m3u8")).text()) == [13, 14, 15]
        assert app[TIMELINES]._programs == {}, "caught up: the packager's recording is served, no copy kept"


async def test_a_program_stopped_ends_no_earlier_than_its_playlist_went(tmp_path):
    """Stopped while the packager's recording is a segment behind the channel: the playlist goes
    on (no end yet) until the packager freezes the recording, which takes that segment first."""
    now = datetime.now(timezone.utc)
    channel = packager_timeline(range(10, 16), now)
    store = await store_with(tmp_path, channel, range(10, 16), range(10, 16), now)
    written = await store_program(store, packager_timeline(range(10, 14), now), now)
    app = make_app(store)
    app[TIMELINES].ttl = 0
    async with TestClient(TestServer(app)) as client:
        assert listed(await (await client.get("/show/v/index.m3u8")).text()) == [13, 14, 15]
        program = ProgramRecord.from_json(await store.get(layout.locator_key("show")))
        program.state = "Stopped"
        for key in (layout.locator_key("show"), layout.program_key("news", "show")):
            await store.put(key, program.to_json())
        playlist = await (await client.get("/show/v/index.m3u8")).text()
        assert listed(playlist) == [13, 14, 15] and "#EXT-X-ENDLIST" not in playlist, "the packager has not frozen it"
        frozen, _ = record(written, program, channel, now)
        await store.put(layout.program_timeline_key("news", "show"), frozen.to_json())
        playlist = await (await client.get("/show/v/index.m3u8")).text()
        assert listed(playlist) == [13, 14, 15] and "#EXT-X-ENDLIST" in playlist


async def test_a_programs_playlist_does_not_step_back_when_replicas_hand_back_at_different_moments(tmp_path):
    """The drill's case: replica 1, still merging, grew the program to the channel's 19 while the
    packager, awake again, had written the channel to 19 but the program only to 17; replica 2 has
    stopped merging (or never had to).  Both list 19."""
    now = datetime.now(timezone.utc)
    frozen_at = now - timedelta(seconds=10)
    store = await store_with(tmp_path, packager_timeline(range(10, 16), frozen_at), range(10, 20), range(10, 20), now)
    written = await store_program(store, packager_timeline(range(10, 14), frozen_at), frozen_at)
    one = make_app(store)
    one[TIMELINES].ttl = 0
    async with TestClient(TestServer(one)) as merging:
        assert listed(await (await merging.get("/show/v/index.m3u8")).text())[-1] == 19
        program = ProgramRecord.from_json(await store.get(layout.locator_key("show")))
        behind, _ = record(written, program, packager_timeline(range(10, 18), now), now)
        await store.put(layout.timeline_key("news"), packager_timeline(range(10, 20), now).to_json())
        await store.put(layout.program_timeline_key("news", "show"), behind.to_json())
        assert listed(await (await merging.get("/show/v/index.m3u8")).text())[-1] == 19
    two = make_app(store)
    two[TIMELINES].ttl = 0
    async with TestClient(TestServer(two)) as handed_back:
        assert listed(await (await handed_back.get("/show/v/index.m3u8")).text())[-1] == 19
        assert await (await handed_back.get("/show/v/19.m4s")).read() == b"A19"

"""Low-latency HLS over HTTP (aiohttp's test server) against a store the test fills as an encoder
would: blocking reload and blocking preload answer when the part is stored, and never hang."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone

import pytest
from aiohttp.test_utils import TestClient, TestServer
from timeline_fixtures import one_track_timeline

from kubecast.endpoint.app import make_app
from kubecast.media.mp4 import Sample, media_segment
from kubecast.media.parts import EncoderParts, PartRecord, TrackParts
from kubecast.media.timeline import SegmentRows
from kubecast.storage import Store, layout

# 1 s segments of two 500 ms parts at 90 kHz: three target durations are 3 s
SEGMENT, PART = 90_000, 45_000


def part_bytes(number: int, index: int) -> bytes:
    return media_segment(
        sequence_number=number * 64 + index + 1,
        base_decode_time=number * SEGMENT + index * PART,
        samples=[Sample(PART, 10, keyframe=index == 0)],
        data=bytes([number % 256, index]) * 5,
        chunk=True,
    )


class Encoder:
    """Writes parts and parts.json the way the encoder's writer does: the part first."""

    def __init__(self, store: Store, instance: str = "A") -> None:
        self.store, self.instance = store, instance
        self.records: list[PartRecord] = []
        self.complete: int | None = None

    async def part(self, number: int, index: int) -> None:
        data = part_bytes(number, index)
        await self.store.put(layout.part_key("news", self.instance, "v720", number, index), data)
        self.records.append(PartRecord(number, index, number * SEGMENT + index * PART, PART, len(data), index == 0))
        if index == 0 and number - 1 >= 0:
            self.complete = number - 1
        await self.publish()

    async def publish(self) -> None:
        edge = EncoderParts(
            channel="news",
            instance=self.instance,
            session="s",
            updated=datetime.now(timezone.utc),
            part_duration_ms=500,
            part_target_ms=500,
            tracks={"v720": TrackParts(parts=self.records[-8:], complete=self.complete)},
        )
        await self.store.put(layout.parts_key("news", self.instance), edge.to_json())


@pytest.fixture
async def low_latency(tmp_path):
    store = Store(str(tmp_path / "store"))
    timeline = one_track_timeline(range(10, 16))
    timeline.segment_duration_ms = 1000
    timeline.updated = datetime.now(timezone.utc)
    timeline.active_source = "A"
    timeline.tracks[0].segments = SegmentRows(
        row._replace(start=row.number * SEGMENT, duration=SEGMENT) for row in timeline.tracks[0].segments
    )
    await store.put(layout.timeline_key("news"), timeline.to_json())
    await store.put(
        layout.segment_key("news", "A", "v720", 16),
        media_segment(sequence_number=17, base_decode_time=16 * SEGMENT, samples=[Sample(SEGMENT, 4)], data=b"x" * 4),
    )
    encoder = Encoder(store)
    for number, index in ((15, 0), (15, 1), (16, 0), (16, 1)):
        await encoder.part(number, index)
    async with TestClient(TestServer(make_app(store))) as client:
        client.encoder = encoder
        yield client


PLAYLIST = "/live/news/ll/v720/index.m3u8"


async def test_the_low_latency_playlists_and_a_part(low_latency):
    response = await low_latency.get("/live/news/ll/index.m3u8")
    assert response.status == 200 and "v720/index.m3u8" in await response.text()
    text = await (await low_latency.get(PLAYLIST)).text()
    assert '#EXT-X-PART:DURATION=0.50000,URI="16.1.A.m4s"' in text
    assert text.rstrip().endswith('#EXT-X-PRELOAD-HINT:TYPE=PART,URI="17.0.A.m4s"')
    response = await low_latency.get("/live/news/ll/v720/16.1.A.m4s")
    assert response.status == 200 and await response.read() == part_bytes(16, 1)
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    # the standard playlist of the same channel does not change
    assert "#EXT-X-PART" not in await (await low_latency.get("/live/news/v720/index.m3u8")).text()


async def test_a_blocking_reload_is_answered_once_the_part_is_listed(low_latency):
    async def write_later() -> float:
        await asyncio.sleep(0.4)
        await low_latency.encoder.part(17, 0)
        return time.monotonic()

    writer = asyncio.ensure_future(write_later())
    asked = time.monotonic()
    response = await low_latency.get(f"{PLAYLIST}?_HLS_msn=17&_HLS_part=0")
    answered = time.monotonic()
    written = await writer
    assert response.status == 200 and 'URI="17.0.A.m4s"' in await response.text()
    assert answered >= written, "answered before the part was listed"
    assert answered - written < 0.5, f"answered {answered - written:.2f} s after the part was listed"
    assert written - asked >= 0.35


async def test_a_blocking_preload_of_the_hinted_part_is_answered_once_it_is_stored(low_latency):
    async def write_later() -> None:
        await asyncio.sleep(0.3)
        await low_latency.encoder.part(17, 0)

    writer = asyncio.ensure_future(write_later())
    response = await low_latency.get("/live/news/ll/v720/17.0.A.m4s")
    await writer
    assert response.status == 200 and await response.read() == part_bytes(17, 0)


async def test_requests_too_far_beyond_the_edge_are_refused_at_once(low_latency):
    started = time.monotonic()
    assert (await low_latency.get(f"{PLAYLIST}?_HLS_msn=18")).status == 400  # last complete 15, plus 3
    assert (await low_latency.get(f"{PLAYLIST}?_HLS_part=1")).status == 400  # a part without an msn
    assert (await low_latency.get(f"{PLAYLIST}?_HLS_msn=x")).status == 400
    assert (await low_latency.get("/live/news/ll/v720/99.0.A.m4s")).status == 404  # not hinted, not near
    assert (await low_latency.get("/live/news/ll/v720/17.0.Z.m4s")).status == 404  # no such encoder
    assert time.monotonic() - started < 1.0


async def test_a_blocking_reload_that_never_comes_true_gets_503_after_three_target_durations(low_latency):
    started = time.monotonic()
    response = await low_latency.get(f"{PLAYLIST}?_HLS_msn=17&_HLS_part=1")
    waited = time.monotonic() - started
    assert response.status == 503 and 3.0 <= waited < 4.5


async def test_a_segment_the_encoder_stored_whole_is_served_before_the_timeline_lists_it(low_latency):
    encoder = low_latency.encoder
    await encoder.part(17, 0)  # 16 complete
    text = await (await low_latency.get(PLAYLIST)).text()
    assert "16.m4s" in text.splitlines()
    assert (await low_latency.get("/live/news/ll/v720/16.m4s")).status == 200
    assert (await low_latency.get("/live/news/v720/16.m4s")).status == 404  # standard: the timeline's only


async def test_a_channel_without_parts_has_no_low_latency_output(tmp_path):
    store = Store(str(tmp_path / "store"))
    timeline = one_track_timeline(range(10, 16))
    await store.put(layout.timeline_key("news"), timeline.to_json())
    async with TestClient(TestServer(make_app(store))) as client:
        assert (await client.get("/live/news/ll/index.m3u8")).status == 404
        assert (await client.get(PLAYLIST)).status == 404
        assert (await client.get("/live/news/v720/index.m3u8")).status == 200


async def test_when_the_encoder_whose_parts_are_served_stops_the_other_ones_are_served(low_latency):
    a, b = low_latency.encoder, Encoder(low_latency.encoder.store, "B")
    for number, index in ((15, 0), (15, 1), (16, 0), (16, 1)):
        await b.part(number, index)
    text = await (await low_latency.get(PLAYLIST)).text()
    assert 'URI="16.1.A.m4s"' in text and ".B.m4s" not in text  # the timeline's active source, A
    # A stops writing: its parts.json grows stale (2 parts + 0.5 s), B goes on
    stale = EncoderParts.from_json(await a.store.get(layout.parts_key("news", "A")) or b"")
    stale.updated = datetime.fromtimestamp(time.time() - 2, timezone.utc)
    await a.store.put(layout.parts_key("news", "A"), stale.to_json())
    await b.part(17, 0)
    await asyncio.sleep(0.1)  # past the parts.json read's 50 ms
    text = await (await low_latency.get(PLAYLIST)).text()
    assert 'URI="17.0.B.m4s"' in text and ".A.m4s" not in text, text
    assert text.rstrip().endswith('#EXT-X-PRELOAD-HINT:TYPE=PART,URI="17.1.B.m4s"')
    # A comes back: this replica stays with B, so a player's segment keeps one encoder's parts
    await a.part(17, 0)
    await asyncio.sleep(0.1)
    assert ".A.m4s" not in await (await low_latency.get(PLAYLIST)).text()


async def test_an_encoder_without_parts_json_is_looked_for_once_a_second_not_at_every_poll(low_latency):
    store = low_latency.encoder.store
    missing = layout.parts_key("news", "B")
    reads = 0
    get = store.get

    async def counting_get(key: str) -> bytes | None:
        nonlocal reads
        reads += key == missing
        return await get(key)

    async def write_later() -> None:
        await asyncio.sleep(0.6)
        await low_latency.encoder.part(17, 0)

    store.get = counting_get  # type: ignore[method-assign]
    # the request blocks for 0.6 s, looking at A's parts.json every 50 ms
    response, _ = await asyncio.gather(low_latency.get(f"{PLAYLIST}?_HLS_msn=17&_HLS_part=0"), write_later())
    assert response.status == 200
    assert reads <= 2, f"B's missing parts.json read {reads} times in 0.6 s"

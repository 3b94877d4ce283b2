"""LL-DASH delivery (kubecast.endpoint.chunked): a segment sent part by part while its encoder
writes it, over HTTP with chunked transfer encoding (aiohttp's test server, a store the test
fills as an encoder would: part objects first, then parts.json listing them)."""

import asyncio
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import pytest
from aiohttp.test_utils import TestClient, TestServer
from timeline_fixtures import ladder_timeline

from kubecast.endpoint.app import make_app
from kubecast.endpoint.chunked import AHEAD_SEGMENTS, open_segment
from kubecast.endpoint.timelines import MISSING_PARTS_TTL
from kubecast.media.mp4 import styp
from kubecast.media.parts import EncoderParts, PartRecord, TrackParts
from kubecast.media.timeline import EncoderHealth
from kubecast.storage import Store, layout

TICKS = 180000  # a 2 s segment of v720 (90 kHz)
PART = 45000  # 500 ms
OPEN = 16  # the timeline lists 10..15: segment 16 is being written


def part(number, index, *, duration=PART):
    return PartRecord(number, index, number * TICKS + index * PART, duration, 10, index == 0)


def edge(parts, *, complete=None, updated=None, part_ms=500):
    return EncoderParts(
        channel="news",
        instance="A",
        session="s",
        updated=updated or datetime.now(timezone.utc),
        part_duration_ms=part_ms,
        part_target_ms=part_ms,
        tracks={"v720": TrackParts(parts=parts, complete=complete)},
    )


@pytest.mark.parametrize(
    "listed, complete, sent, finished",
    [
        ([part(16, 0), part(16, 1)], 15, 2, False),  # being written
        ([part(16, 0), part(16, 1), part(16, 2), part(16, 3)], 15, 4, True),  # the last part reaches the end
        ([part(16, 0), part(16, 1), part(17, 0)], 15, 2, True),  # a later segment began
        ([part(16, 0), part(16, 1)], 16, 2, True),  # recorded as stored whole
        ([part(16, 0), part(16, 2)], 15, 1, True),  # part 1 never stored: nothing after it decodes
        ([part(15, 3), part(16, 1), part(16, 0)], 15, 2, False),  # listed out of order, earlier segments ignored
        ([], None, 0, False),  # not begun
    ],
)
def test_where_a_segment_stands(listed, complete, sent, finished):
    segment = open_segment(edge(listed, complete=complete), "v720", OPEN, (OPEN + 1) * TICKS)
    assert [row.part for row in segment.parts] == list(range(sent))
    assert segment.finished is finished


def test_a_track_without_parts_is_not_begun():
    assert open_segment(edge([part(16, 0)]), "audio", OPEN, (OPEN + 1) * TICKS) == ([], False)


class Encoder:
    """Writes parts of segment 16 of v720 into the store as an encoder does."""

    def __init__(self, store):
        self.store = store
        self.parts = []

    async def write(self, index, *, complete=None, updated=None, part_ms=500):
        data = f"<moof+mdat of part {index}>".encode()
        await self.store.put(layout.part_key("news", "A", "v720", OPEN, index), data)
        self.parts.append(part(OPEN, index)._replace(size=len(data)))
        await self.list(complete=complete, updated=updated, part_ms=part_ms)
        return data

    async def list(self, *, complete=None, updated=None, part_ms=500):
        record = edge(list(self.parts), complete=complete, updated=updated, part_ms=part_ms)
        await self.store.put(layout.parts_key("news", "A"), record.to_json())


@pytest.fixture
async def served(tmp_path):
    store = Store(str(tmp_path / "store"))
    timeline = ladder_timeline()
    timeline.encoders = {"A": EncoderHealth(state="live")}
    timeline.active_source = "A"
    await store.put(layout.timeline_key("news"), timeline.to_json())
    await store.put(layout.segment_key("news", "A", "v720", 15), b"segment 15, whole")
    async with TestClient(TestServer(make_app(store))) as client:
        yield client, Encoder(store)


async def test_the_open_segment_is_sent_part_by_part_as_it_is_written(served):
    client, encoder = served
    first = await encoder.write(0)
    response = await client.get(f"/live/news/ll/dash/v720/{OPEN}.m4s")
    assert response.status == 200 and response.headers["Transfer-Encoding"] == "chunked"
    assert response.content_type == "video/mp4"
    # what was written so far arrives before the rest of the segment exists
    received = b""
    while len(received) < len(styp() + first):
        received += await asyncio.wait_for(response.content.readany(), 5)
    assert received == styp() + first
    rest = [await encoder.write(index) for index in (1, 2, 3)]
    received += await asyncio.wait_for(response.content.read(), 5)
    assert received == styp() + first + b"".join(rest)


async def test_a_segment_asked_for_just_before_it_opens_waits_for_its_first_part(served):
    client, encoder = served
    encoder.parts = [part(15, 3)]
    await encoder.list(complete=14)
    request = asyncio.ensure_future(client.get(f"/live/news/ll/dash/v720/{OPEN}.m4s"))
    await asyncio.sleep(0.3)
    parts = [await encoder.write(index) for index in range(4)]
    response = await asyncio.wait_for(request, 5)
    assert await asyncio.wait_for(response.read(), 5) == styp() + b"".join(parts)


async def test_a_segment_asked_for_before_a_lagging_encoder_began_it_is_held_not_refused(served):
    client, encoder = served
    encoder.parts = [part(OPEN - AHEAD_SEGMENTS, 3)]  # the encoder is still writing OPEN - 2
    await encoder.list(complete=OPEN - AHEAD_SEGMENTS - 1)
    response = await asyncio.wait_for(client.get(f"/live/news/ll/dash/v720/{OPEN}.m4s"), 5)
    assert response.status == 200, "held while the encoder catches up, not refused"
    await asyncio.sleep(0.3)
    parts = [await encoder.write(index) for index in range(4)]
    assert await asyncio.wait_for(response.read(), 5) == styp() + b"".join(parts)


async def test_a_stale_encoder_ends_the_response_with_the_parts_it_had(served):
    client, encoder = served
    first = await encoder.write(0, part_ms=200)  # stale 0.9 s after its last write (kubecast.media.parts)
    started = time.monotonic()
    response = await client.get(f"/live/news/ll/dash/v720/{OPEN}.m4s")
    assert await asyncio.wait_for(response.read(), 5) == styp() + first
    assert time.monotonic() - started < 3


async def test_finished_segments_come_whole_and_others_are_404(served):
    client, encoder = served
    response = await client.get("/live/news/ll/dash/v720/15.m4s")  # in the timeline
    assert response.status == 200 and await response.read() == b"segment 15, whole"
    await encoder.write(0)
    for number in (OPEN + 1 + AHEAD_SEGMENTS, 3):  # too far ahead; older than any part and not listed
        started = time.monotonic()
        assert (await client.get(f"/live/news/ll/dash/v720/{number}.m4s")).status == 404
        assert time.monotonic() - started < 1, "answered at once, not held"
    assert (await client.get(f"/live/news/ll/dash/v999/{OPEN}.m4s")).status == 404


async def test_a_segment_none_of_whose_parts_was_stored_comes_whole_once_it_is(served):
    """The encoder's parts writer fell a segment behind and dropped all of segment 16's parts: the
    response held for 16 sends the stored segment (after the styp it began with), not nothing."""
    client, encoder = served
    encoder.parts = [part(OPEN - 1, 3)]
    await encoder.list(complete=OPEN - 1)
    request = asyncio.ensure_future(client.get(f"/live/news/ll/dash/v720/{OPEN}.m4s"))
    await asyncio.sleep(0.3)
    encoder.parts = [part(OPEN + 1, 0)]  # 16's parts dropped: the encoder lists 17's
    await encoder.list(complete=OPEN - 1)
    await asyncio.sleep(0.3)
    whole = styp() + b"<moof+mdat of segment 16, whole>"
    await encoder.store.put(layout.segment_key("news", "A", "v720", OPEN), whole)
    await encoder.list(complete=OPEN)
    response = await asyncio.wait_for(request, 5)
    assert await asyncio.wait_for(response.read(), 5) == whole


@pytest.mark.parametrize("age", [0, 30], ids=["cutting parts", "stopped cutting parts"])
async def test_a_segment_stored_whole_before_the_timeline_lists_it_comes_from_that_encoder(served, age):
    """A packager a step behind (or hung) does not hide what an encoder says it has stored."""
    client, encoder = served
    await encoder.store.put(layout.segment_key("news", "A", "v720", OPEN), b"segment 16, whole")
    for index in range(4):
        await encoder.write(index)
    await encoder.list(complete=OPEN, updated=datetime.now(timezone.utc) - timedelta(seconds=age))
    response = await client.get(f"/live/news/ll/dash/v720/{OPEN}.m4s")
    assert response.status == 200 and await response.read() == b"segment 16, whole"


async def test_the_low_latency_mpd_is_served_only_for_a_channel_with_parts(served):
    client, encoder = served
    assert (await client.get("/live/news/ll/manifest.mpd")).status == 404
    await encoder.write(0)
    # the endpoint looks again for a parts.json it did not find once that long has passed
    await asyncio.sleep(MISSING_PARTS_TTL)
    response = await client.get("/live/news/ll/manifest.mpd")
    assert response.status == 200 and response.content_type == "application/dash+xml"
    root = ET.fromstring(await response.text())
    latency = root.find("{urn:mpeg:dash:schema:mpd:2011}ServiceDescription/{urn:mpeg:dash:schema:mpd:2011}Latency")
    assert latency.get("target") == "2000"
    standard = await (await client.get("/live/news/manifest.mpd")).text()
    assert "ServiceDescription" not in standard and "$Time$" in standard

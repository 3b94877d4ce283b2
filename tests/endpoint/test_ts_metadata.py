"""The ID3 tags of a program's timeline go into the TS segment whose time covers them, and only
that one."""

from __future__ import annotations

import base64

from aiohttp.test_utils import TestClient, TestServer
from timeline_fixtures import ladder_timeline

from kubecast.endpoint.app import make_app
from kubecast.media.metadata import TimelineMetadata
from kubecast.media.mp4 import Sample, init_segment_video, media_segment
from kubecast.media.mpegts import TsDemuxer
from kubecast.storage import ProgramRecord, Store, layout

TAG = b"ID3\x04\x00\x00\x00\x00\x00\x0eTIT2\x00\x00\x00\x04\x00\x00\x03abc"
AVCC = bytes([1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 4, 0x67, 0x64, 0, 0x1F, 1, 0, 2, 0x68, 0xEE])


def _id3_frames(segment: bytes) -> list[tuple[int, bytes]]:
    demuxer = TsDemuxer()
    return [(f.pts, f.data) for f in demuxer.feed(segment) + demuxer.flush() if f.kind == "id3"]


async def test_a_programs_ts_segment_carries_the_tags_of_its_time(tmp_path):
    store = Store(str(tmp_path / "store"))
    record = ProgramRecord(
        name="evening", channel="news", locator="evening-news", manifest_name="show", archive_window_seconds=3600
    )
    recorded = ladder_timeline(state="stopped")
    tag = TimelineMetadata(time=int(24.5 * 90_000), timescale=90_000, id3=base64.b64encode(TAG).decode())
    recorded.metadata = [tag]
    await store.put(layout.locator_key("evening-news"), record.to_json())
    await store.put(layout.program_timeline_key("news", "evening"), recorded.to_json())
    await store.put(layout.timeline_key("news"), ladder_timeline(numbers=range(40, 46)).to_json())
    for number in (12, 13):
        segment = media_segment(
            sequence_number=number, base_decode_time=number * 180000, samples=[Sample(180000, 100)], data=b"s" * 100
        )
        await store.put(layout.segment_key("news", "A", "v720", number), segment)
    await store.put(
        layout.init_key("news", "A", "v720", "init-aa.mp4"),
        init_segment_video(width=1280, height=720, timescale=90000, avcc=AVCC),
    )
    async with TestClient(TestServer(make_app(store))) as client:
        covered = await client.get("/evening-news/show.ism/ts/v720/12.ts")
        assert covered.status == 200
        assert _id3_frames(await covered.read()) == [(int(24.5 * 90_000), TAG)]
        after = await client.get("/evening-news/show.ism/ts/v720/13.ts")
        assert after.status == 200 and _id3_frames(await after.read()) == []

"""The ID3 tags of a program's timeline go into the segments whose time covers them, and only
those: the TS segment on its metadata PID, the fMP4 video segment as an ``emsg`` box in front of
the stored fragment (AOM ID3 in CMAF), announced in the MPD."""

from __future__ import annotations

import base64
import struct

from aiohttp.test_utils import TestClient, TestServer
from timeline_fixtures import ladder_timeline, store_program

from kubecast.endpoint.app import make_app
from kubecast.media.metadata import TimelineMetadata
from kubecast.media.mp4 import Sample, init_segment_video, media_segment
from kubecast.media.mpegts import TsDemuxer
from kubecast.storage import Store, layout

TAG = b"ID3\x04\x00\x00\x00\x00\x00\x0eTIT2\x00\x00\x00\x04\x00\x00\x03abc"
AVCC = bytes([1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 4, 0x67, 0x64, 0, 0x1F, 1, 0, 2, 0x68, 0xEE])


def _id3_frames(segment: bytes) -> list[tuple[int, bytes]]:
    demuxer = TsDemuxer()
    return [(f.pts, f.data) for f in demuxer.feed(segment) + demuxer.flush() if f.kind == "id3"]


async def _program(tmp_path):
    store = Store(str(tmp_path / "store"))
    recorded = ladder_timeline(state="stopped")
    tag = TimelineMetadata(time=int(24.5 * 90_000), timescale=90_000, id3=base64.b64encode(TAG).decode())
    recorded.metadata = [tag]
    await store_program(store, recorded, state="Running")
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
    return store


async def test_a_programs_ts_segment_carries_the_tags_of_its_time(tmp_path):
    async with TestClient(TestServer(make_app(await _program(tmp_path)))) as client:
        covered = await client.get("/evening-news/show.ism/ts/v720/12.ts")
        assert covered.status == 200
        assert _id3_frames(await covered.read()) == [(int(24.5 * 90_000), TAG)]
        after = await client.get("/evening-news/show.ism/ts/v720/13.ts")
        assert after.status == 200 and _id3_frames(await after.read()) == []


async def test_a_programs_fmp4_video_segment_carries_the_tag_as_an_emsg_box(tmp_path):
    store = await _program(tmp_path)
    stored = await store.get(layout.segment_key("news", "A", "v720", 12))
    async with TestClient(TestServer(make_app(store))) as client:
        served = await (await client.get("/evening-news/v720/12.m4s")).read()
        size, kind, version = struct.unpack_from(">I4sB", served)
        assert kind == b"emsg" and version == 1 and served[size:] == stored, "the box in front, the fragment as stored"
        timescale, presentation_time, duration, _ = struct.unpack_from(">IQII", served, 12)
        assert (timescale, presentation_time, duration) == (90_000, int(24.5 * 90_000), 0xFFFFFFFF)
        scheme, value, message = served[32:size].split(b"\x00", 2)
        assert (scheme, value, message) == (b"https://aomedia.org/emsg/ID3", b"", TAG)
        assert await (await client.get("/evening-news/v720/13.m4s")).read() == await store.get(
            layout.segment_key("news", "A", "v720", 13)
        )
        mpd = await (await client.get("/evening-news/show.mpd")).text()
        assert mpd.count('<InbandEventStream schemeIdUri="https://aomedia.org/emsg/ID3" value=""/>') == 1
        live = await (await client.get("/live/news/manifest.mpd")).text()
        assert "InbandEventStream" not in live, "a timeline without tags announces none"

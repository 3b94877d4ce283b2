"""Ad markers in the Smooth client manifest: a sparse StreamIndex of SCTE-35, as AMS wrote it, and
its fragments, live and on demand."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

import pytest
from aiohttp.test_utils import TestClient, TestServer
from timeline_fixtures import ladder_timeline, store_program

from kubecast.endpoint.app import make_app
from kubecast.endpoint.smooth import client_manifest
from kubecast.media.contribution import Cue
from kubecast.media.cues import TimelineCue
from kubecast.media.fmp4 import parse_fragment
from kubecast.media.scte35 import splice_insert_section
from kubecast.media.timeline import Timeline
from kubecast.storage import Store

SCALE = 90_000  # the fixture's video timescale; its window is segments 10 to 15 of 2 s: [20 s, 32 s)


def cue(event_id: int, out: bool, seconds: float, duration: float | None = None) -> TimelineCue:
    ticks = None if duration is None else round(duration * SCALE)
    section = splice_insert_section(event_id=event_id, out=out, pts=None, duration=ticks)
    return TimelineCue.placed(
        Cue(SCALE, 0, out, ticks, event_id, section), time=round(seconds * SCALE), timescale=SCALE
    )


def with_cues(timeline: Timeline) -> Timeline:
    # One before the window (its break over in it), a break inside it.
    timeline.cues = [cue(3, True, 5.0, 16.0), cue(7, True, 21.5, 6), cue(7, False, 27.1)]
    return timeline


def sparse_index(manifest: str) -> ET.Element:
    root = ET.fromstring(manifest)
    found = [s for s in root.iter("StreamIndex") if s.get("Type") == "text"]
    assert len(found) == 1, manifest
    return found[0]


@pytest.mark.parametrize("state, origin", [("live", 0), ("stopped", 20 * SCALE)])
def test_the_cues_are_a_sparse_stream_on_the_videos_clock(state, origin):
    timeline = with_cues(ladder_timeline(state=state))
    index = sparse_index(client_manifest(timeline, {}))
    assert {key: index.get(key) for key in ("Name", "Subtype", "ParentStreamIndex", "ManifestOutput", "TimeScale")} == {
        "Name": "scte35",
        "Subtype": "DATA",
        "ParentStreamIndex": "video",
        "ManifestOutput": "TRUE",
        "TimeScale": str(SCALE),
    }
    assert index.get("Url") == "QualityLevels({bitrate})/Fragments(scte35={start time})"
    (level,) = index.iter("QualityLevel")
    assert (level.get("Bitrate"), level.get("FourCC")) == ("0", "")
    assert [(a.get("Name"), a.get("Value")) for a in level.iter("Attribute")] == [
        ("Scheme", "urn:scte:scte35:2013:bin")
    ]
    chunks = [(int(c.get("t")), int(c.get("d")), base64.b64decode(c.findtext("f"))) for c in index.iter("c")]
    inside = timeline.cues[1:]
    assert chunks == [(c.time - origin, c.duration or 0, c.section_bytes) for c in inside], "the window's cues"
    video_times = {
        int(c.get("t"))
        for s in ET.fromstring(client_manifest(timeline, {})).iter("StreamIndex")
        if s.get("Type") == "video"
        for c in s.iter("c")
    }
    assert min(video_times) == 20 * SCALE - origin, "shifted as the parent is"


def test_no_cue_no_sparse_stream():
    root = ET.fromstring(client_manifest(ladder_timeline(state="stopped"), {}))
    assert [s.get("Type") for s in root.iter("StreamIndex")] == ["video", "audio"]


@pytest.fixture
async def client(tmp_path):
    store = Store(str(tmp_path / "store"))
    await store_program(store, with_cues(ladder_timeline(state="stopped")))
    async with TestClient(TestServer(make_app(store))) as client:
        yield client


async def test_a_recorded_programs_cue_is_in_its_manifest_and_its_fragment_is_served(client):
    index = sparse_index(await (await client.get("/evening-news/show.ism/manifest")).text())
    first = next(index.iter("c"))
    time, duration = int(first.get("t")), int(first.get("d"))
    assert (time, duration) == (int(1.5 * SCALE), 6 * SCALE)
    response = await client.get(f"/evening-news/show.ism/QualityLevels(0)/Fragments(scte35={time})")
    assert response.status == 200 and response.headers["Cache-Control"].endswith("immutable")
    data = await response.read()
    moof_size = int.from_bytes(data[:4], "big")
    (samples,) = parse_fragment(data[:moof_size], data[moof_size:]).values()
    assert [(s.decode_time, s.duration, s.data) for s in samples] == [
        (time, duration, base64.b64decode(first.findtext("f")))
    ], "the tfxd's time, the break's duration, the binary section"
    for missing in ("Fragments(scte35=1)", "Fragments(scte3=135000)"):
        assert (await client.get(f"/evening-news/show.ism/QualityLevels(0)/{missing}")).status == 404

"""Program URLs: the plain and Azure Media Services forms over a recorded timeline."""

import pytest
from aiohttp.test_utils import TestClient, TestServer
from timeline_fixtures import ladder_timeline, store_program

from kubecast.endpoint.app import STORE_KEY, TIMELINES, make_app
from kubecast.endpoint.programs import FormatError, ams_format
from kubecast.endpoint.smooth import client_manifest, listed_rows
from kubecast.media.mp4 import Sample, init_segment_video, media_segment, parse_media_segment
from kubecast.storage import Store, layout


@pytest.mark.parametrize(
    ("resource", "wanted"),
    [
        ("manifest", "smooth"),
        ("manifest(format=m3u8-cmaf)", "hls"),
        ("Manifest(format=M3U8-AAPL)", "hls-ts"),
        ("manifest(format=mpd-time-cmaf)", "dash"),
        ("manifest(format=mpd-time-csf)", "dash"),
        ("manifest(audio-only=false,format=m3u8-cmaf)", "hls"),
    ],
)
def test_ams_formats(resource, wanted):
    assert ams_format(resource) == wanted


@pytest.mark.parametrize(
    "resource",
    ["manifest(format=f4m-f4f)", "manifest(format=", "manifest(junk)", "manifests", "manifest(format=m3u8-cmaf"],
)
def test_unknown_or_malformed_ams_formats_are_refused(resource):
    with pytest.raises(FormatError):
        ams_format(resource)


@pytest.fixture
async def client(tmp_path):
    store = Store(str(tmp_path / "store"))
    await store_program(store, ladder_timeline(state="stopped"))
    await store.put(layout.timeline_key("news"), ladder_timeline(numbers=range(40, 46)).to_json())
    segment = media_segment(
        sequence_number=12, base_decode_time=12 * 180000, samples=[Sample(180000, 100)], data=b"s" * 100
    )
    await store.put(layout.segment_key("news", "A", "v720", 12), segment)
    avcc = bytes([1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 4, 0x67, 0x64, 0, 0x1F, 1, 0, 2, 0x68, 0xEE])
    await store.put(
        layout.init_key("news", "A", "v720", "init-aa.mp4"),
        init_segment_video(width=1280, height=720, timescale=90000, avcc=avcc),
    )
    async with TestClient(TestServer(make_app(store))) as client:
        client.segment = segment
        yield client


async def test_every_program_url_form_returns_its_format(client):
    expectations = {
        "/evening-news/show.m3u8": ("#EXT-X-VERSION:7", "application/vnd.apple.mpegurl"),
        "/evening-news/show.mpd": ('type="static"', "application/dash+xml"),
        "/evening-news/show.ism/manifest(format=m3u8-cmaf)": (
            "#EXT-X-MEDIA:TYPE=AUDIO",
            "application/vnd.apple.mpegurl",
        ),
        "/evening-news/show.ism/manifest(format=m3u8-aapl)": ("ts/v720/index.m3u8", "application/vnd.apple.mpegurl"),
        "/evening-news/show.ism/manifest(format=mpd-time-cmaf)": ('type="static"', "application/dash+xml"),
        "/evening-news/show.ism/manifest(format=mpd-time-csf)": ("SegmentTimeline", "application/dash+xml"),
    }
    for path, (marker, content_type) in expectations.items():
        response = await client.get(path)
        assert response.status == 200 and response.content_type == content_type, path
        assert marker in await response.text(), path
    playlist = await (await client.get("/evening-news/v720/index.m3u8")).text()
    assert playlist.rstrip().endswith("#EXT-X-ENDLIST") and "12.m4s" in playlist, (
        "the recording, not the live window (40-45)"
    )
    for path in ("/evening-news/v720/12.m4s", "/evening-news/show.ism/v720/12.m4s"):
        assert await (await client.get(path)).read() == client.segment


async def test_bad_program_requests_are_clear_4xx(client):
    statuses = {
        path: (await client.get(path)).status
        for path in (
            "/evening-news/other.m3u8",
            "/no-such-locator/show.m3u8",
            "/evening-news/show.ism/manifest(format=hds)",
            "/evening-news/show.ism/QualityLevels(1)/Fragments(video=0)",
            "/evening-news/v720/99.m4s",
            "/evening-news/..%2F..%2Fsecret.txt",
            "/evening-news/show.ism/x/y/z",
        )
    }
    assert statuses == {
        "/evening-news/other.m3u8": 404,
        "/no-such-locator/show.m3u8": 404,
        "/evening-news/show.ism/manifest(format=hds)": 400,
        "/evening-news/show.ism/QualityLevels(1)/Fragments(video=0)": 404,
        "/evening-news/v720/99.m4s": 404,
        "/evening-news/..%2F..%2Fsecret.txt": 404,
        "/evening-news/show.ism/x/y/z": 404,
    }


async def test_smooth_client_manifest_and_fragments(client):
    import xml.etree.ElementTree as ET

    response = await client.get("/evening-news/show.ism/manifest")
    assert response.status == 200 and response.content_type == "application/vnd.ms-sstr+xml"
    root = ET.fromstring(await response.text())
    assert (
        root.tag == "SmoothStreamingMedia"
        and root.get("IsLive") is None
        and int(root.get("Duration")) == 6 * 2 * 10_000_000
    )
    video = next(s for s in root.iter("StreamIndex") if s.get("Type") == "video")
    levels = {q.get("MaxHeight"): q for q in video.iter("QualityLevel")}
    assert set(levels) == {"720", "360"} and levels["720"].get("CodecPrivateData") == "000000016764001F0000000168EE"
    assert [c.get("t") for c in video.iter("c")][:2] == ["0", "180000"], "on demand: every stream starts at 0"
    bitrate = levels["720"].get("Bitrate")
    fragment = await client.get(f"/evening-news/show.ism/QualityLevels({bitrate})/Fragments(video={2 * 180000})")
    assert fragment.status == 200
    assert parse_media_segment(await fragment.read())[0] == 2 * 180000, "its tfdt says what the manifest says"


def test_smooth_lists_only_the_segments_every_stream_has():

    timeline = ladder_timeline(state="stopped")
    audio = next(t for t in timeline.tracks if t.info.kind == "audio")
    audio.segments = audio.segments[1:]  # the window, trimmed by time, dropped one more audio segment
    assert all(rows[0].number == 11 for rows in listed_rows(timeline).values())
    assert '<c t="0" d="180000"/>' in client_manifest(timeline, {}) and '<c t="0" d="96000"/>' in client_manifest(
        timeline, {}
    )


async def test_start_over_asks_players_to_begin_at_the_window_start(client):
    for multivariant in (
        "/evening-news/show.m3u8?startover",
        "/evening-news/show.ism/manifest(format=m3u8-aapl)?startover",
        "/live/news/index.m3u8?startover",
    ):
        text = await (await client.get(multivariant)).text()
        assert "#EXT-X-START:TIME-OFFSET=0,PRECISE=YES" in text, multivariant
        variants = [
            line
            for line in text.splitlines()
            if line.endswith("index.m3u8?startover") or 'index.m3u8?startover"' in line
        ]
        assert len(variants) == len([line for line in text.splitlines() if "index.m3u8" in line]), (
            "every playlist it names is asked for the same way"
        )
    for media in (
        "/evening-news/v720/index.m3u8?startover",
        "/live/news/v720/index.m3u8?startover",
        "/live/news/ts/v720/index.m3u8?startover",
    ):
        assert "#EXT-X-START:TIME-OFFSET=0,PRECISE=YES" in await (await client.get(media)).text(), media
    for plain in ("/evening-news/show.m3u8", "/live/news/v720/index.m3u8"):
        assert "EXT-X-START" not in await (await client.get(plain)).text(), (
            "the live edge, unless asked (and not served from the other's cache)"
        )


async def test_manifests_follow_the_timeline_version_and_a_deleted_program_is_gone(tmp_path):
    from datetime import timedelta

    store = Store(str(tmp_path / "store"))
    first = ladder_timeline(state="stopped", numbers=range(10, 13))
    first.generation = 1
    await store_program(store, first)
    async with TestClient(TestServer(make_app(store))) as client:
        client.app[TIMELINES].ttl = 0  # read storage on every request

        async def playlist():
            return await (await client.get("/evening-news/v720/index.m3u8")).text()

        assert "12.m4s" in await playlist() and "50.m4s" not in await playlist()
        # Deleted and made again under the same locator: its generations count from 1 again.
        remade = ladder_timeline(state="stopped", numbers=range(50, 52))
        remade.generation, remade.updated = 1, first.updated + timedelta(hours=1)
        await store.put(layout.program_timeline_key("news", "evening"), remade.to_json())
        assert "50.m4s" in await playlist() and "12.m4s" not in await playlist(), "not the old program's playlist"
        grown = ladder_timeline(state="stopped", numbers=range(50, 53))
        grown.generation, grown.updated = 2, remade.updated
        await store.put(layout.program_timeline_key("news", "evening"), grown.to_json())
        assert "52.m4s" in await playlist(), "a new generation is rendered anew"
        await store.delete(layout.locator_key("evening-news"))
        await store.delete(layout.program_timeline_key("news", "evening"))
        assert (await client.get("/evening-news/show.m3u8")).status == 404, "a deleted program is a 404"
        assert (await client.get("/evening-news/v720/50.m4s")).status == 404, "and so are its segments"


def _uuid_boxes(fragment: bytes) -> dict[bytes, bytes]:
    from kubecast.media.mp4 import find_box, iter_boxes

    start, end = find_box(fragment, [b"moof", b"traf"])
    return {
        fragment[s : s + 16]: fragment[s + 16 : e] for kind, s, e in iter_boxes(fragment, start, end) if kind == b"uuid"
    }


def test_smooth_boxes_go_into_the_traf_and_the_samples_still_read():
    import struct

    from kubecast.endpoint.smooth import TFRF, TFXD, with_smooth_boxes
    from kubecast.media.fmp4 import BoxStream, parse_fragment

    payload = bytes(range(200))
    original = media_segment(
        sequence_number=3, base_decode_time=540000, samples=[Sample(3000, 120), Sample(3000, 80)], data=payload
    )
    boxed = with_smooth_boxes(original, time=540000, duration=6000, following=[(546000, 6000), (552000, 6000)])
    boxes = dict(BoxStream().feed(boxed))
    samples = parse_fragment(boxes[b"moof"], boxes[b"mdat"])[1]
    assert b"".join(s.data for s in samples) == payload and samples[0].decode_time == 540000, (
        "sizes and the data offset moved with the boxes"
    )
    found = _uuid_boxes(boxed)
    assert struct.unpack(">4xQQ", found[TFXD]) == (540000, 6000)
    assert found[TFRF][4] == 2 and struct.unpack(">QQQQ", found[TFRF][5:]) == (546000, 6000, 552000, 6000)
    assert TFRF not in _uuid_boxes(with_smooth_boxes(original, time=540000, duration=6000, following=None)), (
        "on demand: tfxd only"
    )


async def test_live_smooth_announces_the_next_fragments(tmp_path):
    import xml.etree.ElementTree as ET

    from kubecast.endpoint.smooth import TFRF

    store = Store(str(tmp_path / "store"))
    await store_program(
        store,
        ladder_timeline(numbers=range(10, 16)),
        name="match",
        locator="match",
        manifest_name="live",
        state="Running",
    )
    for number in range(10, 16):
        await store.put(
            layout.segment_key("news", "A", "v720", number),
            media_segment(
                sequence_number=number, base_decode_time=number * 180000, samples=[Sample(180000, 10)], data=b"v" * 10
            ),
        )
    async with TestClient(TestServer(make_app(store))) as client:
        root = ET.fromstring(await (await client.get("/match/live.ism/manifest")).text())
        assert root.get("IsLive") == "TRUE" and root.get("LookAheadFragmentCount") == "2"
        video = next(s for s in root.iter("StreamIndex") if s.get("Type") == "video")
        listed = [int(c.get("t")) for c in video.iter("c")]
        assert listed == [n * 180000 for n in range(10, 14)], "two short of the edge: their successors are known"
        bitrate = next(q.get("Bitrate") for q in video.iter("QualityLevel") if q.get("MaxHeight") == "720")
        last_listed = await client.get(f"/match/live.ism/QualityLevels({bitrate})/Fragments(video={13 * 180000})")
        assert (
            _uuid_boxes(await last_listed.read())[TFRF][4] == 2 and "immutable" in last_listed.headers["Cache-Control"]
        )
        edge = await client.get(f"/match/live.ism/QualityLevels({bitrate})/Fragments(video={15 * 180000})")
        assert _uuid_boxes(await edge.read())[TFRF][4] == 0 and "immutable" not in edge.headers["Cache-Control"], (
            "its tfrf will grow"
        )
        info = await (
            await client.get(f"/match/live.ism/QualityLevels({bitrate})/FragmentInfo(video={13 * 180000})")
        ).read()
        assert info[4:8] == b"moof" and len(info) == int.from_bytes(info[:4], "big"), "FragmentInfo: the moof alone"


async def test_a_time_outside_the_programs_window_is_a_404_even_when_stored(client):
    store = client.app[STORE_KEY]
    await store.put(
        layout.segment_key("news", "A", "v720", 40), client.segment
    )  # the live window's, not the recording's
    assert (await client.get("/live/news/v720/40.m4s")).status == 200
    outside = {
        path: (await client.get(path)).status
        for path in (
            "/evening-news/v720/40.m4s",
            f"/evening-news/v720/t{40 * 180000}.m4s",
            "/evening-news/show.ism/ts/v720/40.ts",
            f"/evening-news/show.ism/QualityLevels(3000000)/Fragments(video={30 * 180000})",
        )
    }
    assert set(outside.values()) == {404}, outside

"""EXT-X-CUE-OUT / -CONT / -IN, the ad-break tags older ad servers read, written (beside
EXT-X-DATERANGE) only by an endpoint whose config asks for them (``hlsCueTags``)."""

import json
from fractions import Fraction

from aiohttp.test_utils import TestClient, TestServer
from timeline_fixtures import ladder_timeline

from kubecast.endpoint import config, hls
from kubecast.endpoint.admarkers import cue_tags
from kubecast.endpoint.app import make_app
from kubecast.media.contribution import Cue
from kubecast.media.cues import TimelineCue
from kubecast.media.scte35 import splice_insert_section
from kubecast.storage import Store, layout

# The fixture's window: segments 10 to 15 of 2 s, [20 s, 32 s).
SEGMENTS = [(Fraction(2 * n), Fraction(2 * n + 2)) for n in range(10, 16)]


def cue(event_id: int, out: bool, seconds: float, duration: float | None = None) -> TimelineCue:
    section = splice_insert_section(
        event_id=event_id, out=out, pts=1, duration=None if duration is None else round(duration * 90_000)
    )
    ticks = None if duration is None else round(duration * 90_000)
    return TimelineCue.placed(
        Cue(90_000, 0, out, ticks, event_id, section), time=round(seconds * 90_000), timescale=90_000
    )


def lines_before(tags: list[list[str]]) -> dict[int, list[str]]:
    """Segment number -> its tags, for the segments that have any."""
    return {10 + index: lines for index, lines in enumerate(tags) if lines}


def test_a_break_is_out_before_its_splice_segment_continued_and_in_before_the_segment_of_its_return():
    tags = cue_tags([cue(7, True, 21.5, 6), cue(7, False, 27.1)], SEGMENTS)
    assert lines_before(tags) == {
        10: ["#EXT-X-CUE-OUT:6.000"],
        11: ["#EXT-X-CUE-OUT-CONT:ElapsedTime=2.000,Duration=6.000"],
        12: ["#EXT-X-CUE-OUT-CONT:ElapsedTime=4.000,Duration=6.000"],
        13: ["#EXT-X-CUE-IN"],
    }


def test_without_a_splice_back_in_the_break_ends_after_its_stated_duration():
    assert lines_before(cue_tags([cue(7, True, 20.0, 4)], SEGMENTS)) == {
        10: ["#EXT-X-CUE-OUT:4.000"],
        11: ["#EXT-X-CUE-OUT-CONT:ElapsedTime=2.000,Duration=4.000"],
        12: ["#EXT-X-CUE-IN"],
    }


def test_an_open_break_without_a_duration_continues_to_the_newest_segment():
    assert lines_before(cue_tags([cue(7, True, 29.0)], SEGMENTS)) == {
        14: ["#EXT-X-CUE-OUT"],
        15: ["#EXT-X-CUE-OUT-CONT:ElapsedTime=2.000"],
    }


def test_a_break_begun_before_the_window_is_continued_from_its_splice_time():
    """A viewer joining mid-break learns it from CONT alone: the CUE-OUT segment has left the window."""
    assert lines_before(cue_tags([cue(3, True, 15.0, 10)], SEGMENTS)) == {
        10: ["#EXT-X-CUE-OUT-CONT:ElapsedTime=5.000,Duration=10.000"],
        11: ["#EXT-X-CUE-OUT-CONT:ElapsedTime=7.000,Duration=10.000"],
        12: ["#EXT-X-CUE-IN"],
    }
    assert lines_before(cue_tags([cue(5, False, 23.0)], SEGMENTS)) == {11: ["#EXT-X-CUE-IN"]}, "its out is gone"


def test_breaks_over_before_the_window_inside_one_segment_or_not_begun_get_no_tags():
    assert cue_tags([cue(1, True, 10.0, 5), cue(2, True, 24.2, 1.5), cue(3, True, 33.0, 30)], SEGMENTS) == [
        [] for _ in SEGMENTS
    ]
    assert cue_tags([cue(1, True, 24.2, 1.5)], []) == []


def test_one_break_returning_where_the_next_begins():
    tags = cue_tags([cue(1, True, 20.0, 4), cue(2, True, 24.5, 4)], SEGMENTS)
    assert lines_before(tags)[12] == ["#EXT-X-CUE-IN", "#EXT-X-CUE-OUT:4.000"]
    assert lines_before(tags)[14] == ["#EXT-X-CUE-IN"]


def _with_break():
    timeline = ladder_timeline()
    timeline.cues = [cue(7, True, 21.5, 6), cue(7, False, 27.1)]
    return timeline


def test_the_media_playlist_carries_them_only_when_asked_beside_the_dateranges():
    timeline = _with_break()
    plain = hls.media_playlist(timeline, timeline.tracks[2])
    assert "#EXT-X-CUE" not in plain and plain.count("#EXT-X-DATERANGE") == 2
    text = hls.media_playlist(timeline, timeline.tracks[2], cue_out_in=True)
    assert text.count("#EXT-X-DATERANGE") == 2
    first = "#EXT-X-CUE-OUT:6.000\n#EXT-X-PROGRAM-DATE-TIME:2026-01-01T12:00:20.000Z\n#EXTINF:2.000,\n10."
    assert first + "m4s\n" in text
    assert "\n#EXT-X-CUE-OUT-CONT:ElapsedTime=4.000,Duration=6.000\n#EXTINF:2.000,\n12.m4s\n" in text
    assert "SCTE35-IN=" in text.split("#EXT-X-CUE-IN\n")[0].splitlines()[-1], "the daterange comes first"
    assert "#EXT-X-CUE-IN\n#EXTINF:2.000,\n13.m4s\n" in text
    ts = hls.media_playlist(timeline, timeline.tracks[2], ts=True, cue_out_in=True)
    assert first + "ts\n" in ts


async def test_the_endpoint_serves_them_in_every_hls_media_playlist_of_its_config(tmp_path):
    store = Store(str(tmp_path / "store"))
    await store.put(layout.timeline_key("news"), _with_break().to_json())
    path = tmp_path / "endpoint.json"
    path.write_text(json.dumps({"hlsCueTags": True}))
    settings = config.load(path)
    assert settings.hls_cue_tags
    async with TestClient(TestServer(make_app(store, hls_cue_tags=settings.hls_cue_tags))) as client:
        for url in ("/live/news/v720/index.m3u8", "/live/news/ts/v720/index.m3u8", "/live/news/audio/index.m3u8"):
            response = await client.get(url)
            assert response.status == 200
            assert (await response.text()).count("#EXT-X-CUE-") == 4, url
    async with TestClient(TestServer(make_app(store))) as client:
        assert "#EXT-X-CUE" not in await (await client.get("/live/news/v720/index.m3u8")).text()
    path.write_text("{}")
    assert not config.load(path).hls_cue_tags

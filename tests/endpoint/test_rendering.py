import base64
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

import pytest
from timeline_fixtures import ladder_timeline

from kubecast.endpoint import dash, hls
from kubecast.endpoint.ranges import UnsatisfiableRange, parse_range
from kubecast.media.contribution import Cue
from kubecast.media.cues import TimelineCue
from kubecast.media.scte35 import splice_insert_section

NS = {"m": "urn:mpeg:dash:schema:mpd:2011"}


def test_multivariant_playlist(timeline):
    text = hls.multivariant_playlist(timeline)
    lines = text.splitlines()
    assert lines[:3] == ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    assert lines[3].startswith('#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio"') and 'URI="audio/index.m3u8"' in lines[3]
    # highest bandwidth first; BANDWIDTH = measured video peak + audio peak (audio falls back to its target)
    assert lines[4] == (
        '#EXT-X-STREAM-INF:BANDWIDTH=1628000,AVERAGE-BANDWIDTH=1628000,CODECS="avc1.64001f,mp4a.40.2",'
        'RESOLUTION=1280x720,FRAME-RATE=30.000,AUDIO="audio"'
    )
    assert lines[5] == "v720/index.m3u8" and lines[7] == "v360/index.m3u8"


def test_media_playlist(timeline):
    text = hls.media_playlist(timeline, timeline.tracks[2])
    assert "#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:10\n" in text
    assert '#EXT-X-MAP:URI="init.mp4"' in text
    assert "#EXT-X-PROGRAM-DATE-TIME:2026-01-01T12:00:20.000Z\n#EXTINF:2.000,\n10.m4s" in text
    assert text.count("#EXTINF:2.000,") == 6 and "#EXT-X-ENDLIST" not in text and "#EXT-X-DISCONTINUITY" not in text


def test_discontinuity_and_end_of_a_stopped_channel():
    timeline = ladder_timeline(state="stopped", discontinuity_at=13)
    text = hls.media_playlist(timeline, timeline.tracks[0])
    assert "#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-01-01T12:00:26.000Z\n#EXTINF:2.000,\n13.m4s" in text
    assert text.endswith("#EXT-X-ENDLIST\n")


def expand(template):
    rows, time = [], 0
    for s in template.find("m:SegmentTimeline", NS):
        time = int(s.get("t", time))
        for _ in range(int(s.get("r", 0)) + 1):
            rows.append((time, int(s.get("d"))))
            time += int(s.get("d"))
    return rows


def test_dynamic_mpd(timeline):
    root = ET.fromstring(dash.mpd(timeline, time_url="http://h/time", now=datetime.now(timezone.utc)))
    assert root.get("type") == "dynamic" and root.get("availabilityStartTime") == "2026-01-01T12:00:00.000Z"
    assert root.get("timeShiftBufferDepth") == "PT60S" and root.get("minimumUpdatePeriod") == "PT2S"
    video, audio = root.findall(".//m:AdaptationSet", NS)
    assert [r.get("id") for r in video.findall("m:Representation", NS)] == ["v720", "v360"]
    assert video.find("m:Representation", NS).get("frameRate") == "30"
    assert expand(video.find("m:SegmentTemplate", NS)) == [(n * 180000, 180000) for n in range(10, 16)]
    assert expand(audio.find("m:SegmentTemplate", NS)) == [(n * 96000, 96000) for n in range(10, 16)]
    assert video.find("m:SegmentTemplate", NS).get("media") == "$RepresentationID$/t$Time$.m4s"
    assert root.find("m:UTCTiming", NS).get("value") == "http://h/time"


def test_static_mpd_after_stop():
    root = ET.fromstring(
        dash.mpd(ladder_timeline(state="stopped"), time_url="http://h/time", now=datetime.now(timezone.utc))
    )
    assert root.get("type") == "static" and root.get("mediaPresentationDuration") == "PT12S"
    assert root.find("m:UTCTiming", NS) is None
    for template in root.iter(f"{{{NS['m']}}}SegmentTemplate"):
        first = int(template.find("m:SegmentTimeline/m:S", NS).get("t"))
        assert int(template.get("presentationTimeOffset")) == first, "the recording presents from 0 to its duration"
    live = ET.fromstring(dash.mpd(ladder_timeline(), time_url="http://h/time", now=datetime.now(timezone.utc)))
    assert all(t.get("presentationTimeOffset") is None for t in live.iter(f"{{{NS['m']}}}SegmentTemplate")), (
        "live: times from availabilityStartTime"
    )


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([(0, 10), (10, 10), (20, 10)], '<S t="0" d="10" r="2"/>'),
        ([(0, 10), (10, 9), (19, 10)], '<S t="0" d="10"/><S d="9"/><S d="10"/>'),
        ([(0, 10), (50, 10), (60, 10)], '<S t="0" d="10"/><S t="50" d="10" r="1"/>'),  # a gap restates t
        ([], ""),
    ],
)
def test_segment_timeline_run_lengths(rows, expected):
    assert dash.segment_timeline(rows) == expected


def test_ntsc_frame_rates():
    assert dash.frame_rate_attribute("29.970") == "30000/1001" and dash.frame_rate_attribute("25") == "25"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 10)),
        ("bytes=5-", (5, 100)),
        ("bytes=-10", (90, 100)),
        ("bytes=90-200", (90, 100)),
        ("items=0-1", None),
        ("bytes=0-1,5-6", None),
    ],
)
def test_ranges(header, expected):
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=-0", "bytes=50-40"])
def test_unsatisfiable_ranges(header):
    with pytest.raises(UnsatisfiableRange):
        parse_range(header, 100)


def test_a_discontinuity_that_reached_the_top_of_the_window_is_counted_not_lost():
    timeline = ladder_timeline(discontinuity_at=10)
    timeline.tracks[0].numbers_skipped = 4
    text = hls.media_playlist(timeline, timeline.tracks[0])
    assert "#EXT-X-MEDIA-SEQUENCE:6\n#EXT-X-DISCONTINUITY-SEQUENCE:1\n" in text
    assert "#EXT-X-DISCONTINUITY\n" not in text


def with_captions(timeline, channels_by_track):
    for track in timeline.tracks:
        track.info = track.info.model_copy(update={"captions": channels_by_track.get(track.info.id, [])})
    return timeline


def test_closed_captions_are_signalled_only_where_the_video_carries_them(timeline):
    assert "CLOSED-CAPTIONS" not in hls.multivariant_playlist(timeline)
    assert "Accessibility" not in dash.mpd(timeline, time_url="http://h/time", now=datetime.now(timezone.utc))
    with_captions(timeline, {"v720": ["CC1", "CC3"], "v360": ["CC1"]})
    for text in (hls.multivariant_playlist(timeline), hls.multivariant_playlist(timeline, ts=True)):
        lines = text.splitlines()
        assert [line for line in lines if "TYPE=CLOSED-CAPTIONS" in line] == [
            '#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="CC1",INSTREAM-ID="CC1",AUTOSELECT=YES',
            '#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="CC3",INSTREAM-ID="CC3",AUTOSELECT=YES',
        ]
        variants = [line for line in lines if line.startswith("#EXT-X-STREAM-INF:")]
        assert len(variants) == 2 and all(line.endswith(',CLOSED-CAPTIONS="cc"') for line in variants)
    root = ET.fromstring(dash.mpd(timeline, time_url="http://h/time", now=datetime.now(timezone.utc)))
    video, audio = root.findall(".//m:AdaptationSet", NS)
    [accessibility] = video.findall("m:Accessibility", NS)
    assert accessibility.attrib == {"schemeIdUri": "urn:scte:dash:cc:cea-608:2015", "value": "CC1=und;CC3=und"}
    assert audio.find("m:Accessibility", NS) is None


def _with_cues(timeline):
    """A break out at 23.5 s (1.5 s into segment 11) for 30 s, back in at 27.1 s, and a lone in at 31 s."""
    out = splice_insert_section(event_id=7, out=True, pts=1, duration=30 * 90_000)
    back = splice_insert_section(event_id=7, out=False, pts=2, duration=None)
    timeline.cues = [
        TimelineCue.placed(Cue(90_000, 0, True, 30 * 90_000, 7, out), time=int(23.5 * 90_000), timescale=90_000),
        TimelineCue.placed(Cue(30, 0, False, None, 7, back), time=int(27.1 * 30), timescale=30),
        TimelineCue.placed(Cue(90_000, 0, False, None, 9, back), time=31 * 90_000, timescale=90_000),
    ]
    return timeline, out, back


def test_cues_become_dateranges_before_the_segment_of_their_splice():
    timeline, out, back = _with_cues(ladder_timeline())
    text = hls.media_playlist(timeline, timeline.tracks[2])
    opened = (
        '#EXT-X-DATERANGE:ID="splice-7-2115000",START-DATE="2026-01-01T12:00:23.500Z",PLANNED-DURATION=30.000,'
        f"SCTE35-OUT=0x{out.hex().upper()}\n#EXTINF:2.000,\n11.m4s"
    )
    assert opened in text
    closed = (
        '#EXT-X-DATERANGE:ID="splice-7-2115000",START-DATE="2026-01-01T12:00:23.500Z",'
        f'END-DATE="2026-01-01T12:00:27.100Z",SCTE35-IN=0x{back.hex().upper()}\n#EXTINF:2.000,\n13.m4s'
    )
    assert closed in text, "the in repeats its out's ID and START-DATE, with an END-DATE"
    assert (
        f'ID="splice-9-2790000",START-DATE="2026-01-01T12:00:31.000Z",SCTE35-IN=0x{back.hex().upper()}\n#EXTINF' in text
    )
    assert text.count("#EXT-X-DATERANGE") == 3


def test_cues_become_an_scte35_event_stream():
    timeline, out, _ = _with_cues(ladder_timeline())
    root = ET.fromstring(dash.mpd(timeline, time_url="http://h/time", now=datetime.now(timezone.utc)))
    period = root.find("m:Period", NS)
    stream = period.find("m:EventStream", NS)
    assert list(period).index(stream) == 0, "before the adaptation sets, as the schema orders them"
    assert stream.get("schemeIdUri") == "urn:scte:scte35:2014:xml+bin" and stream.get("timescale") == "90000"
    events = stream.findall("m:Event", NS)
    assert [(e.get("presentationTime"), e.get("duration")) for e in events] == [
        (str(int(23.5 * 90_000)), str(30 * 90_000)),
        (str(int(27.1 * 30) * 3000), None),
        (str(31 * 90_000), None),
    ]
    binary = events[0].find("{http://www.scte.org/schemas/35/2016}Signal/{http://www.scte.org/schemas/35/2016}Binary")
    assert base64.b64decode(binary.text) == out
    stopped = _with_cues(ladder_timeline(state="stopped"))[0]
    on_demand = ET.fromstring(dash.mpd(stopped, time_url="http://h/time", now=datetime.now(timezone.utc)))
    assert on_demand.find("m:Period/m:EventStream", NS).get("presentationTimeOffset") == str(10 * 180000)


def two_languages() -> tuple:
    """The ladder with the contribution's audio in English and a second audio track in Spanish,
    listed before it (as a merge may leave them) and peaking higher."""
    timeline = ladder_timeline()
    english = next(t for t in timeline.tracks if t.info.kind == "audio")
    english.info = english.info.model_copy(update={"language": "eng"})
    spanish = english.model_copy(
        update={"info": english.info.model_copy(update={"id": "audio-1", "language": "spa"}), "peak_bandwidth": 200_000}
    )
    timeline.tracks.insert(0, spanish)
    return timeline, english, spanish


def test_each_language_is_an_audio_rendition_of_the_one_group_and_the_first_is_the_default():
    timeline, _, _ = two_languages()
    lines = hls.multivariant_playlist(timeline).splitlines()
    assert lines[3:5] == [
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="eng",LANGUAGE="eng",DEFAULT=YES,AUTOSELECT=YES,'
        'CHANNELS="2",URI="audio/index.m3u8"',
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="spa",LANGUAGE="spa",DEFAULT=NO,AUTOSELECT=YES,'
        'CHANNELS="2",URI="audio-1/index.m3u8"',
    ]
    # the variant's BANDWIDTH counts the language that peaks highest; one codec listed once
    assert lines[5].startswith(
        '#EXT-X-STREAM-INF:BANDWIDTH=1700000,AVERAGE-BANDWIDTH=1628000,CODECS="avc1.64001f,mp4a.40.2"'
    )
    assert hls.multivariant_playlist(timeline, ts=True).count("mp4a") == 2, "MPEG-TS segments: the first audio only"
    assert "#EXTINF:2.000,\n10.m4s" in hls.media_playlist(timeline, timeline.tracks[0])


def test_audio_tracks_sharing_a_language_keep_distinct_names():
    timeline, _, spanish = two_languages()
    spanish.info = spanish.info.model_copy(update={"language": "eng"})
    text = hls.multivariant_playlist(timeline)
    assert 'NAME="eng",LANGUAGE="eng"' in text and 'NAME="eng (audio-1)",LANGUAGE="eng"' in text


def test_each_language_is_an_adaptation_set_with_its_lang():
    timeline, _, _ = two_languages()
    root = ET.fromstring(dash.mpd(timeline, time_url="http://h/time", now=datetime.now(timezone.utc)))
    _, english, spanish = root.findall(".//m:AdaptationSet", NS)
    assert [(a.get("id"), a.get("lang")) for a in (english, spanish)] == [("1", "eng"), ("2", "spa")]
    assert [a.find("m:Representation", NS).get("id") for a in (english, spanish)] == ["audio", "audio-1"]
    assert expand(spanish.find("m:SegmentTemplate", NS)) == [(n * 96000, 96000) for n in range(10, 16)]
    # The first language is the one players start with, as HLS's DEFAULT=YES says, though Spanish peaks higher
    # (and dash.js would otherwise start with the highest bitrate).
    roles = [a.find("m:Role", NS).get("value") for a in (english, spanish)]
    assert roles == ["main", "alternate"] and english.find("m:Role", NS).get("schemeIdUri") == "urn:mpeg:dash:role:2011"
    assert [a.get("selectionPriority") for a in (english, spanish)] == ["2", None]
    assert [child.tag.split("}")[1] for child in english] == [
        "AudioChannelConfiguration",
        "Role",
        "SegmentTemplate",
        "Representation",
    ], "in the schema's order"


def test_a_single_audio_track_has_no_role_or_priority():
    root = ET.fromstring(dash.mpd(ladder_timeline(), time_url="http://h/time", now=datetime.now(timezone.utc)))
    audio = [a for a in root.findall(".//m:AdaptationSet", NS) if a.get("contentType") == "audio"]
    assert len(audio) == 1 and audio[0].find("m:Role", NS) is None and audio[0].get("selectionPriority") is None


def test_a_channel_start_offset_asks_standard_hls_players_to_start_that_far_from_the_end(timeline):
    tag = "#EXT-X-START:TIME-OFFSET=-4.500"
    assert "EXT-X-START" not in hls.multivariant_playlist(timeline), "unset: players choose"
    timeline.hls_start_offset_ms = 4500
    # in both playlists: hls.js takes the multivariant playlist's, other players the media playlist's
    for text in (
        hls.multivariant_playlist(timeline),
        hls.multivariant_playlist(timeline, ts=True),
        hls.media_playlist(timeline, timeline.tracks[2]),
        hls.media_playlist(timeline, timeline.tracks[2], ts=True),
    ):
        assert text.splitlines().count(tag) == 1 and text.count("EXT-X-START") == 1, text
    assert "EXT-X-START" not in hls.multivariant_playlist(timeline, low_latency=True), (
        "LL-HLS players start PART-HOLD-BACK behind the edge"
    )
    over = hls.media_playlist(timeline, timeline.tracks[2], start_over=True)
    assert "#EXT-X-START:TIME-OFFSET=0,PRECISE=YES" in over and tag not in over, "?startover wins"
    timeline.state = "stopped"
    ended = hls.media_playlist(timeline, timeline.tracks[2])
    assert "#EXT-X-ENDLIST" in ended and "EXT-X-START" not in ended, "on demand: from the start, as players do"

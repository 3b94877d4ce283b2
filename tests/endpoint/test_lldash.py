"""The low-latency MPD's rules (kubecast.endpoint.lldash): what lets dash.js ask for a segment
while it is being written and hold a latency, and what keeps the standard MPD as it was."""

import xml.etree.ElementTree as ET
from datetime import datetime, timezone

import pytest
from timeline_fixtures import ladder_timeline

from kubecast.endpoint import dash
from kubecast.endpoint.lldash import LowLatencyDash

NS = {"m": "urn:mpeg:dash:schema:mpd:2011"}
NOW = datetime(2026, 1, 1, 12, 0, 31, tzinfo=timezone.utc)
LL = LowLatencyDash(segment_duration_ms=2000, part_duration_ms=500)


def render(timeline=None, **options):
    timeline = timeline or ladder_timeline()
    return ET.fromstring(dash.mpd(timeline, time_url="http://h/time", now=NOW, **options))


def templates(root):
    return [s.find("m:SegmentTemplate", NS) for s in root.findall(".//m:AdaptationSet", NS)]


def test_every_segment_is_asked_for_by_number_one_part_after_its_start_and_is_not_complete_then():
    root = render(low_latency=LL)
    assert root.get("type") == "dynamic"
    timescales = []
    for template in templates(root):
        timescale = int(template.get("timescale"))
        timescales.append(timescale)
        assert int(template.get("duration")) == 2 * timescale
        assert template.get("startNumber") == "0"
        # relative to /live/<channel>/ll/manifest.mpd: the chunked route, and the standard init segment
        assert template.get("media") == "dash/$RepresentationID$/$Number$.m4s"
        assert template.get("initialization") == "../$RepresentationID$/init.mp4"
        assert float(template.get("availabilityTimeOffset")) == pytest.approx(1.5)
        assert template.get("availabilityTimeComplete") == "false"
        assert template.find("m:SegmentTimeline", NS) is None, "the open segment is never in a timeline"
    assert sorted(timescales) == [48000, 90000], "video and audio"


def test_segment_numbers_address_the_timelines_segments():
    """$Number$ n at time n*duration is segment n of the timeline: the rule the LL MPD rests on."""
    timeline = ladder_timeline()
    root = render(timeline, low_latency=LL)
    durations = {int(t.get("timescale")): int(t.get("duration")) for t in templates(root)}
    for track in timeline.tracks:
        duration = durations[track.info.timescale]
        assert [row.start for row in track.segments] == [row.number * duration for row in track.segments]


def test_the_service_description_sets_a_latency_target_counted_from_the_producer_reference_time():
    root = render(low_latency=LL)
    children = [child.tag.split("}")[1] for child in root]
    assert children.index("ServiceDescription") < children.index("Period"), "schema order: before the Period"
    latency = root.find("m:ServiceDescription/m:Latency", NS)
    assert int(latency.get("target")) == 2000 and int(latency.get("max")) == 4000
    rate = root.find("m:ServiceDescription/m:PlaybackRate", NS)
    assert 0.9 < float(rate.get("min")) < 1 < float(rate.get("max")) < 1.1
    for adaptation_set in root.findall(".//m:AdaptationSet", NS):
        reference = adaptation_set.find("m:ProducerReferenceTime", NS)
        assert reference.get("id") == latency.get("referenceId")
        # presentation time 0 was made at availabilityStartTime: latency counts from the channel's clock
        assert reference.get("wallClockTime") == root.get("availabilityStartTime") == "2026-01-01T12:00:00.000Z"
        assert reference.get("presentationTime") == "0" and reference.get("type") == "encoder"
        tags = [child.tag.split("}")[1] for child in adaptation_set]
        assert tags.index("ProducerReferenceTime") < tags.index("SegmentTemplate")


def test_the_clock_to_synchronise_with_and_a_buffer_of_two_parts():
    root = render(low_latency=LL)
    timing = root.find("m:UTCTiming", NS)
    assert timing.get("schemeIdUri") == "urn:mpeg:dash:utc:http-iso:2014" and timing.get("value") == "http://h/time"
    assert root.get("minBufferTime") == "PT1S"


def test_the_target_follows_the_part_duration():
    ll = LowLatencyDash(segment_duration_ms=4000, part_duration_ms=1000)
    root = render(low_latency=ll)
    assert root.find("m:ServiceDescription/m:Latency", NS).get("target") == "4000"
    assert {t.get("availabilityTimeOffset") for t in templates(root)} == {"3"}


def test_the_standard_mpd_says_nothing_of_low_latency():
    text = dash.mpd(ladder_timeline(), time_url="http://h/time", now=NOW)
    for word in ("ServiceDescription", "ProducerReferenceTime", "availabilityTime", "$Number$", "\n\n"):
        assert word not in text
    assert ET.fromstring(text).get("minBufferTime") == "PT4S"


def test_no_low_latency_mpd_for_a_stopped_channel_or_with_content_protection():
    with pytest.raises(ValueError, match="live channel"):
        render(ladder_timeline(state="stopped"), low_latency=LL)
    protection = dash.DashProtection("cenc", bytes(16), license_url="http://h/keys")
    with pytest.raises(ValueError, match="content protection"):
        render(low_latency=LL, protection=protection)


@pytest.mark.parametrize("segment_ms, part_ms", [(2000, 2000), (2000, 0), (2000, 2500)])
def test_a_part_is_shorter_than_its_segment(segment_ms, part_ms):
    with pytest.raises(ValueError, match="shorter"):
        LowLatencyDash(segment_duration_ms=segment_ms, part_duration_ms=part_ms)


def test_a_segment_duration_that_is_no_whole_number_of_ticks_is_refused():
    with pytest.raises(ValueError, match="whole number of ticks"):
        LowLatencyDash(segment_duration_ms=1001, part_duration_ms=500).template(44100)


def test_the_time_shift_buffer_is_what_is_listed_while_the_channel_is_younger_than_its_window():
    """Segments are by number: the depth is all an MPD says of what exists.  Six listed segments of
    2 s against a window of 60 s: 12 s (ffmpeg asks for the same segment forever when a depth goes
    back before availabilityStartTime); the standard MPD lists its segments and keeps the window."""
    assert render(low_latency=LL).get("timeShiftBufferDepth") == "PT12S"
    assert render().get("timeShiftBufferDepth") == "PT60S"
    assert render(ladder_timeline(numbers=range(0, 40)), low_latency=LL).get("timeShiftBufferDepth") == "PT60S"

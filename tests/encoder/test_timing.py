from datetime import datetime, timedelta, timezone

from kubecast.encoder.segmenter import TimedSample, TrackSegmenter
from kubecast.encoder.timing import ConnectionClock, first_segment_of_connection
from kubecast.media.mp4 import parse_media_segment

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_first_connection_starts_at_the_boundary_at_or_before_now():
    assert first_segment_of_connection(availability_start=START, now=START + timedelta(milliseconds=10), segment_duration_ms=2000, last_written=None) == 0
    assert first_segment_of_connection(availability_start=START, now=START + timedelta(seconds=5), segment_duration_ms=2000, last_written=None) == 2


def test_reconnect_never_reuses_a_number():
    # media time ran ahead of the clock (a fast publisher): numbering still only increases
    assert first_segment_of_connection(availability_start=START, now=START + timedelta(seconds=5), segment_duration_ms=2000, last_written=7) == 8
    # a long gap: media time catches up with the clock
    assert first_segment_of_connection(availability_start=START, now=START + timedelta(seconds=61), segment_duration_ms=2000, last_written=7) == 30


def test_clock_keeps_the_contribution_timing():
    clock = ConnectionClock(first_segment=5, segment_duration_ms=2000)
    assert clock.media_time(1000) == 10 * 90000  # first timestamp -> the boundary, whatever its value
    assert clock.media_time(1033) == 10 * 90000 + 33 * 90
    assert clock.media_time(1500, 48000) == 10 * 48000 + 24000


def test_video_segments_cut_at_key_frames_on_boundaries():
    segmenter = TrackSegmenter(90000, 2000, video=True, default_duration=3000)
    out = []
    for frame in range(150):  # 5 s at 30 fps, key frame every second
        out += segmenter.push(TimedSample(frame * 3000, 0, frame % 30 == 0, b"x"))
    out += segmenter.flush()
    assert [(s.number, s.start, s.duration) for s in out] == [(0, 0, 180000), (1, 180000, 180000), (2, 360000, 90000)]
    base, samples = parse_media_segment(out[1].data)
    assert base == 180000 and len(samples) == 60 and samples[0].keyframe and not samples[1].keyframe


def test_leading_non_key_frames_are_dropped_and_discontinuity_marked():
    segmenter = TrackSegmenter(90000, 2000, video=True, default_duration=3000)
    segmenter.mark_discontinuity()
    out = []
    for frame in range(10, 130):
        out += segmenter.push(TimedSample(frame * 3000, 0, frame % 60 == 0, b"x"))
    out += segmenter.flush()
    assert [s.number for s in out] == [1, 2]
    assert out[0].start == 180000 and out[0].discontinuity and not out[1].discontinuity


def test_audio_segments_start_at_the_first_frame_past_the_boundary():
    segmenter = TrackSegmenter(48000, 2000, video=False, default_duration=1024)
    out = []
    for frame in range(200):
        out += segmenter.push(TimedSample(frame * 1024, 0, True, b"a"))
    assert [(s.number, s.start) for s in out] == [(0, 0), (1, 96256)]
    assert out[0].start + out[0].duration == out[1].start


def test_default_presets_follow_the_measured_budget():
    from kubecast.api import PRESETS
    from kubecast.encoder.ladder import default_x264_preset

    assert default_x264_preset(PRESETS["Default720p"]) == "superfast"
    assert default_x264_preset(PRESETS["Default1080p"]) == "ultrafast"
    assert default_x264_preset(PRESETS["Default720p"][2:]) == "veryfast"

from datetime import datetime, timezone
from fractions import Fraction

from kubecast.encoder.segmenter import EpochEnd, PendingEnd, TimedSample, TrackSegmenter, epoch_end
from kubecast.encoder.timing import ConnectionClock, Placement, first_complete_segment, place_connection
from kubecast.media.mp4 import parse_media_segment
from kubecast.storage import Epoch

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def epoch(number: int, offset_ms: int, first_segment: int) -> Epoch:
    return Epoch(epoch=number, offset_ms=offset_ms, first_segment=first_segment, created=START, instance="A")


def place(latest=None, *, first=0, now_ms, last=None):
    return place_connection(
        latest=latest, first_timestamp_ms=first, now_media_ms=now_ms, segment_duration_ms=2000, last_number=last
    )


def test_first_connection_starts_an_epoch_at_the_boundary_at_or_before_now():
    assert place(now_ms=10) == Placement(0, 0, 0, joined=False)
    placement = place(first=300, now_ms=5000)
    assert placement == Placement(0, 4000 - 300, 2, joined=False) and not placement.discontinuity


def test_the_other_path_of_the_same_contribution_joins_the_epoch():
    creator = place(first=300, now_ms=5000)
    # Encoder B sees the same first timestamp 150 ms later: same offset, same numbers.
    other = place(epoch(creator.epoch, creator.offset_ms, creator.first_segment), first=300, now_ms=5150)
    assert other.joined and other.offset_ms == creator.offset_ms
    # An encoder restarted 40 s into the stream receives timestamps from there on.
    late = place(epoch(creator.epoch, creator.offset_ms, creator.first_segment), first=40_300, now_ms=45_100)
    assert late.joined and late.offset_ms == creator.offset_ms


def test_a_restarted_publisher_starts_a_new_epoch_after_the_last_number():
    latest = epoch(0, 3700, 2)
    # Timestamps restart at 0 sixty seconds later: they do not fit epoch 0.
    placement = place(latest, first=0, now_ms=65_000, last=31)
    assert placement == Placement(1, 32 * 2000, 32, joined=False, discontinuity=True)
    # A publisher restarted at once (or a file sent faster than real time) lands near "now"
    # but before what this encoder already wrote: a new epoch too.
    started = epoch(0, 4000, 2)
    assert place(started, first=0, now_ms=5_000, last=3).joined is True  # as far as the clock can tell
    assert (
        place_connection(
            latest=started,
            first_timestamp_ms=0,
            now_media_ms=5_000,
            segment_duration_ms=2000,
            last_number=3,
            own_last=3,
        ).epoch
        == 1
    )
    # Media time ran ahead of the clock: numbering still only increases.
    assert place(latest, first=0, now_ms=20_000, last=31).first_segment == 32


JOINED = ConnectionClock(Placement(0, 0, 0, joined=True))


def test_a_joining_connection_keeps_only_segments_it_holds_whole():
    assert first_complete_segment(2 * 180000, 2000, 90000) == 2
    assert first_complete_segment(2 * 180000 + 1, 2000, 90000) == 3
    assert JOINED.first_segment(2 * 180000, 90000, 2000) == 2 and JOINED.first_segment(2 * 180000 + 1, 90000, 2000) == 3
    segmenter = TrackSegmenter(90000, 2000, video=True, default_duration=3000, clock=JOINED)
    out = []
    for frame in range(70, 190):  # joins at 2.33 s, a key frame every second
        out += segmenter.push(TimedSample(frame * 3000, 0, frame % 30 == 0, b"x"))
    out += segmenter.flush()
    assert [s.number for s in out] == [2, 3] and out[0].start == 360000


def test_every_track_of_a_joining_connection_drops_by_the_same_rule():
    # Audio at 3.999 s and video at 4.010 s: each drops what comes before the first boundary it holds
    # whole (the other encoder has those segments), so the audio starts at 4 s and the video at 6 s.
    audio = TrackSegmenter(48000, 2000, video=False, default_duration=1024, clock=JOINED)
    video = TrackSegmenter(90000, 2000, video=True, default_duration=3000, clock=JOINED)
    out_audio = [s for k in range(300) for s in audio.push(TimedSample(191952 + k * 1024, 0, True, b"a"))]
    out_video = [s for k in range(200) for s in video.push(TimedSample(360900 + k * 3000, 0, k % 30 == 0, b"v"))]
    assert [s.number for s in out_audio][:1] == [2] and out_audio[0].start == 191952 + 1024 * 1
    assert [s.number for s in out_video][:1] == [3]
    opened = ConnectionClock(Placement(1, 0, 11, joined=False, discontinuity=True))
    assert opened.first_segment(21 * 90000, 90000, 2000) == 11, "never before the epoch's first segment"
    assert opened.first_segment(25 * 90000, 90000, 2000) == 12


def test_audio_frames_sit_on_one_grid_whatever_the_first_timestamp():
    from kubecast.encoder.audio import on_frame_grid

    assert on_frame_grid(96000) == 96256 and on_frame_grid(96000 + 40) == 96256 and on_frame_grid(95700) == 95232
    # Counted from the epoch's first boundary (segment 1 of 2 s at 48 kHz), the first frame of a
    # contribution whose audio starts with its video lands on that boundary, not 256 samples later.
    assert on_frame_grid(96000, origin=96000) == 96000 and on_frame_grid(96000 + 500, origin=96000) == 96000
    assert (
        on_frame_grid(96000 + 600, origin=96000) == 97024
        and on_frame_grid(96000 + 10 * 1024 + 3, origin=96000) == 96000 + 10 * 1024
    )


def _ends(video_frames: range, audio_frames: range) -> tuple[list, list]:
    video = TrackSegmenter(90000, 2000, video=True, default_duration=3000)
    audio = TrackSegmenter(48000, 2000, video=False, default_duration=1024)
    out_video = [s for frame in video_frames for s in video.push(TimedSample(frame * 3000, 0, frame % 60 == 0, b"v"))]
    out_audio = [s for frame in audio_frames for s in audio.push(TimedSample(frame * 1024, 0, True, b"a"))]
    end = epoch_end([video.pending, audio.pending])
    return out_video + video.finish(end), out_audio + audio.finish(end)


def test_every_track_ends_at_the_same_segment_number_and_time():
    # The audio runs 43 ms past the video's last segment: two frames into segment 2.
    video, audio = _ends(range(120), range(192000 // 1024 + 3))
    assert [s.number for s in video] == [s.number for s in audio] == [0, 1], "no audio sliver in segment 2"
    assert video[-1].final and not audio[-1].final, "the audio's segment 1 was complete: only its sliver is gone"
    # The video has one picture (33 ms) in segment 2 and the audio 70 ms: both end there, the
    # audio cut to the frames that start before the video's end.
    video, audio = _ends(range(121), range(192000 // 1024 + 5))
    assert [s.number for s in video] == [s.number for s in audio] == [0, 1, 2]
    ends = [Fraction(s.start + s.duration, scale) for s, scale in ((video[-1], 90000), (audio[-1], 48000))]
    assert ends[0] == Fraction(4) + Fraction(1, 30) and abs(ends[1] - ends[0]) < Fraction(1024, 48000)
    # The video's last picture ends before the audio's first frame of segment 2 starts.
    assert epoch_end(
        [
            PendingEnd(2, Fraction(4), Fraction(4) + Fraction(1, 100)),
            PendingEnd(2, Fraction(4) + Fraction(2, 100), Fraction(5)),
        ]
    ) == EpochEnd(1, None)


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


def test_a_track_learns_the_placement_when_it_is_made():
    clock = ConnectionClock(Placement(1, 64_000, 32, joined=False, discontinuity=True))
    segmenter = TrackSegmenter(48000, 2000, video=False, default_duration=1024, clock=clock)
    assert segmenter._discontinuity, "the first segment follows the gap before the new epoch"
    assert not TrackSegmenter(48000, 2000, video=False, default_duration=1024)._discontinuity


def test_audio_ahead_of_the_frame_that_opened_an_epoch_makes_no_sliver_segment():
    # Video at 21 ms placed the connection: epoch starts at segment 11 (22 s) with offset 21979 ms,
    # so audio from 0 ms maps to 21.979 s, just before the epoch's first boundary.
    clock = ConnectionClock(Placement(1, 22_000 - 21, 11, joined=False, discontinuity=True))
    segmenter = TrackSegmenter(48000, 2000, video=False, default_duration=1024, clock=clock)
    out = []
    for frame in range(200):
        out += segmenter.push(TimedSample(clock.media_time(frame * 1024 * 1000 // 48000, 1000, 48000), 0, True, b"a"))
    assert [s.number for s in out] == [11, 12] and out[0].discontinuity
    assert out[0].start >= 22 * 48000


def test_a_source_duration_ends_the_last_segment_and_source_ticks_map_exactly():
    """The last sample of a contribution lasts what its source said (a CMAF push's trun), not the
    default; and source ticks map onto the channel clock by one constant where the timescales allow."""
    segmenter = TrackSegmenter(
        15360, 2000, video=True, default_duration=512, clock=ConnectionClock(Placement(0, 0, 0, joined=False))
    )
    for index in range(3):
        segmenter.push(TimedSample(index * 500, 0, index == 0, b"v", duration=500))
    (segment,) = segmenter.flush()
    assert [s.duration for s in parse_media_segment(segment.data)[1]] == [500, 500, 500]
    assert segment.duration == 1500
    first_ms = 1_234_567 * 1000 // 15360  # the session places the connection with its first frame, in ms
    clock = ConnectionClock(Placement(epoch=0, offset_ms=4000 - first_ms, first_segment=2, joined=False))
    first = clock.media_time(1_234_567, 15360, 15360)  # 80.375... s: not a whole millisecond
    assert first >= 4 * 15360, "never before the boundary the connection was placed on"
    assert [clock.media_time(1_234_567 + n * 511, 15360, 15360) - first for n in range(4)] == [0, 511, 1022, 1533]
    assert clock.media_time(90_000 * 7 + 1, 90_000, 90_000) - clock.media_time(90_000 * 7, 90_000, 90_000) == 1

"""Recording programs from the channel's timeline (pure)."""

from datetime import timedelta

from merge_fixtures import AST, progress, run

from kubecast.storage import ProgramRecord
from kubecast.storage.programs import record


def program(state="Running", window=10.0):
    return ProgramRecord(name="p1", channel="c", locator="loc", archive_window_seconds=window, state=state)


def numbers(timeline):
    return [row.number for row in timeline.tracks[0].segments]


def test_a_program_starts_at_the_live_edge_grows_slides_and_freezes_when_stopped():
    channel = run(None, A=progress("A", [10, 11, 12])).timeline
    recorded, changed = record(None, program(), channel, AST)
    assert (
        changed and numbers(recorded) == [12] and recorded.tracks[0].media_sequence() == 0 and recorded.state == "live"
    )
    channel = run(channel, A=progress("A", [10, 11, 12, 13, 14, 15, 16, 17, 18])).timeline
    recorded, changed = record(recorded, program(window=10.0), channel, AST)
    assert changed and numbers(recorded) == [14, 15, 16, 17, 18], "the archive window (10 s) slides"
    assert recorded.tracks[0].media_sequence() == 2, "HLS sequence numbers stay consecutive as it slides"
    assert record(recorded, program(), channel, AST)[1] is False, "nothing new, nothing written"
    stopped, changed = record(recorded, program("Stopped"), channel, AST + timedelta(seconds=5))
    assert changed and stopped.state == "stopped" and numbers(stopped) == [14, 15, 16, 17, 18]
    later = run(channel, A=progress("A", list(range(10, 25)))).timeline
    assert record(stopped, program("Running"), later, AST)[1] is False and numbers(stopped)[-1] == 18, (
        "a stopped program never records again"
    )


def test_a_program_stopped_takes_what_its_channel_lists_by_then():
    """Endpoints list a running program as far as its channel: the recording must not end short."""
    channel = run(None, A=progress("A", [10, 11, 12])).timeline
    recorded, _ = record(None, program(), channel, AST)
    channel = run(channel, A=progress("A", [10, 11, 12, 13, 14])).timeline
    stopped, changed = record(recorded, program("Stopped"), channel, AST)
    assert changed and stopped.state == "stopped" and numbers(stopped) == [12, 13, 14]


def test_a_program_asks_players_to_start_where_its_channel_does():
    channel = run(None, A=progress("A", [10, 11, 12])).timeline
    channel.hls_start_offset_ms = 4000
    recorded, _ = record(None, program(), channel, AST)
    assert recorded.hls_start_offset_ms == 4000
    channel = run(channel, A=progress("A", [10, 11, 12, 13])).timeline
    channel.hls_start_offset_ms = None  # the channel's spec changed
    recorded, changed = record(recorded, program(), channel, AST)
    assert changed and recorded.hls_start_offset_ms is None


def test_a_program_keeps_what_the_live_window_drops_and_marks_a_gap():
    channel = run(None, A=progress("A", [10])).timeline
    recorded, _ = record(None, program(window=3600), channel, AST)
    for last in range(11, 60):
        channel = run(channel, A=progress("A", list(range(max(10, last - 5), last + 1)))).timeline
        recorded, _ = record(recorded, program(window=3600), channel, AST)
    assert numbers(recorded) == list(range(10, 60)), "50 segments, far more than the channel's window lists"
    channel = run(channel, A=progress("A", [70, 71])).timeline
    recorded, _ = record(recorded, program(window=3600), channel, AST)
    assert numbers(recorded)[-2:] == [70, 71] and recorded.tracks[0].segments[-2].discontinuity is True, (
        "a gap is a discontinuity"
    )


def test_a_program_stopped_before_it_ran_keeps_nothing():
    channel = run(None, A=progress("A", [10, 11])).timeline
    assert record(None, program("Stopped"), channel, AST) == (None, False)
    assert record(None, program(), None, AST) == (None, False), "no channel timeline yet"


def test_every_track_of_a_window_starts_at_the_same_number():
    """AAC segments alternate a frame longer and shorter, so trimming each track by time can
    keep one more audio segment at the front; players starting there would wait for video."""
    from kubecast.media.merge import align_starts
    from kubecast.media.timeline import TimelineTrack
    from kubecast.media.tracks import TrackInfo

    video = TimelineTrack(
        info=TrackInfo(id="v", kind="video", codecs="avc1", bandwidth=1, timescale=90000, init="i"),
        init_source="A",
        segments=[[n, n * 180000, 180000, 1, "A", False] for n in range(10, 40)],
    )
    audio = TimelineTrack(
        info=TrackInfo(id="a", kind="audio", codecs="mp4a", bandwidth=1, timescale=48000, init="i"),
        init_source="A",
        segments=[[n, n * 96000, 96000, 1, "A", n == 9] for n in range(9, 40)],
    )
    align_starts([video, audio])
    assert video.segments[0].number == audio.segments[0].number == 10 and len(audio.segments) == 30
    assert audio.media_sequence() == video.media_sequence() == 10 and audio.discontinuities_trimmed == 1

"""A program's recording, from its recorded timeline (pure)."""

from datetime import datetime, timedelta, timezone

from timeline_fixtures import AUDIO, video_track

from kubecast.api.status import ProgramStatus
from kubecast.media.recording import recording_of
from kubecast.media.timeline import Timeline, TimelineTrack

# availabilityStartTime in another zone, to see the range come out in UTC.
AST = datetime(2026, 1, 1, 13, 0, 0, tzinfo=timezone(timedelta(hours=1)))
VIDEO = video_track()


def rows(numbers, timescale, *, duration_s=2):
    d = duration_s * timescale
    return [[n, n * d, d, 1000, "A", False] for n in numbers]


def program_timeline(state="live", *, video=range(10, 16), audio=range(10, 16), ast=AST) -> Timeline:
    # Audio first: the range must come from the video track wherever it is listed.
    tracks = [TimelineTrack(info=AUDIO, init_source="A", segments=rows(audio, 48000))]
    if video is not None:
        tracks.append(TimelineTrack(info=VIDEO, init_source="A", segments=rows(video, 90000)))
    return Timeline(
        channel="news",
        state=state,
        updated=AST,
        availability_start_time=ast,
        segment_duration_ms=2000,
        window_ms=3_600_000,
        tracks=tracks,
    )


def test_a_running_program_is_recording_its_video_range_in_utc():
    recording = recording_of(program_timeline(video=range(11, 16), audio=range(10, 16)))
    assert recording.state == "Recording" and recording.segments == 5
    assert recording.start == datetime(
        2026, 1, 1, 12, 0, 22, tzinfo=timezone.utc
    ) and recording.start.utcoffset() == timedelta(0)
    assert recording.end == datetime(2026, 1, 1, 12, 0, 32, tzinfo=timezone.utc) and recording.duration_seconds == 10
    assert recording.to_wire() == {
        "state": "Recording",
        "start": "2026-01-01T12:00:22Z",
        "end": "2026-01-01T12:00:32Z",
        "durationSeconds": 10,
        "segments": 5,
    }
    assert recording.describe() == "Recording 2026-01-01T12:00:22Z – 2026-01-01T12:00:32Z (10s, 5 segments)"


def test_a_gap_is_in_the_range_but_not_in_the_duration():
    recording = recording_of(program_timeline(video=[10, 11, 40, 41]))
    assert (
        recording.to_wire()["end"] == "2026-01-01T12:01:24Z"
        and recording.duration_seconds == 8
        and recording.segments == 4
    )


def test_a_stopped_program_keeps_its_range():
    recording = recording_of(program_timeline("stopped"), program_stopped=True)
    assert recording.state == "Stopped" and recording.segments == 6
    assert (recording.to_wire()["start"], recording.to_wire()["end"]) == (
        "2026-01-01T12:00:20Z",
        "2026-01-01T12:00:32Z",
    )


def test_audio_only_programs_use_the_audio_track():
    recording = recording_of(program_timeline(video=None, audio=range(3, 5)))
    assert (
        recording.segments == 2
        and recording.to_wire()["start"] == "2026-01-01T12:00:06Z"
        and recording.duration_seconds == 4
    )


def test_nothing_recorded_yet_is_waiting():
    for recording in (recording_of(None), recording_of(program_timeline(video=[], audio=[]))):
        assert recording.state == "Waiting" and recording.segments == 0 and recording.duration_seconds == 0
        assert recording.to_wire() == {
            "state": "Waiting",
            "start": None,
            "end": None,
            "durationSeconds": 0.0,
            "segments": 0,
        }
        assert recording.describe() == "Waiting: nothing recorded yet"


def test_a_program_stopped_before_it_recorded_is_stopped_not_waiting_forever():
    assert recording_of(None, program_stopped=True).state == "Stopped"
    # ...but a timeline the packager has not frozen yet is still what it says
    assert recording_of(program_timeline("live"), program_stopped=True).state == "Recording"


def test_no_wall_clock_without_an_availability_start_time():
    recording = recording_of(program_timeline(ast=None))
    assert recording.segments == 6 and recording.start is None and recording.to_wire()["end"] is None


def test_the_wire_shape_is_the_program_status_model():
    for recording in (recording_of(None), recording_of(program_timeline("stopped"))):
        status = ProgramStatus.model_validate({"recording": recording.to_wire()})
        assert status.model_dump(by_alias=True)["recording"] == recording.to_wire()

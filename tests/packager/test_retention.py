"""Retention against a real store: only what no window needs is deleted (checked by listing)."""

from merge_fixtures import progress, run

from kubecast.media.timeline import SegmentRows
from kubecast.packager.retention import clean, collectable
from kubecast.storage import Store, layout


def program_timeline(numbers, *, window_ms, source="A"):
    timeline = run(None, A=progress("A", list(numbers))).timeline
    timeline.window_ms = window_ms
    for track in timeline.tracks:
        track.segments = SegmentRows(row._replace(source=source) for row in track.segments)
    return timeline


async def test_two_programs_and_the_live_window_keep_exactly_what_they_need(tmp_path):
    store = Store(str(tmp_path / "store"))
    for instance in ("A", "B"):
        for number in range(0, 200):
            await store.put(layout.segment_key("c", instance, "v", number), b"x")
    channel = run(None, A=progress("A", list(range(180, 200)))).timeline  # a 60 s live window
    long_program = program_timeline(range(100, 130), window_ms=120_000)  # recorded from encoder A, 2-minute window
    short_program = program_timeline(range(150, 155), window_ms=20_000, source="B")  # from encoder B, 20 s window
    deleted = await clean(store, channel, [long_program, short_program])
    kept = {
        (info.key.split("/")[3], int(info.key.rsplit("/", 1)[1].split(".")[0]))
        for info in await store.list("channels/c/encoders")
    }
    assert channel.tracks[0].segments[0].number == 180
    expected = {
        (i, n) for i in ("A", "B") for n in range(180 - 31, 200)
    }  # the live window and its grace (60 s + 1 segment), both copies
    expected |= {("A", n) for n in range(100, 130)} | {("B", n) for n in range(150, 155)}  # exactly the recorded copies
    expected |= {
        (i, n) for i in ("A", "B") for n in range(100 - 61, 100)
    }  # what the long program dropped within its grace
    expected |= {(i, n) for i in ("A", "B") for n in range(150 - 11, 150)}  # ... and the short one
    assert kept == expected and deleted == 400 - len(expected)
    assert ("B", 120) not in kept and ("A", 30) not in kept, (
        "the other copy of a recorded segment goes, and what slid out of every window"
    )


def test_nothing_is_collected_without_a_live_timeline_or_for_other_channels():
    assert collectable(["channels/c/encoders/A/v/1.m4s"], None, []) == []
    channel = run(None, A=progress("A", [500, 501])).timeline
    assert (
        collectable(
            [
                "channels/other/encoders/A/v/1.m4s",
                "channels/c/encoders/A/v/init-x.mp4",
                "channels/c/encoders/A/unknown/1.m4s",
            ],
            channel,
            [],
        )
        == []
    )
    assert collectable(["channels/c/encoders/A/v/1.m4s"], channel, []) == ["channels/c/encoders/A/v/1.m4s"]


async def test_a_recording_whose_program_record_is_damaged_keeps_its_segments(tmp_path):
    """After a packager restart a damaged program.json must not make its recording look
    unowned: retention goes by the recordings stored, and waits while one is unreadable."""
    from kubecast.packager.programs import ProgramRecorder

    store = Store(str(tmp_path / "store"))
    recording = program_timeline(range(100, 130), window_ms=120_000)
    await store.put(layout.program_key("c", "show"), b"{damaged")
    await store.put(layout.program_timeline_key("c", "show"), recording.to_json())
    recorder = ProgramRecorder(store, "c")
    channel = run(None, A=progress("A", list(range(180, 200)))).timeline
    await recorder.step(channel, channel.updated)
    kept = await recorder.kept()
    assert [t.tracks[0].segments[0].number for t in kept] == [100], "the recording is still owned"
    assert (await store.get(layout.program_timeline_key("c", "show"))) is not None, "and not released"
    await store.put(layout.program_timeline_key("c", "other"), b"not json")
    assert await recorder.kept() is None, "an unreadable recording: nothing is collected this round"


def test_a_rendition_the_live_timeline_dropped_is_collected_once_old_unless_recorded():
    channel = run(None, A=progress("A", [500, 501])).timeline
    dropped = [f"channels/c/encoders/A/old1080/{n}.m4s" for n in (10, 11)]
    assert collectable(dropped, channel, []) == [], "recent: it may be a rendition on its way in"
    assert collectable(dropped, channel, [], old=frozenset(dropped)) == dropped, "old and unlisted: an orphan"
    recording = program_timeline(range(10, 12), window_ms=60_000)
    recording.tracks[0].info = recording.tracks[0].info.model_copy(update={"id": "old1080"})
    assert collectable(dropped, channel, [recording], old=frozenset(dropped)) == [], (
        "a program that recorded it keeps it"
    )


def test_parts_go_ten_segments_behind_the_live_edge_even_where_a_program_records_the_segment():
    channel = run(None, A=progress("A", list(range(480, 502)))).timeline
    parts = [f"channels/c/encoders/{i}/v/{n}.{k}.m4s" for i in ("A", "B") for n in (490, 491, 501) for k in range(4)]
    recording = program_timeline(range(480, 502), window_ms=60_000)
    doomed = collectable(parts, channel, [recording])
    assert sorted(doomed) == sorted(p for p in parts if "/490." in p), "501 - 10 = 491 is the oldest kept"
    # a part of a rendition the timeline does not list waits like its segments do, until old
    orphan = ["channels/c/encoders/A/gone/3.0.m4s"]
    assert collectable(orphan, channel, []) == [] and collectable(orphan, channel, [], old=frozenset(orphan)) == orphan

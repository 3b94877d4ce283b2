from datetime import timedelta

from merge_fixtures import AST, D, numbers, progress, run

from kubecast.media.cues import TimelineCue
from kubecast.media.merge import hold_ms
from kubecast.media.tracks import SegmentRecord
from kubecast.storage import IngestInfo


def test_first_copy_wins_and_the_source_only_flips_on_failover():
    result = run(None, A=progress("A", [10, 11, 12]), B=progress("B", [11, 12]))
    assert numbers(result.timeline) == [(10, "A"), (11, "A"), (12, "A")]
    assert result.duplicates == 2
    # A stops at 12; B goes on: the timeline continues from B with no gap
    result = run(result.timeline, A=progress("A", [10, 11, 12], state="waiting"), B=progress("B", [11, 12, 13, 14]))
    assert numbers(result.timeline)[-2:] == [(13, "B"), (14, "B")]
    assert result.failovers == [("v", "A", "B")]
    assert not any(row.discontinuity for row in result.timeline.tracks[0].segments), (
        "no discontinuity across a failover"
    )


def test_nothing_is_published_twice_or_renumbered_after_a_restart():
    first = run(None, A=progress("A", [1, 2, 3])).timeline
    again = run(first, A=progress("A", [1, 2, 3, 4]))
    assert numbers(again.timeline) == [(1, "A"), (2, "A"), (3, "A"), (4, "A")]
    assert [s.number for _, s in again.published] == [4]


def test_different_init_segments_are_never_mixed():
    result = run(None, A=progress("A", [1, 2]), B=progress("B", [1, 2, 3], init="init-b.mp4"))
    assert numbers(result.timeline) == [(1, "A"), (2, "A")]
    condition = next(c for c in result.timeline.conditions if c["type"] == "InitSegmentsConsistent")
    assert condition["status"] == "False" and condition["reason"] == "InitSegmentMismatch"


def test_a_gap_in_the_media_is_a_discontinuity_and_contiguous_media_is_not():
    result = run(None, A=progress("A", [1, 2, 5, 6], discontinuity={2}))
    flags = {row.number: row.discontinuity for row in result.timeline.tracks[0].segments}
    assert flags == {1: False, 2: False, 5: True, 6: False}


def test_window_and_bandwidth():
    result = run(None, A=progress("A", list(range(0, 50)), sizes={49: 500_000}))
    rows = result.timeline.tracks[0].segments
    assert len(rows) == 30 and rows[0].number == 20  # 60 s of 2 s segments
    track = result.timeline.tracks[0]
    assert track.peak_bandwidth == 2_000_000  # 500 kB in 2 s
    assert 1_000_000 < track.average_bandwidth < 1_100_000


def test_state_health_and_ready_condition():
    now = AST + timedelta(seconds=30)
    live = run(None, now=now, A=progress("A", [13, 14], now=now)).timeline
    assert live.state == "live" and live.encoders["A"].state == "live" and live.encoders["A"].segments_taken == 2
    ready = next(c for c in live.conditions if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["reason"] == "Live"
    later = now + timedelta(seconds=20)
    stale = run(live, now=later, A=progress("A", [13, 14], now=now)).timeline
    assert stale.state == "waiting"
    ready = next(c for c in stale.conditions if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["lastTransitionTime"].startswith(later.isoformat()[:19])
    assert run(None, A=None).timeline.state == "waiting"


def test_a_copy_cut_short_by_a_dropped_path_waits_for_the_other_encoders():
    a = progress("A", [10])
    a.segments["v"].append(SegmentRecord(11, 11 * D, D // 3, 80_000, False, True))  # flushed when A's path dropped
    a.ingest.connected = False
    result = run(None, A=a, B=progress("B", [10]))
    assert numbers(result.timeline) == [(10, "A")], "11 waits: B is live and may still bring a whole copy"
    result = run(result.timeline, A=a, B=progress("B", [10, 11, 12]))
    assert numbers(result.timeline) == [(10, "A"), (11, "B"), (12, "B")]
    rows = result.timeline.tracks[0].segments
    assert rows[1].duration == D and not any(row.discontinuity for row in rows)
    # With no other live encoder the short copy is the best there is (the end of a stream).
    alone = run(None, A=a, B=progress("B", [10], state="waiting"))
    assert numbers(alone.timeline) == [(10, "A"), (11, "A")]


def _sequence_of_each_segment(timeline):
    """{segment number: HLS media sequence} as a player computes it from one playlist."""
    track = timeline.tracks[0]
    return {row.number: track.media_sequence() + index for index, row in enumerate(track.segments)}


def test_hls_sequence_numbers_stay_consecutive_and_stable_across_a_gap_as_the_window_slides():
    # 0..19, then the contribution was missing for numbers 20..24, then 25.. (a marked gap)
    before = list(range(0, 20))
    timeline, seen = None, {}
    for newest in range(25, 70):
        timeline = run(
            timeline,
            now=AST + timedelta(seconds=2 * newest + 2),
            A=progress("A", before + list(range(25, newest + 1)), now=AST + timedelta(seconds=2 * newest + 2)),
        ).timeline
        for number, sequence in _sequence_of_each_segment(timeline).items():
            assert seen.setdefault(number, sequence) == sequence, f"segment {number} changed its sequence number"
    assert seen[25] == 20 and seen[69] == 64  # consecutive over the gap
    track = timeline.tracks[0]
    assert track.segments[0].number > 25, "the window has slid past the gap"
    assert track.numbers_skipped == 5 and track.discontinuity_sequence() == 1


def test_failovers_and_segments_taken_are_counted_for_the_life_of_the_channel():
    timeline = run(None, A=progress("A", [10, 11, 12]), B=progress("B", [11, 12])).timeline
    assert (timeline.active_source, timeline.failovers) == ("A", 0)
    later = AST + timedelta(seconds=40)
    timeline = run(
        timeline,
        now=later,
        A=progress("A", [10, 11, 12], state="waiting"),
        B=progress("B", [11, 12, 13, 14], now=later),
    ).timeline
    assert (timeline.active_source, timeline.failovers, timeline.last_failover) == ("B", 1, later)
    # A comes back: B stays the source (no flip back on a tie), so no second failover
    timeline = run(
        timeline, now=later, A=progress("A", [15, 16], now=later), B=progress("B", [13, 14, 15, 16], now=later)
    ).timeline
    assert (timeline.active_source, timeline.failovers) == ("B", 1)
    assert timeline.encoders["A"].segments_taken == 3 and timeline.encoders["B"].segments_taken == 4


def test_keyframe_alignment_of_a_multibitrate_contribution_becomes_a_condition():
    single = run(None, A=progress("A", [13, 14])).timeline
    assert not any(c["type"] == "KeyframesAligned" for c in single.conditions), "only reported for several renditions"
    misaligned = progress("A", [13, 14])
    misaligned.ingest = IngestInfo(
        connected=True,
        renditions=3,
        keyframes_aligned=False,
        alignment_message="rendition video2 is not key-frame aligned",
    )
    condition = next(c for c in run(single, A=misaligned).timeline.conditions if c["type"] == "KeyframesAligned")
    assert (condition["status"], condition["reason"]) == ("False", "RenditionsMisaligned") and "video2" in condition[
        "message"
    ]


def test_a_stale_alignment_verdict_goes_when_a_contribution_without_renditions_connects():
    misaligned = progress("A", [13, 14])
    misaligned.ingest = IngestInfo(
        connected=True,
        renditions=3,
        keyframes_aligned=False,
        alignment_message="rendition video2 is not key-frame aligned",
    )
    timeline = run(None, A=misaligned).timeline
    gone = progress("A", [13, 14])
    gone.ingest = IngestInfo(connected=False)
    timeline = run(timeline, A=gone).timeline
    assert any(c["type"] == "KeyframesAligned" for c in timeline.conditions), "no contribution: the last verdict stays"
    single = progress("A", [15, 16])
    single.ingest = IngestInfo(connected=True, renditions=1)
    assert not any(c["type"] == "KeyframesAligned" for c in run(timeline, A=single).timeline.conditions), (
        "one rendition: nothing to align"
    )


def test_the_previous_source_keeps_the_next_number_while_it_may_still_bring_it():
    now = AST + timedelta(seconds=30)
    timeline = run(None, now=now, A=progress("A", [10, 11], now=now), B=progress("B", [10, 11], now=now)).timeline
    # B wrote 12 first; A is live and wrote its progress a moment ago: 12 waits for A's copy.
    quick_b = run(timeline, now=now, A=progress("A", [10, 11], now=now), B=progress("B", [10, 11, 12], now=now))
    assert numbers(quick_b.timeline)[-1] == (11, "A") and not quick_b.published
    both = run(timeline, now=now, A=progress("A", [10, 11, 12], now=now), B=progress("B", [10, 11, 12], now=now))
    assert numbers(both.timeline)[-1] == (12, "A")


def test_readers_that_merge_at_different_moments_list_the_same_copy_under_each_number():
    """Two endpoint replicas merging the same stored timeline, one of them reading the
    encoders' progress while B was ahead of A, the other after both had written."""
    now = AST + timedelta(seconds=30)
    stored = run(None, now=now, A=progress("A", [10, 11], now=now), B=progress("B", [10, 11], now=now)).timeline
    early = stored
    for a, b in (([10, 11], [10, 11, 12]), ([10, 11, 12], [10, 11, 12, 13]), ([10, 11, 12, 13], [10, 11, 12, 13])):
        early = run(early, now=now, A=progress("A", a, now=now), B=progress("B", b, now=now)).timeline
    late = run(stored, now=now, A=progress("A", [10, 11, 12, 13], now=now), B=progress("B", [10, 11, 12, 13], now=now))
    assert numbers(early) == numbers(late.timeline) == [(10, "A"), (11, "A"), (12, "A"), (13, "A")]


def test_a_silent_source_loses_its_claim_after_the_hold():
    now = AST + timedelta(seconds=30)
    timeline = run(None, now=now, A=progress("A", [10, 11], now=now), B=progress("B", [10, 11], now=now)).timeline
    hung = progress("A", [10, 11], now=now)  # A stopped writing at ``now``: hung, though it says "live"
    within = now + timedelta(milliseconds=hold_ms(2000) - 100)
    waiting = run(timeline, now=within, A=hung, B=progress("B", [10, 11, 12], now=within))
    assert not waiting.published
    after = now + timedelta(milliseconds=hold_ms(2000) + 100)
    result = run(timeline, now=after, A=hung, B=progress("B", [10, 11, 12], now=after))
    assert numbers(result.timeline)[-1] == (12, "B") and result.failovers == [("v", "A", "B")]
    assert hold_ms(2000) == 3000 and hold_ms(6000) == 3000 and hold_ms(1000) == 2000


def test_a_starved_source_loses_its_claim_when_the_other_is_a_segment_ahead():
    """Encoder A keeps writing its heartbeat, but its ingest hangs and no segment comes."""
    now = AST + timedelta(seconds=30)
    timeline = run(None, now=now, A=progress("A", [10, 11], now=now), B=progress("B", [10, 11], now=now)).timeline
    starved = progress("A", [10, 11], now=now)
    assert not run(timeline, now=now, A=starved, B=progress("B", [10, 11, 12], now=now)).published
    result = run(timeline, now=now, A=starved, B=progress("B", [10, 11, 12, 13], now=now))
    assert numbers(result.timeline)[-2:] == [(12, "B"), (13, "B")]


def _cue(seconds, *, out=True, event=1, duration=None):
    return TimelineCue(
        event_id=event, out=out, time=seconds * 90_000, timescale=90_000, duration=duration, section="/A=="
    )


def test_cues_of_both_encoders_are_listed_once_in_time_order_while_they_touch_the_window():
    a, b = progress("A", list(range(0, 50))), progress("B", list(range(0, 50)))
    a.cues = [_cue(50), _cue(62, out=False), _cue(90, event=2, duration=10 * 90_000)]
    b.cues = [_cue(62, out=False), _cue(90, event=2, duration=10 * 90_000), _cue(95, out=False, event=2)]
    timeline = run(None, A=a, B=b).timeline
    # The window holds segments 20-49 (40 s to 100 s): the cue at 50 s is in it, as is every later one.
    assert [(c.seconds, c.out) for c in timeline.cues] == [(50, True), (62, False), (90, True), (95, False)]
    a.segments["v"] = [*a.segments["v"], *(SegmentRecord(n, n * D, D, 250_000) for n in range(50, 60))]
    timeline = run(timeline, A=a, B=b).timeline
    assert [c.seconds for c in timeline.cues] == [62, 90, 95], "a cue before the window (60 s) is dropped"


def test_a_program_records_the_cues_from_its_start_and_keeps_them_when_stopped():
    from kubecast.storage import ProgramRecord
    from kubecast.storage.programs import record

    program = ProgramRecord(name="p", channel="c", locator="p", archive_window_seconds=3600)
    a = progress("A", [10, 11, 12])
    a.cues = [_cue(21), _cue(25, out=False)]
    channel = run(None, A=a).timeline
    recorded, _ = record(None, program, channel, AST)
    assert [c.seconds for c in recorded.cues] == [25], "the program starts at segment 12 (24 s)"
    a.segments["v"] = [SegmentRecord(n, n * D, D, 250_000) for n in range(10, 16)]
    a.cues = [*a.cues, _cue(29, event=3)]
    channel = run(channel, A=a).timeline
    recorded, changed = record(recorded, program, channel, AST)
    assert changed and [c.seconds for c in recorded.cues] == [25, 29]
    stopped, _ = record(recorded, program.model_copy(update={"state": "Stopped"}), channel, AST)
    assert [c.seconds for c in stopped.cues] == [25, 29]

"""Low-latency HLS playlists and blocking rules (pure), one test per rule of RFC 8216bis."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from timeline_fixtures import one_track_timeline

from kubecast.endpoint import llhls
from kubecast.endpoint.llhls import Reload, build_view, reload_state
from kubecast.media.parts import EncoderParts, PartRecord, TrackParts

PART = 45_000  # 500 ms at 90 kHz
SEGMENT = 180_000


def parts(number: int, count: int = 4) -> list[PartRecord]:
    return [PartRecord(number, k, number * SEGMENT + k * PART, PART, 100, k == 0) for k in range(count)]


def edge(records: list[PartRecord], complete: int | None, *, track: str = "v720") -> EncoderParts:
    return EncoderParts(
        channel="news",
        instance="A",
        session="s",
        updated=datetime.now(timezone.utc),
        part_duration_ms=500,
        part_target_ms=512,
        tracks={track: TrackParts(parts=records, complete=complete)},
    )


def view_of(numbers=range(10, 16), records=None, complete=15, *, state="live"):
    timeline = one_track_timeline(numbers, state=state)
    records = [*parts(14), *parts(15), *parts(16, 2)] if records is None else records
    return timeline, build_view(timeline, timeline.tracks[0], edge(records, complete), "A")


def render(**kwargs) -> list[str]:
    timeline, view = view_of(**{k: v for k, v in kwargs.items() if k in ("numbers", "records", "complete", "state")})
    skip = kwargs.get("skip", False)
    return llhls.media_playlist(timeline, view, skip=skip, reports=kwargs.get("reports")).splitlines()


def test_server_control_part_inf_and_hold_backs_meet_their_minimums():
    lines = render()
    control = next(line for line in lines if line.startswith("#EXT-X-SERVER-CONTROL:"))
    assert "CAN-BLOCK-RELOAD=YES" in control
    part_target = float(next(line for line in lines if line.startswith("#EXT-X-PART-INF:")).split("=")[1])
    assert part_target == 0.512
    hold_back = float(re.search(r"PART-HOLD-BACK=([\d.]+)", control)[1])
    assert hold_back >= 3 * part_target  # 4.4.3.8: at least twice, SHOULD three times the part target
    target = int(next(line for line in lines if line.startswith("#EXT-X-TARGETDURATION:")).split(":")[1])
    assert float(re.search(r"CAN-SKIP-UNTIL=([\d.]+)", control)[1]) >= 6 * target  # the Skip Boundary


def test_parts_come_before_their_segment_for_the_last_three_target_durations_then_the_open_one():
    lines = render()
    uris = [re.search(r'URI="([^"]+)"', line)[1] for line in lines if line.startswith("#EXT-X-PART:")]
    assert uris == [f"{n}.{k}.A.m4s" for n in (14, 15) for k in range(4)] + ["16.0.A.m4s", "16.1.A.m4s"]
    # each segment's parts come right before its EXTINF; 13 is within three target durations but
    # the encoder no longer lists its parts, and 10-12 are too old to list any
    assert (
        lines[lines.index("15.m4s") - 5].startswith("#EXT-X-PART:") and "15.0.A.m4s" in lines[lines.index("15.m4s") - 5]
    )
    assert not lines[lines.index("13.m4s") - 2].startswith("#EXT-X-PART:")
    independent = [line for line in lines if line.startswith("#EXT-X-PART:") and "INDEPENDENT=YES" in line]
    assert [re.search(r'URI="([^"]+)"', line)[1] for line in independent] == ["14.0.A.m4s", "15.0.A.m4s", "16.0.A.m4s"]
    durations = {re.search(r"DURATION=([\d.]+)", line)[1] for line in lines if line.startswith("#EXT-X-PART:")}
    assert durations == {"0.50000"}


def test_the_preload_hint_names_the_next_part_and_crosses_into_the_next_segment():
    assert render()[-1] == '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="16.2.A.m4s"'
    full = render(records=[*parts(15), *parts(16, 4)])
    assert full[-1] == '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="17.0.A.m4s"'
    assert sum(line.startswith("#EXT-X-PRELOAD-HINT") for line in full) == 1  # 6.2.6: one hint per TYPE


def test_a_segment_stored_whole_but_not_yet_in_the_timeline_is_listed_from_the_parts():
    lines = render(records=[*parts(15), *parts(16), *parts(17, 1)], complete=16)
    assert lines[-4:] == [
        "#EXTINF:2.000,",
        "16.m4s",
        '#EXT-X-PART:DURATION=0.50000,URI="17.0.A.m4s",INDEPENDENT=YES',
        '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="17.1.A.m4s"',
    ]
    # ... but not while the encoder has not stored it whole
    assert "16.m4s" not in render(records=[*parts(15), *parts(16)], complete=15)


def test_a_segment_with_a_part_missing_lists_only_the_parts_before_the_gap():
    records = [*parts(15), *parts(16, 1), PartRecord(16, 2, 16 * SEGMENT + 2 * PART, PART, 100, False)]
    uris = [line for line in render(records=records) if line.startswith("#EXT-X-PART:") and "16." in line]
    assert len(uris) == 1 and "16.0.A.m4s" in uris[0]


def test_blocking_reload_answers_once_the_playlist_holds_the_part_asked_for():
    _, view = view_of()  # complete up to 15, segment 16 open with parts 0 and 1
    assert reload_state(view, 16, 1) is Reload.READY
    assert reload_state(view, 16, 0) is Reload.READY
    assert reload_state(view, 16, 2) is Reload.WAIT  # the hinted part
    assert reload_state(view, 17, 0) is Reload.WAIT


def test_blocking_reload_without_a_part_waits_for_the_whole_segment():
    _, view = view_of()
    assert reload_state(view, 15, None) is Reload.READY
    assert reload_state(view, 16, None) is Reload.WAIT  # segment 16 has parts only: not a Media Segment yet
    assert reload_state(view, 3, None) is Reload.READY  # 6.2.5.2: even when it has left the playlist


def test_a_part_index_past_a_segments_last_part_means_part_zero_of_the_next():
    _, view = view_of()
    assert reload_state(view, 15, 4) is Reload.READY  # = 16.0, listed
    _, without_open = view_of(records=[*parts(14), *parts(15)])
    assert reload_state(without_open, 15, 4) is Reload.WAIT  # = 16.0, not there yet


def test_a_request_more_than_two_segments_beyond_the_last_is_refused():
    _, view = view_of()
    assert reload_state(view, 15 + 3, None) is Reload.TOO_FAR
    assert reload_state(view, 15 + 2, None) is Reload.WAIT


def test_a_part_beyond_the_advance_part_limit_is_refused():
    _, view = view_of()  # newest part: 16.1; limit 3 / 0.512 s = 5.86 parts
    assert llhls.advance_part_limit(512) == 3000 / 512
    assert reload_state(view, 17, 2) is Reload.WAIT  # 5 parts ahead
    assert reload_state(view, 17, 3) is Reload.TOO_FAR  # 6 parts ahead
    assert llhls.advance_part_limit(1500) == 3  # three when the part target is a second or more


def test_blocking_is_bounded_by_three_target_durations():
    _, view = view_of()
    assert llhls.block_seconds(view) == 6.0


def test_delta_update_skips_what_lies_beyond_the_skip_boundary():
    lines = render(numbers=range(0, 16), records=[*parts(15), *parts(16, 2)], skip=True)
    assert lines[1] == "#EXT-X-VERSION:9"  # EXT-X-SKIP needs version 9
    skipped = int(next(line for line in lines if line.startswith("#EXT-X-SKIP:")).split("=")[1])
    # segments ending more than 12 s (6 target durations) before the end of segment 15 (32 s): 0-8
    assert skipped == 9 and "8.m4s" not in lines and "9.m4s" in lines
    assert lines[lines.index("#EXT-X-SKIP:SKIPPED-SEGMENTS=9") + 1].startswith("#EXT-X-PROGRAM-DATE-TIME:")
    assert "#EXT-X-MEDIA-SEQUENCE:0" in lines  # the full playlist's sequence: the skip is counted from it
    full = render(numbers=range(0, 16), records=[*parts(15), *parts(16, 2)])
    assert full[1] == "#EXT-X-VERSION:7" and not any(line.startswith("#EXT-X-SKIP") for line in full)
    assert full[full.index("9.m4s") :] == lines[lines.index("9.m4s") :]


def test_rendition_reports_name_the_other_renditions_last_part():
    _, view = view_of()
    report = llhls.rendition_report(view, "../audio/index.m3u8")
    assert report == llhls.RenditionReport("../audio/index.m3u8", 16, 1)
    lines = render(reports=[report])
    assert lines[-1] == '#EXT-X-RENDITION-REPORT:URI="../audio/index.m3u8",LAST-MSN=16,LAST-PART=1'


def test_a_stopped_channel_gets_endlist_and_no_parts_or_hint():
    lines = render(state="stopped")
    assert lines[-1] == "#EXT-X-ENDLIST"
    assert not any(line.startswith(("#EXT-X-PART:", "#EXT-X-PRELOAD-HINT")) for line in lines)


def test_without_an_encoder_cutting_parts_the_playlist_lists_whole_segments_only():
    timeline = one_track_timeline(range(10, 16))
    view = build_view(timeline, timeline.tracks[0], None, None)
    lines = llhls.media_playlist(timeline, view)
    assert "#EXT-X-PART:" not in lines and "PRELOAD-HINT" not in lines and "15.m4s" in lines
    assert reload_state(view, 16, 0) is Reload.WAIT

"""SCTE-35 ad markers from a UDP playout stream and a Smooth sparse track, in hls.js, Shaka, the
MPD and the Smooth manifest."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from fractions import Fraction

import players
import pytest
from helpers import idr_samples, wait_until
from media_checks import fetch, mpd
from players import chromium, open_player, sync_playwright

from kubecast.media.cues import TimelineCue
from kubecast.media.fmp4 import parse_fragment
from kubecast.media.scte35 import parse_splice_info
from kubecast.media.timeline import Timeline

from .reading import SHAKA_SEGMENT_AT, newest_epoch
from .sources import BREAK, EVENT_ID, SPARSE_BREAK, SPARSE_EVENT_ID, SPARSE_OUT, SPLICE_OUT

pytestmark = pytest.mark.e2e


def tags_before_segments(playlist: str) -> dict[int, list[str]]:
    """Segment number -> the tags written before its URI."""
    tags: dict[int, list[str]] = {}
    pending: list[str] = []
    for line in playlist.splitlines():
        if line.startswith("#"):
            pending.append(line)
        elif line:
            tags[int(line.split(".")[0])] = pending
            pending = []
    return tags


# hls.js's splice out: the first SCTE35-OUT cue of its metadata text track, and the date range with the
# start of the fragment its START-DATE falls in.
HLS_SPLICE_OUT = (
    "() => { const cues = []; for (const t of window.v.textTracks) for (const c of (t.cues || []))"
    " if (c.value && c.value.key === 'SCTE35-OUT') cues.push(c.startTime);"
    " const level = window.player.levels.find((l) => l.details && l.details.dateRanges);"
    " if (!cues.length || !level) return null; const d = level.details;"
    " const r = Object.values(d.dateRanges).find((x) => x.attr['SCTE35-OUT']); if (!r) return null;"
    " const f = d.fragments.find((x) => x.programDateTime <= r.startDate.getTime() &&"
    " r.startDate.getTime() < x.programDateTime + x.duration * 1000);"
    " return f ? {cue: cues[0], range: r.startTime, out: r.attr['SCTE35-OUT'], id: r.id,"
    " fragment: f.start, pdt: f.programDateTime} : null; }"
)


def assert_hlsjs_splice_out(base: str, channel: str, out: TimelineCue, event_id: int) -> None:
    """hls.js in Chromium surfaces the splice out of ``channel`` as a date range (and a cue of its
    metadata track) at the splice frame's media time, within a frame."""
    playwright = sync_playwright()
    with playwright.sync_playwright() as driver:
        browser = chromium(driver)
        try:
            page = browser.new_page()
            open_player(page, base, "hls", f"{base}/live/{channel}/index.m3u8")
            seen = players.wait_for(page, f"the splice out of {channel} in hls.js", HLS_SPLICE_OUT, timeout=60)
            assert page.evaluate("() => window.errors") == []
        finally:
            browser.close()
    assert parse_splice_info(bytes.fromhex(seen["out"][2:])).splice.event_id == event_id
    # hls.js's media time of the splice: its fragment's start plus the IDR's offset in it (from the bytes).
    segment_start = Fraction(int(out.seconds // 2) * 2)
    assert abs(seen["range"] - (seen["fragment"] + float(out.seconds - segment_start))) <= 1 / 30, seen
    assert abs(seen["cue"] - seen["range"]) <= 1 / 30, "the metadata cue sits at the date range's media time"


def test_scte35_markers_of_a_playout_stream_reach_hlsjs_and_the_mpd(pipeline):
    """threefive's splice out and back in, carried over UDP into live encoding: each cue lands on
    the frame of its splice time (one IDR there in the segment, boundaries on the grid), hls.js
    surfaces the DATERANGE as metadata at that media time within a frame, and the MPD carries
    the SCTE-35 EventStream with the section; the endpoint's hlsCueTags adds EXT-X-CUE-OUT/-IN."""
    base, store = pipeline["base"], pipeline["work"] / "store" / "channels" / "enc-markers"

    def both_markers_and_the_segment_back_in_listed() -> tuple[str, Timeline] | None:
        # The DATERANGE of the splice back in is listed with the segment before the one it falls in
        # (it is known 4 s ahead), so wait for that segment too when the stream is still playing.
        playlist = fetch(f"{base}/live/enc-markers/v144/index.m3u8").decode()
        if "SCTE35-IN" not in playlist:
            return None
        timeline = Timeline.from_json((store / "timeline.json").read_bytes())
        listed = timeline.cues and int(timeline.cues[-1].seconds // 2) in tags_before_segments(playlist)
        return (playlist, timeline) if listed else None

    playlist, timeline = wait_until(
        both_markers_and_the_segment_back_in_listed, timeout=90, interval=1, what="both markers and their segments"
    )
    assert [(cue.event_id, cue.out) for cue in timeline.cues] == [(EVENT_ID, True), (EVENT_ID, False)]
    # The endpoint's hlsCueTags (protocols.yaml): the same break on whole segments, for older ad servers.
    first, back = (int(cue.seconds // 2) for cue in timeline.cues)
    assert back - first == 3, "out 1 s into a segment, back 6 s later"
    tags = tags_before_segments(playlist)
    assert [line for number in range(first, back + 1) for line in tags[number] if "CUE" in line] == [
        "#EXT-X-CUE-OUT:6.000",
        "#EXT-X-CUE-OUT-CONT:ElapsedTime=2.000,Duration=6.000",
        "#EXT-X-CUE-OUT-CONT:ElapsedTime=4.000,Duration=6.000",
        "#EXT-X-CUE-IN",
    ]
    assert playlist.count("#EXT-X-CUE") == 4
    epoch = newest_epoch(store)
    frame = Fraction(1, 30)
    for cue, after in zip(timeline.cues, (SPLICE_OUT, SPLICE_OUT + BREAK)):
        # The first frame opened the epoch; the splice times count from the first picture.
        expected = Fraction(epoch["firstSegment"] * 2) + pipeline["markers_lead"] + Fraction(after)
        assert abs(cue.seconds - expected) <= frame / 2 + Fraction(1, 1000), (cue, expected)
        number = int(cue.seconds // 2)
        assert cue.seconds % 2 != 0, "the splice is inside a segment, not on a boundary"
        for rendition in ("v144", "v72"):
            segment = fetch(f"{base}/live/enc-markers/{rendition}/{number}.m4s")
            assert idr_samples(segment) == [0, int((cue.seconds - number * 2) / frame)], (rendition, cue)
    out = timeline.cues[0]

    assert_hlsjs_splice_out(base, "enc-markers", out, EVENT_ID)
    assert_mpd_event_stream(base, "enc-markers", timeline.cues)


def assert_mpd_event_stream(base: str, channel: str, cues: list[TimelineCue]) -> None:
    """The live MPD of ``channel`` has the SCTE-35 EventStream: an Event at each cue's time, the first
    one's section (the splice out) in its Signal."""
    root = mpd(f"{base}/live/{channel}/manifest.mpd")
    namespace = {"m": "urn:mpeg:dash:schema:mpd:2011", "s": "http://www.scte.org/schemas/35/2016"}
    stream = root.find("m:Period/m:EventStream", namespace)
    assert stream is not None and stream.get("schemeIdUri") == "urn:scte:scte35:2014:xml+bin"
    events = stream.findall("m:Event", namespace)
    timescale = int(stream.get("timescale"))
    assert [Fraction(int(e.get("presentationTime")), timescale) for e in events] == [c.seconds for c in cues]
    binary = events[0].find("s:Signal/s:Binary", namespace).text
    assert parse_splice_info(base64.b64decode(binary)).splice.out is True


def test_a_smooth_sparse_track_of_scte35_reaches_hlsjs_the_mpd_and_the_smooth_manifest(pipeline):
    """A sparse SCTE-35 track pushed beside enc-smooth's media, as its own POST (AMS timed-metadata
    signalling, ``tests/e2e/sparse_push.py``): each cue lands on the frame of its time on the media's
    clock, with an IDR there in every rendition; hls.js surfaces the splice out's DATERANGE at that
    media time within a frame; the MPD's EventStream and the program's Smooth client manifest (a
    sparse StreamIndex on the video's clock, and its fragment) carry the sections."""
    base, store = pipeline["base"], pipeline["work"] / "store" / "channels" / "enc-smooth"
    pusher = pipeline["publishers"]["sparse push enc-smooth"]

    def both_cues_and_the_segment_back_in_listed() -> Timeline | None:
        playlist = fetch(f"{base}/live/enc-smooth/v144/index.m3u8").decode()
        if "SCTE35-IN" not in playlist:
            return None
        timeline = Timeline.from_json((store / "timeline.json").read_bytes())
        listed = timeline.cues and int(timeline.cues[-1].seconds // 2) in tags_before_segments(playlist)
        return timeline if listed else None

    try:
        timeline = wait_until(both_cues_and_the_segment_back_in_listed, timeout=90, interval=1, what="both cues")
    except TimeoutError as error:
        raise AssertionError(f"{error}; the sparse push said: {pusher.output()!r}") from None
    assert "sparse push answered 200" in pusher.output(), pusher.output()
    assert [(cue.event_id, cue.out) for cue in timeline.cues] == [(SPARSE_EVENT_ID, True), (SPARSE_EVENT_ID, False)]
    epoch = newest_epoch(store)
    frame = Fraction(1, 30)
    for cue, at in zip(timeline.cues, (SPARSE_OUT, SPARSE_OUT + SPARSE_BREAK)):
        # The push's times land on the channel timeline at the epoch's offset (to the millisecond).
        expected = Fraction(at) + Fraction(epoch["offsetMs"], 1000)
        assert abs(cue.seconds - expected) <= frame / 2 + Fraction(1, 1000), (cue, expected)
        number = int(cue.seconds // 2)
        assert cue.seconds % 2 != 0, "the splice is inside a segment, not on a boundary"
        for rendition in ("v144", "v72"):
            segment = fetch(f"{base}/live/enc-smooth/{rendition}/{number}.m4s")
            assert idr_samples(segment) == [0, int((cue.seconds - number * 2) / frame)], (rendition, cue)
    assert_mpd_event_stream(base, "enc-smooth", timeline.cues)
    # The program's Smooth client manifest: while it records, the sparse stream's times are the video's own.
    manifest = ET.fromstring(fetch(f"{base}/smooth-loc/show.ism/manifest"))
    (sparse,) = [index for index in manifest.iter("StreamIndex") if index.get("Type") == "text"]
    assert (sparse.get("Name"), sparse.get("Subtype"), sparse.get("ParentStreamIndex")) == ("scte35", "DATA", "video")
    timescale = int(sparse.get("TimeScale"))
    chunks = [(int(c.get("t")), base64.b64decode(c.findtext("f"))) for c in sparse.iter("c")]
    assert len(chunks) == 2, chunks
    for (t, section), cue in zip(chunks, timeline.cues):
        assert abs(Fraction(t, timescale) - cue.seconds) < Fraction(1, timescale), (t, timescale, cue)
        assert section == cue.section_bytes
    fragment = fetch(f"{base}/smooth-loc/show.ism/QualityLevels(0)/Fragments(scte35={chunks[0][0]})")
    moof = int.from_bytes(fragment[:4], "big")
    (samples,) = parse_fragment(fragment[:moof], fragment[moof:]).values()
    assert [sample.data for sample in samples] == [chunks[0][1]]
    assert parse_splice_info(chunks[0][1]).splice.event_id == SPARSE_EVENT_ID
    assert_hlsjs_splice_out(base, "enc-smooth", timeline.cues[0], SPARSE_EVENT_ID)


# Shaka's timeline regions as plain values, each with the text of its DASH Event (the section, in base64),
# recorded from before it loads anything; and the regions it entered, with the playhead then.
SHAKA_REGIONS = (
    "const text = (n) => !n ? '' : typeof n === 'string' ? n : (n.children || []).map(text).join('');"
    " const plain = (r) => ({scheme: r.schemeIdUri, id: r.id, start: r.startTime, end: r.endTime,"
    " values: Object.fromEntries((r.values || []).map((x) => [x.key, String(x.data)])),"
    " text: text(r.eventNode).trim()});"
    " window.regions = []; window.entered = [];"
    " player.addEventListener('timelineregionadded', (e) => window.regions.push(plain(e.detail)));"
    " player.addEventListener('timelineregionenter',"
    " (e) => window.entered.push({...plain(e.detail), at: v.currentTime}));"
)


SHAKA_STATE = (
    "() => ({time: window.v.currentTime, readyState: window.v.readyState, errors: window.errors,"
    " seekRange: window.player.seekRange(), regions: window.regions, entered: window.entered})"
)


def test_shaka_surfaces_the_scte35_markers_as_timeline_regions_at_their_frames(pipeline):
    """Shaka Player reads the same splice out and back in as timeline regions, from HLS's
    EXT-X-DATERANGE and from DASH's EventStream: each at the media time of the splice's frame on
    Shaka's own timeline (the start of the segment Shaka holds it in, plus the IDR's place in that
    segment's bytes) within a frame, and it enters the break when playback reaches it."""
    base, store = pipeline["base"], pipeline["work"] / "store" / "channels" / "enc-markers"
    wait_until(
        lambda: b"SCTE35-IN" in fetch(f"{base}/live/enc-markers/v144/index.m3u8"),
        timeout=90,
        interval=1,
        what="both markers in the playlist",
    )
    cues = Timeline.from_json((store / "timeline.json").read_bytes()).cues
    assert [(cue.event_id, cue.out) for cue in cues] == [(EVENT_ID, True), (EVENT_ID, False)]
    frame = 1 / 30
    # Per manifest: the regions Shaka must add, and from each the splice times it states ([out, in]).
    wanted = {
        # HLS: the date range (one ID for the splice out and back in) is one region from the out to the in.
        "index.m3u8": (
            "(r) => 'SCTE35-OUT' in r.values",
            lambda regions: [regions[0]["start"], regions[0]["end"]],
        ),
        "manifest.mpd": (
            "(r) => r.scheme === 'urn:scte:scte35:2014:xml+bin'",
            lambda regions: sorted({r["start"] for r in regions}),
        ),
    }
    want = {"index.m3u8": 1, "manifest.mpd": 2}
    seen = {}
    sync_api = sync_playwright()
    with sync_api.sync_playwright() as driver:
        browser = chromium(driver)
        try:
            for manifest, (markers, splices) in wanted.items():
                page = browser.new_page()
                open_player(page, base, "shaka", f"{base}/live/enc-markers/{manifest}", setup=SHAKA_REGIONS)
                regions = players.wait_for(
                    page,
                    f"the SCTE-35 regions of the {manifest}",
                    f"() => {{ const found = window.regions.filter({markers});"
                    f" return found.length >= {want[manifest]} ? found : null; }}",
                    timeout=60,
                    state=SHAKA_STATE,
                )
                times = splices(regions)
                assert len(times) == 2, (manifest, regions)
                segments = [
                    players.wait_for(page, f"Shaka's segment at {t}", f"() => ({SHAKA_SEGMENT_AT})({t})", timeout=30,
                                     state=SHAKA_STATE)
                    for t in times
                ]  # fmt: skip
                # Playback from a second before the break enters it.
                page.evaluate(f"() => {{ window.v.currentTime = {times[0] - 1}; window.v.play(); }}")
                entered = players.wait_for(
                    page,
                    f"entering the break of the {manifest}",
                    f"() => window.entered.find((r) => ({markers})(r) && Math.abs(r.start - {times[0]}) < 0.001)",
                    timeout=45,
                    state=SHAKA_STATE,
                )
                assert page.evaluate("() => window.errors") == [], manifest
                seen[manifest] = (regions, times, segments, entered)
                page.close()
        finally:
            browser.close()
    for manifest, (regions, times, segments, entered) in seen.items():
        for t, segment, cue in zip(times, segments, cues):
            offset = idr_samples(fetch(segment["uri"]))[1:]
            assert len(offset) == 1, (manifest, segment, "the splice's IDR is inside the segment Shaka has it in")
            assert abs(t - (segment["start"] + offset[0] * frame)) <= frame, (manifest, t, segment, offset, cue)
        assert times[0] <= entered["at"] <= times[1], (manifest, entered, times)
    hls, dash = (seen[m][0] for m in ("index.m3u8", "manifest.mpd"))
    assert {
        parse_splice_info(bytes.fromhex(r["values"]["SCTE35-OUT"][2:])).splice.event_id
        for r in hls
        if "SCTE35-OUT" in r["values"]
    } == {EVENT_ID}
    sections = [parse_splice_info(base64.b64decode(r["text"])).splice for r in sorted(dash, key=lambda r: r["start"])]
    assert [(s.event_id, s.out) for s in sections] == [(EVENT_ID, True), (EVENT_ID, False)], dash

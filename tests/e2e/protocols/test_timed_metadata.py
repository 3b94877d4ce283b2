"""Timed metadata: ID3 tags of a UDP playout stream in hls.js and Shaka, and RTMP onTextData in
the TS segments."""

from __future__ import annotations

import io
from fractions import Fraction
from functools import partial
from pathlib import Path

import av
import players
import pytest
from helpers import wait_until
from media_checks import fetch
from players import chromium, open_player, sync_playwright

from kubecast.media.id3 import text_tag
from kubecast.media.timeline import Timeline

from .reading import SHAKA_SEGMENT_AT, newest_epoch
from .sources import ID3_TAGS, TEXT_DATA

pytestmark = pytest.mark.e2e

# hls.js's FRAG_PARSING_METADATA for the fragment holding the first tag: its start and the samples' times and bytes.
HLS_ID3_LISTEN = (
    "() => { window.id3 = []; window.player.on(Hls.Events.FRAG_PARSING_METADATA, (_e, d) => window.id3.push("
    "{sn: d.frag.sn, start: d.frag.start, samples: d.samples.map((s) => ({pts: s.pts, data: Array.from(s.data)}))})); }"
)
HLS_ID3_SEEN = "(number) => window.id3.find((m) => m.sn === number) || null"
HLS_STATE = (
    "() => ({time: window.v.currentTime, errors: window.errors, parsed: window.id3.map((m) => [m.sn, m.start]),"
    " fragments: window.player.levels.map((l) => l.details ? l.details.fragments.map((f) => [f.sn, f.start]) : null)})"
)


ID3_SCHEME = "https://aomedia.org/emsg/ID3"
# Shaka's emsg events (as plain values) and the metadata events it makes of the ID3 ones, from before it
# loads anything: Shaka reads a segment's emsg boxes when it appends the segment.
SHAKA_EMSG = (
    "window.emsgs = []; window.metadata = []; window.added = [];"
    " player.addEventListener('metadataadded', (e) => window.added.push([e.metadataType, e.startTime]));"
    " player.addEventListener('emsg', (e) => window.emsgs.push({scheme: e.detail.schemeIdUri,"
    " start: e.detail.startTime, id: e.detail.id, data: Array.from(e.detail.messageData)}));"
    " player.addEventListener('metadata', (e) => window.metadata.push({type: e.metadataType, start: e.startTime,"
    " key: e.payload.key, data: String(e.payload.data)}));"
)
SHAKA_EMSG_STATE = (
    "() => ({time: window.v.currentTime, errors: window.errors, seekRange: window.player.seekRange(),"
    " emsgs: window.emsgs.map((e) => [e.scheme, e.start]), metadata: window.metadata, added: window.added})"
)


def timeline_with_metadata(channel_store: Path, count: int) -> Timeline | None:
    """The channel's stored timeline once it lists ``count`` timed metadata items."""
    if not (channel_store / "timeline.json").exists():
        return None
    timeline = Timeline.from_json((channel_store / "timeline.json").read_bytes())
    return timeline if len(timeline.metadata) == count else None


def test_id3_timed_metadata_of_a_playout_stream_reaches_the_players(pipeline):
    """ffmpeg's ID3 tags on libavformat's timed_id3 stream, carried over UDP into live encoding:
    each lands on the channel timeline at its media time; the TS segment covering it carries it
    on a metadata PID that FFmpeg reads back, and the fMP4 segment as an emsg box.  hls.js reports
    it (FRAG_PARSING_METADATA) at that media time, from the TS variant and from the fMP4 one; Shaka, playing
    the program's DASH MPD, dispatches the emsg of its InbandEventStream's scheme at that time, and the
    tag's title as metadata."""
    base, store = pipeline["base"], pipeline["work"] / "store" / "channels" / "enc-markers"

    listed = partial(timeline_with_metadata, store, len(ID3_TAGS))
    timeline = wait_until(listed, timeout=90, interval=1, what="both ID3 tags on the channel timeline")
    epoch = newest_epoch(store)
    items = timeline.metadata
    for item, (text, after) in zip(items, ID3_TAGS):
        assert text.encode() in item.id3_bytes
        # The first frame opened the epoch (to the millisecond); the tags' times count from the first picture.
        expected = Fraction(epoch["firstSegment"] * 2) + pipeline["markers_lead"] + Fraction(after)
        assert abs(item.seconds - expected) <= Fraction(1, 30), (item.seconds, expected)
    number = int(items[0].seconds // 2)
    wait_until(
        lambda: f"\n{number + 1}.ts".encode() in fetch(f"{base}/live/enc-markers/ts/v144/index.m3u8"),
        timeout=60,
        interval=1,
        what="the TS segment after the first tag's",
    )
    segment = fetch(f"{base}/live/enc-markers/ts/v144/{number}.ts")
    with av.open(io.BytesIO(segment), format="mpegts") as container:
        data = next(stream for stream in container.streams if stream.type == "data")
        packets = [(packet.pts, bytes(packet)) for packet in container.demux(data) if packet.size]
    assert packets == [(int(items[0].seconds * 90_000) % (1 << 33), items[0].id3_bytes)]
    assert fetch(f"{base}/live/enc-markers/v144/{number}.m4s")[4:8] == b"emsg"
    offset = float(items[0].seconds - number * 2)  # the tag's place in its segment

    playwright = sync_playwright()
    with playwright.sync_playwright() as driver:
        browser = chromium(driver)
        try:
            seen = {}
            for variant in ("ts/index.m3u8", "index.m3u8"):
                page = browser.new_page()
                open_player(page, base, "hls", f"{base}/live/enc-markers/{variant}", config={"startPosition": 0})
                page.evaluate(HLS_ID3_LISTEN)  # before the tag's fragment: hls.js starts seconds before it
                try:
                    found = page.wait_for_function(HLS_ID3_SEEN, arg=number, timeout=90_000)
                except playwright.TimeoutError:
                    pytest.fail(f"hls.js ({variant}) parsed no metadata of the tag in 90 s: {page.evaluate(HLS_STATE)}")
                seen[variant] = found.json_value()
                assert page.evaluate("() => window.errors") == [], variant
                page.close()
            # Shaka (DASH): the emsg of the MPD's InbandEventStream scheme, loaded a second before the tag, and the ID3
            # frames it reads from the message; it dispatches both when playback reaches the tag.  From the program's
            # MPD: its DVR window holds the tag however late this runs (a running program's MPD is dynamic, so
            # Shaka's time is the channel's media time).
            page = browser.new_page()
            at = float(items[0].seconds)
            open_player(page, base, "shaka", f"{base}/markers-loc/show.mpd", setup=SHAKA_EMSG, start=at - 1)
            emsg = players.wait_for(
                page,
                "Shaka's emsg of the tag",
                f"() => window.emsgs.find((e) => e.scheme === '{ID3_SCHEME}' && Math.abs(e.start - {at}) < 0.5)",
                timeout=60,
                state=SHAKA_EMSG_STATE,
            )
            frame = players.wait_for(
                page,
                "Shaka's metadata of the tag",
                "() => window.metadata.find((m) => m.type === 'org.id3' && m.key === 'TIT2'"
                f" && m.start === {emsg['start']})",
                timeout=10,
                state=SHAKA_EMSG_STATE,
            )
            shaka_segment = players.wait_for(
                page, "Shaka's segment of the tag", f"() => ({SHAKA_SEGMENT_AT})({emsg['start']})", timeout=10
            )
            assert page.evaluate("() => window.errors") == []
        finally:
            browser.close()
    for variant, parsed in seen.items():  # hls.js's media time of the tag: its fragment's start plus its offset
        assert [bytes(sample["data"]) for sample in parsed["samples"]] == [items[0].id3_bytes], variant
        assert abs(parsed["samples"][0]["pts"] - (parsed["start"] + offset)) <= 1 / 30, (variant, parsed["start"])
    # Shaka's time of the tag: the start of the segment it holds it in plus the tag's place in that segment.
    assert bytes(emsg["data"]) == items[0].id3_bytes, emsg
    assert abs(emsg["start"] - (shaka_segment["start"] + offset)) <= 1 / 30, (emsg, shaka_segment, offset)
    assert fetch(shaka_segment["uri"])[4:8] == b"emsg", shaka_segment
    assert frame["data"] == ID3_TAGS[0][0], frame


def test_rtmp_text_data_becomes_id3_in_the_ts_segments(pipeline):
    """ffmpeg's onTextData messages (a text subtitle stream over RTMP, into live encoding): each
    lands on the channel timeline at its media time as an ID3 tag of one TXXX frame, and the TS
    segment covering it carries that tag at that time, as FFmpeg reads it back."""
    base, store = pipeline["base"], pipeline["work"] / "store" / "channels" / "enc-rtmp"

    listed = partial(timeline_with_metadata, store, len(TEXT_DATA))
    timeline = wait_until(listed, timeout=90, interval=1, what="both texts on the channel timeline")
    epoch = newest_epoch(store)
    for item, (text, after) in zip(timeline.metadata, TEXT_DATA):
        assert item.id3_bytes == text_tag("onTextData", text)
        expected = Fraction(epoch["firstSegment"] * 2) + Fraction(after)  # the first frame opened the epoch
        assert abs(item.seconds - expected) <= Fraction(1, 20), (item.seconds, expected)  # AAC priming: 21 ms
    item = timeline.metadata[0]
    number = int(item.seconds // 2)
    segment = fetch(f"{base}/live/enc-rtmp/ts/v144/{number}.ts")
    with av.open(io.BytesIO(segment), format="mpegts") as container:
        data = next(stream for stream in container.streams if stream.type == "data")
        packets = [(packet.pts, bytes(packet)) for packet in container.demux(data) if packet.size]
    assert packets == [(int(item.seconds * 90_000) % (1 << 33), item.id3_bytes)]

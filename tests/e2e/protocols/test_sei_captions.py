"""GStreamer's CEA-608 captions, over RTMP and SRT: signalled, and read back by ffmpeg, hls.js
and Shaka."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

import players
import pytest
from captioned import caption_track, cue_text, read_captions
from helpers import wait_until
from media_checks import fetch
from players import chromium, open_player, sync_playwright

from .reading import segments_of
from .sources import CAPTIONED_SECONDS, PASSPHRASE, gstreamer_srt_publisher

pytestmark = pytest.mark.e2e


def test_captions_are_signalled_where_the_contribution_carries_them(pipeline):
    base = pipeline["base"]
    for channel in ("enc-gst", "cc-pass"):

        def signalled(channel=channel):
            text = fetch(f"{base}/live/{channel}/index.m3u8").decode()
            return text if 'CLOSED-CAPTIONS="cc"' in text else None

        text = wait_until(signalled, timeout=30, interval=1, what=f"{channel} signalling its captions")
        assert '#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="CC1",INSTREAM-ID="CC1",AUTOSELECT=YES' in text
        variants = [line for line in text.splitlines() if line.startswith("#EXT-X-STREAM-INF")]
        assert variants and all('CLOSED-CAPTIONS="cc"' in line for line in variants), text
        mpd = fetch(f"{base}/live/{channel}/manifest.mpd").decode()
        assert '<Accessibility schemeIdUri="urn:scte:dash:cc:cea-608:2015" value="CC1=und"/>' in mpd
    for channel in ("enc-rtmp", "srt"):  # ffmpeg's publishers send no captions
        assert "CLOSED-CAPTIONS" not in fetch(f"{base}/live/{channel}/index.m3u8").decode()
        assert "Accessibility" not in fetch(f"{base}/live/{channel}/manifest.mpd").decode()


def assert_captions_ahead(pipeline) -> None:
    """The captioned source is live and has cues left for at least another minute."""
    gstreamer = pipeline["publishers"]["gstreamer"]
    assert gstreamer.alive(), gstreamer.output()
    assert time.monotonic() + 60 < pipeline["captions_until"], f"the source's {CAPTIONED_SECONDS} s of cues are over"


def caption_numbers(srt: str) -> list[int]:
    return [int(number) for number in re.findall(r"CAPTION (\d+)", srt)]


def test_ffmpeg_reads_the_captions_back_from_every_rendition(pipeline):
    """ffmpeg's own 608 decoder reads the cues from our HLS: whole, in order, none twice."""
    assert_captions_ahead(pipeline)
    base = pipeline["base"]
    urls = [f"{base}/live/enc-gst/{rendition}/index.m3u8" for rendition in ("v144", "v72")]
    urls.append(f"{base}/live/cc-pass/video/index.m3u8")
    with ThreadPoolExecutor(len(urls)) as pool:
        read = dict(zip(urls, pool.map(lambda url: read_captions(url, seconds=10), urls)))
    for url, srt in read.items():
        numbers = caption_numbers(srt)
        assert len(numbers) >= 3 and numbers == list(range(numbers[0], numbers[0] + len(numbers))), (url, srt)
        assert all(f"{cue_text(n)}</font>" in srt for n in numbers), (url, srt)


# What hls.js has done so far, for the message of a wait that ran out.
PLAYER_STATE = (
    "() => ({time: window.v.currentTime, readyState: window.v.readyState, errors: window.errors,"
    " buffered: Array.from({length: window.v.buffered.length}, (_, i) =>"
    " [window.v.buffered.start(i), window.v.buffered.end(i)]),"
    " levels: window.player.levels.map((l) => l.details ? [l.details.startSN, l.details.endSN] : null),"
    " tracks: Array.from(window.v.textTracks, (t) => [t.kind, t.label, t.mode, t.cues ? t.cues.length : null])})"
)
# Every cue of every text track (a disabled track's cues cannot be read: those are made hidden), once
# there are two.
CUES = (
    "() => { const found = [];"
    " for (const track of window.v.textTracks) {"
    "   if (track.mode === 'disabled') track.mode = 'hidden';"
    "   for (const cue of track.cues || []) found.push([track.kind, track.label, cue.text]); }"
    " return found.length >= 2 ? found : null; }"
)


def test_hlsjs_shows_the_caption_track_with_its_cues(pipeline):
    """hls.js turns the 608 captions of the live-encoded channel into cues of a ``captions`` track
    labelled as the playlist names it.  Each wait is for one step of hls.js's own (the media buffered,
    then two captions parsed, which the source sends every 3 s), bounded for two busy cores, and a
    wait that runs out says how far hls.js got."""
    assert_captions_ahead(pipeline)
    assert_hlsjs_shows_the_captions(pipeline["base"], "enc-gst")


def test_captions_published_over_srt_by_gstreamer_reach_ffmpeg_and_hlsjs(pipeline, tmp_path):
    """GStreamer's captioned stream (608 pairs by pycaption, cccombiner, x264enc's SEI) published over SRT by
    srtsink, with the channel's passphrase, into a pass-through channel: the multivariant playlist signals
    the captions, ffmpeg's 608 decoder reads them back from its HLS, whole and in order, and hls.js shows
    them as the cues of a CC1 captions track."""
    base = pipeline["base"]
    url = f"srt://127.0.0.1:{pipeline['srt']}?streamid=cc-srt&passphrase={PASSPHRASE}"
    sender = gstreamer_srt_publisher(url, caption_track(tmp_path, 180))
    try:
        try:
            segments_of(base, "cc-srt", 3)
        except TimeoutError as error:
            raise AssertionError(f"{error}; srtsink said: {sender.output()!r}") from None
        assert 'CLOSED-CAPTIONS="cc"' in fetch(f"{base}/live/cc-srt/index.m3u8").decode()
        srt = read_captions(f"{base}/live/cc-srt/video/index.m3u8", seconds=10)
        numbers = caption_numbers(srt)
        assert len(numbers) >= 3 and numbers == list(range(numbers[0], numbers[0] + len(numbers))), srt
        assert all(f"{cue_text(n)}</font>" in srt for n in numbers), srt
        assert_hlsjs_shows_the_captions(base, "cc-srt")
        assert sender.alive(), sender.output()
    finally:
        sender.stop()


def assert_hlsjs_shows_the_captions(base: str, channel: str) -> None:
    """hls.js in Chromium plays ``channel`` and shows a ``CC1`` captions track whose cues are the
    source's captions, in order."""
    sync_api = players.sync_playwright()
    with sync_api.sync_playwright() as playwright:
        browser = players.chromium(playwright)
        try:
            page = browser.new_page()
            players.open_player(page, base, "hls", f"{base}/live/{channel}/index.m3u8")
            steps = [("media buffered", "() => window.v.buffered.length > 0", 60_000), ("two cues", CUES, 45_000)]
            for what, condition, timeout in steps:
                try:
                    found = page.wait_for_function(condition, timeout=timeout, polling=500)
                except sync_api.TimeoutError:
                    pytest.fail(f"hls.js: no {what} within {timeout / 1000:.0f} s: {page.evaluate(PLAYER_STATE)}")
            cues = found.json_value()
            assert page.evaluate("() => window.errors") == []
        finally:
            browser.close()
    assert {(kind, label) for kind, label, _ in cues} == {("captions", "CC1")}, cues
    numbers = [int(number) for _, _, text in cues for number in re.findall(r"^CAPTION (\d+)$", text)]
    assert [text for _, _, text in cues] == [cue_text(n) for n in numbers] and numbers == sorted(numbers), cues


def test_shaka_shows_the_caption_track_of_dash_with_its_cues(pipeline):
    """Shaka Player finds the CEA-608 captions the MPD's Accessibility descriptor names, offers them as
    a text track, and once it is selected turns the SEI in the video into cues of the expected text."""
    assert_captions_ahead(pipeline)
    base = pipeline["base"]
    with sync_playwright().sync_playwright() as driver:
        browser = chromium(driver)
        try:
            page = browser.new_page()
            open_player(page, base, "shaka", f"{base}/live/enc-gst/manifest.mpd")
            players.wait_for(page, "media buffered", "() => window.v.buffered.length > 0", timeout=60)
            tracks = page.evaluate(
                "() => window.player.getTextTracks().map((t) => ({kind: t.kind, mimeType: t.mimeType,"
                " language: t.language, label: t.label, id: t.originalTextId}))"
            )
            page.evaluate("() => window.player.selectTextTrack(window.player.getTextTracks()[0])")
            found = players.wait_for(page, "three cues", CUES.replace(">= 2", ">= 3"), timeout=60)
            assert page.evaluate("() => window.errors") == []
        finally:
            browser.close()
    assert len(tracks) == 1 and tracks[0]["mimeType"] == "application/cea-608", tracks
    # Shaka writes each cue as WebVTT with its 608 colours as classes: <c.white.bg_black>CAPTION 7</c>.  Unlike
    # hls.js it does not reset its 608 decoder where it joins, so a join in the middle of a caption's pairs
    # gives that caption's tail ("PTION 31") first; every cue after it is whole and in order.
    first, *texts = [re.sub(r"<[^>]*>", "", text) for _, _, text in found]
    numbers = [int(number) for text in texts for number in re.findall(r"^CAPTION (\d+)$", text)]
    assert texts == [cue_text(n) for n in range(numbers[0], numbers[0] + len(texts))], found
    assert first and cue_text(numbers[0] - 1).endswith(first), found

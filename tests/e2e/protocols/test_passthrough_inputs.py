"""Pass-through fed by each protocol: continuous, decodable, playing in hls.js; and the
Enhanced RTMP multitrack publish."""

from __future__ import annotations

import io

import av
import players
import pytest
from helpers import tone_frequency
from media_checks import download, media_playlist, multivariant

from .reading import segments_of
from .sources import MULTITRACK_TONES

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("channel", ["udp", "rtp", "srt", "smooth", "cmaf", "cmafhls", "rtmps", "https", "multitrack"])
def test_each_protocol_publishes_a_continuous_decodable_rendition(pipeline, channel):
    variants, playlist = segments_of(pipeline["base"], channel, 6)
    assert [v.attributes["RESOLUTION"] for v in variants] == ["320x240"]
    assert playlist.discontinuities == 0
    track = download(playlist)
    times = track.decode_times()
    assert all(later[0] == earlier[0] + earlier[1] for earlier, later in zip(times, times[1:])), (
        f"{channel}: tfdt continuous {times}"
    )
    scale = (
        track.timescale
    )  # pass-through keeps the source's clock: 90 kHz from TS, the track's own from Smooth and CMAF
    assert all(abs(duration - 2 * scale) <= scale // 30 for _, duration in times[:-1]), (
        f"{channel}: 2 s segments {times}"
    )
    frames = track.frames()
    assert len(frames) >= 30 * 2 * (len(times) - 1) and frames[0][1]


def test_an_enhanced_rtmp_multitrack_publish_is_taken_with_its_first_audio_track(pipeline):
    """FFmpeg 8 sends the second audio track as an Enhanced RTMP v2 multitrack tag, which the
    ingest once refused ("audio must be AAC"): now the publish is taken.  Enhanced RTMP names no
    language, so the second track is not published (a further track needs one)."""
    base = pipeline["base"]
    segments_of(base, "multitrack", 3)
    _, media = multivariant(f"{base}/live/multitrack/index.m3u8")
    audio = [m for m in media if m.get("TYPE") == "AUDIO"]
    assert len(audio) == 1, audio
    track = download(media_playlist(audio[0]["URI"]))
    frames = list(av.open(io.BytesIO(track.init + b"".join(track.segments)), format="mp4").decode(audio=0))
    assert tone_frequency(frames[4:]) == pytest.approx(MULTITRACK_TONES[0], rel=0.02), "the first track's tone"
    log = pipeline["up"].output(last=100_000).splitlines()
    assert not [line for line in log if "multitrack" in line and ("refused" in line or "closing" in line)]


def test_each_protocol_plays_in_chromium_with_hlsjs(pipeline):
    playwright_sync = players.sync_playwright()
    with playwright_sync.sync_playwright() as playwright:
        browser = players.chromium(playwright)
        try:
            for channel in ("udp", "rtp", "srt", "smooth", "cmaf", "cmafhls"):
                page = browser.new_page()
                page.goto(f"{pipeline['base']}/preview/{channel}/", timeout=30_000)
                page.wait_for_function(
                    "() => window.kubecastPlayer && window.kubecastPlayer.video && "
                    "window.kubecastPlayer.video.currentTime > 0.5",
                    timeout=45_000,
                )
                start = page.evaluate("() => window.kubecastPlayer.video.currentTime")
                page.wait_for_function(f"() => window.kubecastPlayer.video.currentTime > {start + 3}", timeout=30_000)
                assert page.evaluate("() => window.kubecastPlayer.errors") == [], channel
                page.close()
        finally:
            browser.close()

"""Two audio languages end to end: Debian's ffmpeg publishes an MPEG-TS with an AAC PID per language
(English at 440 Hz, Spanish at 1000 Hz, each named by its ISO_639_language_descriptor) over UDP into a
pass-through channel and over SRT into a live-encoded one (stereo AAC at 48 kHz: copied, not
re-encoded); the HLS multivariant playlist lists one
audio rendition per language, the MPD one AdaptationSet per language, PyAV decodes each language's
own tone from what the endpoint serves, and hls.js, dash.js and Shaka Player in Chromium list both and switch
language, fetching the other language's segments from then on."""

from __future__ import annotations

import io
import re
from pathlib import Path

import av
import players
import pytest
from helpers import COPIED_AAC, Proc, free_port, kubecast, lavfi_source, tone_frequency, wait_until
from media_checks import MPD_NS, download, media_playlist, mpd, multivariant

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent
TONES = {"eng": 440, "spa": 1000}


def publisher(name: str, url: str) -> Proc:
    """A real-time publisher of both languages until the module's teardown stops it: the players'
    tests need the channel live, whatever the tests before them took."""
    tones = [arg for frequency in TONES.values() for arg in lavfi_source(frequency=frequency)[4:]]
    return Proc(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", *lavfi_source(size="320x240")[:4], *tones]
        + ["-map", "0:v", "-map", "1:a", "-map", "2:a"]
        + ["-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0"]
        + ["-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", *COPIED_AAC]  # lang-srt copies both languages
        + ["-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=spa", "-f", "mpegts", url],
        name=f"ffmpeg {name}",
    )


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    work = tmp_path_factory.mktemp("languages")
    http, srt = free_port(), free_port()
    up = kubecast(
        "up",
        "-f",
        str(HERE / "languages.yaml"),
        "--store",
        str(work / "store"),
        "--single-encoder",
        "--rtmp-port",
        str(free_port()),
        "--http-port",
        str(http),
        "--ingest-http-port",
        str(free_port()),
        "--srt-port",
        str(srt),
        cwd=str(work),
    )
    publishers = []
    try:
        up.wait_for_line(r"Status page:", timeout=120)
        printed = up.output(last=100000)
        udp = int(re.search(r"udp://127\.0\.0\.1:(\d+)", printed.split("Channel lang-udp\n", 1)[1]).group(1))
        publishers = [
            publisher("lang-udp", f"udp://127.0.0.1:{udp}?pkt_size=1316"),
            publisher("lang-srt", f"srt://127.0.0.1:{srt}?streamid=lang-srt&pkt_size=1316"),
        ]
        yield f"http://127.0.0.1:{http}"
    finally:
        for process in publishers:
            process.stop()
        up.stop(timeout=30)


def audio_renditions(base: str, channel: str, at_least: int) -> list[dict[str, str]]:
    """The audio renditions of the channel's multivariant playlist once each has ``at_least`` segments."""

    def ready():
        _, media = multivariant(f"{base}/live/{channel}/index.m3u8")
        audio = [m for m in media if m.get("TYPE") == "AUDIO"]
        if len(audio) < 2:
            return None
        counts = [len(media_playlist(m["URI"]).segments) for m in audio]  # (URI made absolute)
        return audio if min(counts) >= at_least else None

    return wait_until(ready, timeout=90, interval=1, what=f"two audio renditions of {channel}")


@pytest.mark.parametrize("channel", ["lang-udp", "lang-srt"])
def test_each_language_is_an_audio_rendition_with_its_own_audio(pipeline, channel):
    audio = audio_renditions(pipeline, channel, 3)
    assert [(m["LANGUAGE"], m["NAME"], m["DEFAULT"], m["AUTOSELECT"], m["GROUP-ID"]) for m in audio] == [
        ("eng", "eng", "YES", "YES", "audio"),
        ("spa", "spa", "NO", "YES", "audio"),
    ]
    variants, _ = multivariant(f"{pipeline}/live/{channel}/index.m3u8")
    assert all(v.attributes["AUDIO"] == "audio" for v in variants)
    numbers = {}
    for rendition in audio:
        playlist = media_playlist(rendition["URI"])
        assert playlist.discontinuities == 0
        track = download(playlist)
        times = track.decode_times()
        assert all(b[0] == a[0] + a[1] for a, b in zip(times, times[1:])), f"{rendition['LANGUAGE']}: no gap"
        frames = list(av.open(io.BytesIO(track.init + b"".join(track.segments)), format="mp4").decode(audio=0))
        frequency = tone_frequency(frames[4:])
        assert frequency == pytest.approx(TONES[rendition["LANGUAGE"]], rel=0.02), rendition
        numbers[rendition["LANGUAGE"]] = [url.rsplit("/", 1)[1] for url, _ in playlist.segments]
    common = set(numbers["eng"]) & set(numbers["spa"])
    assert len(common) >= 2, f"both languages on the same segment numbers: {numbers}"


@pytest.mark.parametrize("channel", ["lang-udp", "lang-srt"])
def test_each_language_is_an_adaptation_set_with_its_lang(pipeline, channel):
    audio_renditions(pipeline, channel, 2)
    root = mpd(f"{pipeline}/live/{channel}/manifest.mpd")
    sets = [a for a in root.iter(f"{{{MPD_NS['mpd']}}}AdaptationSet") if a.get("contentType") == "audio"]
    assert [a.get("lang") for a in sets] == ["eng", "spa"]


def test_hlsjs_lists_both_languages_and_switches(pipeline):
    audio_renditions(pipeline, "lang-srt", 3)
    with players.sync_playwright().sync_playwright() as playwright:
        browser = players.chromium(playwright)
        try:
            page = browser.new_page()
            players.open_player(page, pipeline, "hls", f"{pipeline}/live/lang-srt/index.m3u8")
            page.evaluate(
                "() => { window.switched = []; window.player.on(Hls.Events.AUDIO_TRACK_SWITCHED,"
                " (_e, data) => window.switched.push(window.player.audioTracks[data.id].lang)); }"
            )
            page.wait_for_function("() => window.v.currentTime > 1", timeout=60_000, polling=500)
            tracks = page.evaluate("() => window.player.audioTracks.map((t) => [t.lang, t.name, t.default])")
            assert tracks == [["eng", "eng", True], ["spa", "spa", False]]
            assert page.evaluate("() => window.player.audioTrack") == 0
            page.evaluate("() => { window.player.audioTrack = 1; }")
            page.wait_for_function("() => window.switched.includes('spa')", timeout=30_000, polling=500)
            at = page.evaluate("() => window.v.currentTime")
            page.wait_for_function(f"() => window.v.currentTime > {at + 3}", timeout=30_000, polling=500)
            loaded = page.evaluate(
                "() => performance.getEntriesByType('resource').map((e) => e.name)"
                ".filter((n) => n.includes('/audio-1/'))"
            )
            assert any(name.endswith(".m4s") for name in loaded), "the Spanish segments were fetched"
            assert page.evaluate("() => window.errors") == []
        finally:
            browser.close()


def fetched_after(page, mark: float, folder: str) -> list[str]:
    """The segments of ``folder`` (a track's own folder, as HLS and DASH name it) requested after ``mark``
    (the page's performance.now())."""
    return page.evaluate(
        "([mark, folder]) => performance.getEntriesByType('resource')"
        ".filter((e) => e.startTime > mark && e.name.includes(folder) && e.name.endsWith('.m4s')).map((e) => e.name)",
        [mark, folder],
    )


# dash.js: the languages of its audio tracks, and the one it plays (dash.js and Shaka name languages by
# their shortest BCP 47 tag: "en" for the MPD's "eng").
DASHJS_TRACKS = (
    "() => [window.player.getTracksFor('audio').map((t) => t.lang),"
    " (window.player.getCurrentTrackFor('audio') || {}).lang]"
)
# Shaka: its audio tracks as [language, active].
SHAKA_TRACKS = "() => window.player.getAudioTracks().map((t) => [t.language, t.active])"


def test_dashjs_lists_both_languages_and_switches(pipeline):
    audio_renditions(pipeline, "lang-srt", 3)
    with players.sync_playwright().sync_playwright() as playwright:
        browser = players.chromium(playwright)
        try:
            page = browser.new_page()
            players.open_player(page, pipeline, "dash", f"{pipeline}/live/lang-srt/manifest.mpd")
            page.evaluate(
                "() => { window.switched = []; window.player.on(dashjs.MediaPlayer.events.TRACK_CHANGE_RENDERED,"
                " (e) => { if (e.mediaType === 'audio') window.switched.push(e.newMediaInfo.lang); }); }"
            )
            players.wait_for(page, "playback", "() => window.v.currentTime > 1", timeout=60)
            assert page.evaluate(DASHJS_TRACKS) == [["en", "es"], "en"], "dash.js starts with the default language"
            mark = page.evaluate("() => performance.now()")
            page.evaluate(
                "() => window.player.setCurrentTrack(window.player.getTracksFor('audio').find((t) => t.lang === 'es'))"
            )
            players.wait_for(page, "switch to spa", "() => window.switched.includes('es')", timeout=30)
            at = page.evaluate("() => window.v.currentTime")
            players.wait_for(
                page, "3 s of playback after the switch", f"() => window.v.currentTime > {at + 3}", timeout=30
            )
            assert page.evaluate(DASHJS_TRACKS)[1] == "es"
            assert fetched_after(page, mark, "/audio-1/"), "the Spanish segments were fetched"
            assert page.evaluate("() => window.errors") == []
        finally:
            browser.close()


@pytest.mark.parametrize("manifest", ["manifest.mpd", "index.m3u8"])
def test_shaka_lists_both_languages_and_switches(pipeline, manifest):
    audio_renditions(pipeline, "lang-srt", 3)
    with players.sync_playwright().sync_playwright() as playwright:
        browser = players.chromium(playwright)
        try:
            page = browser.new_page()
            players.open_player(page, pipeline, "shaka", f"{pipeline}/live/lang-srt/{manifest}")
            players.wait_for(page, "playback", "() => window.v.currentTime > 1", timeout=60)
            assert page.evaluate(SHAKA_TRACKS) == [["en", True], ["es", False]]
            mark = page.evaluate("() => performance.now()")
            page.evaluate(
                "() => window.player.selectAudioTrack(window.player.getAudioTracks().find((t) => t.language === 'es'))"
            )
            players.wait_for(
                page,
                "switch to spa",
                "() => window.player.getAudioTracks().some((t) => t.active && t.language === 'es')",
                timeout=30,
            )
            at = page.evaluate("() => window.v.currentTime")
            players.wait_for(
                page, "3 s of playback after the switch", f"() => window.v.currentTime > {at + 3}", timeout=30
            )
            assert page.evaluate(SHAKA_TRACKS) == [["en", False], ["es", True]]
            assert fetched_after(page, mark, "/audio-1/"), "the Spanish segments were fetched"
            assert page.evaluate("() => window.errors") == []
        finally:
            browser.close()

"""A program with a one-minute window over a live stream, played by hls.js and dash.js in
Chromium: seek back 45 s while live, a seek before the window is clamped, and after the
program stops hls.js (fMP4 and TS segments), dash.js and dash.js's Smooth Streaming support
play the recording from its start to its end, and every format of it is continuous.  While it
runs, live Smooth and start-over (HLS and DASH) play too."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import players
import pytest
from helpers import Proc, free_port, kubecast, lavfi_source, wait_until
from media_checks import download, expand_timeline, fetch, media_playlist, mpd

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent
PLAYERS = {
    "hls": "const p = new Hls({liveSyncDurationCount: 3}); p.loadSource(url); p.attachMedia(v); window.player = p;",
    "dash": "const p = dashjs.MediaPlayer().create(); p.initialize(v, url, true); window.player = p;",
    "smooth": "const p = dashjs.MediaPlayer().create(); p.initialize(v, url, true); window.player = p;",
}
SCRIPTS = {
    "hls": ["hls.min.js"],
    "dash": ["dash.all.min.js"],
    "smooth": ["dash.all.min.js", "dash.mss.min.js"],
}  # dash.js plays Smooth with its MSS part


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    work = tmp_path_factory.mktemp("programs")
    rtmp, http = free_port(), free_port()
    up = kubecast(
        "up",
        "-f",
        str(HERE / "programs.yaml"),
        "--store",
        str(work / "store"),
        "--single-encoder",
        "--rtmp-port",
        str(rtmp),
        "--rtmp-secondary-port",
        str(free_port()),
        "--http-port",
        str(http),
        "--status-interval",
        "5",
        cwd=str(work),
    )
    publisher = None
    try:
        up.wait_for_line(r"Status page:", timeout=90)
        publisher = Proc(
            [
                "ffmpeg",
                "-hide_banner",
                "-loglevel",
                "error",
                "-re",
                *lavfi_source(size="320x240", frequency=None),
                "-t",
                "150",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-g",
                "60",
                "-keyint_min",
                "60",
                "-sc_threshold",
                "0",
                "-c:a",
                "aac",
                "-f",
                "flv",
                f"rtmp://127.0.0.1:{rtmp}/live/studio/any",
            ],
            name="publisher",
        )
        base = f"http://127.0.0.1:{http}"
        wait_until(
            lambda: len(media_playlist(f"{base}/show-loc/video/index.m3u8").segments) >= 30,
            timeout=120,
            interval=2,
            what="a full one-minute window",
        )
        yield {"base": base, "store": work / "store", "up": up}
    finally:
        if publisher:
            publisher.stop()
        up.stop(timeout=30)


def test_windows_slide_and_two_programs_record_independently(pipeline):
    base = pipeline["base"]

    def slid():
        playlist = media_playlist(f"{base}/show-loc/video/index.m3u8")
        return playlist if playlist.media_sequence > 0 else None

    show = wait_until(slid, timeout=15, interval=1, what="the window to slide")
    short = media_playlist(f"{base}/short/video/index.m3u8")
    assert 29 <= len(show.segments) <= 31 and 5 <= len(short.segments) <= 6, "each program keeps its own window"
    assert not show.ended and show.media_sequence > 0, "a sliding live playlist"
    root = mpd(f"{base}/show-loc/show.mpd")
    assert root.get("type") == "dynamic" and root.get("timeShiftBufferDepth") == "PT60S"


def _open(page, base: str, engine: str, url: str) -> None:
    page.goto(f"{base}/healthz")
    for script in SCRIPTS[engine]:
        page.add_script_tag(url=f"{base}/static/vendor/{script}")
    page.evaluate(
        "([url, code]) => { const v = document.createElement('video'); v.muted = true; v.autoplay = true; "
        "document.body.appendChild(v);"
        " window.v = v; window.errors = []; v.addEventListener('error', () => window.errors.push('video error'));"
        " window.ended = false; v.addEventListener('ended', () => { window.ended = true; });"
        " window.playing = false; v.addEventListener('playing', () => { window.playing = true; });"
        " (new Function('url', 'v', code))(url, v); }",
        [url, PLAYERS[engine]],
    )


# A player is asked to seek only once it has started playing ('playing' fired, not seeking). Before
# that dash.js is still carrying out its own start-up seek to the live edge (liveDelay behind it):
# a player.seek() issued between that seek and the first appended segment is undone by dash.js's
# BufferController, whose start-up seek target is still set and which moves the playhead back to
# the start of that first segment ("Requesting seek to time: <edge - 8> (internal)"), so dash.js
# went on playing ~8 s behind the edge.  Waiting for currentTime > 0.5 did not exclude that window:
# Chromium moves currentTime to the start of the seekable range at loadedmetadata.
@pytest.mark.parametrize("engine", ["hls", "dash"])
def test_dvr_seek_back_and_clamping_while_live(pipeline, engine):
    playwright_sync = players.sync_playwright()
    url = f"{pipeline['base']}/show-loc/show.{'m3u8' if engine == 'hls' else 'mpd'}"
    with playwright_sync.sync_playwright() as playwright:
        browser = players.chromium(playwright)
        try:
            page = browser.new_page()
            _open(page, pipeline["base"], engine, url)
            page.wait_for_function(
                "() => window.playing && !window.v.seeking && window.v.currentTime > 0.5 && window.v.seekable.length > "
                "0",
                timeout=45_000,
            )
            window = page.evaluate("() => [window.v.seekable.start(0), window.v.seekable.end(0)]")
            assert window[1] - window[0] >= 50, f"{engine} sees the DVR window: {window}"
            # Seconds behind the live edge, and a seek to a point that far back, in each player's terms:
            # dash.js's seek() takes a time relative to the DVR window's start (duration() is the window's
            # length) and clamps a negative one to that start; getCurrentLiveLatency() is now minus the
            # playhead, not clamped to the window the way duration() - time() is.
            behind = {
                "hls": "window.v.seekable.end(0) - window.v.currentTime",
                "dash": "window.player.getCurrentLiveLatency()",
            }[engine]
            seek_back = {
                "hls": "window.v.currentTime = window.v.seekable.end(0) - 45",
                "dash": "window.player.seek(window.player.duration() - 45)",
            }[engine]
            page.evaluate(f"() => {{ {seek_back}; }}")
            page.wait_for_function(f"() => !window.v.seeking && Math.abs(({behind}) - 45) < 6", timeout=30_000)
            resumed = page.evaluate("() => window.v.currentTime")
            page.wait_for_function(f"() => window.v.currentTime > {resumed + 2}", timeout=30_000)
            playing_behind = page.evaluate(f"() => {behind}")
            assert abs(playing_behind - 45) < 8, (
                f"{engine} plays from there, not from the live edge: {playing_behind:.1f} s behind"
            )
            # Before the window (hls.js: media time 0, which the window has slid past; dash.js: 30 s before
            # the window's start): the player moves, and lands inside the window (60 s plus one segment).
            clamp = {"hls": "window.v.currentTime = 0", "dash": "window.player.seek(-30)"}[engine]
            before = page.evaluate(f"() => {behind}")
            page.evaluate(f"() => {{ {clamp}; }}")
            page.wait_for_function(
                f"() => !window.v.seeking && Math.abs(({behind}) - {before}) > 5"
                f" && ({behind}) <= 62 && ({behind}) >= 0",
                timeout=30_000,
            )
            page.wait_for_function(
                f"() => window.v.currentTime > {page.evaluate('() => window.v.currentTime')} + 1", timeout=30_000
            )
            assert page.evaluate("() => window.errors") == []
        finally:
            browser.close()


def test_live_smooth_and_start_over_play_in_chromium(pipeline):
    """While the program runs: dash.js's Smooth support plays the live Smooth manifest (it
    learns new fragments from tfrf), and start-over begins near the window's start, in HLS
    (?startover) and in DASH (the MPD anchor #t=posix:<window start>)."""
    base = pipeline["base"]
    text = fetch(f"{base}/show-loc/video/index.m3u8").decode()
    window_start = datetime.fromisoformat(
        re.search(r"#EXT-X-PROGRAM-DATE-TIME:(\S+)", text).group(1).replace("Z", "+00:00")
    ).timestamp()
    playwright_sync = players.sync_playwright()
    with playwright_sync.sync_playwright() as playwright:
        browser = players.chromium(playwright)
        try:
            page = browser.new_page()
            _open(page, base, "smooth", f"{base}/show-loc/show.ism/manifest")
            page.wait_for_function("() => window.playing && window.v.currentTime > 0", timeout=45_000)
            started = page.evaluate("() => window.v.currentTime")
            page.wait_for_function(
                f"() => window.v.currentTime > {started + 6}", timeout=30_000
            )  # past the fragments the first manifest listed
            assert page.evaluate("() => window.errors") == [], "live Smooth"
            page.close()
            for engine, url, behind in (
                ("hls", f"{base}/show-loc/show.m3u8?startover", "window.v.seekable.end(0) - window.v.currentTime"),
                (
                    "dash",
                    f"{base}/show-loc/show.mpd#t=posix:{window_start:.3f}",
                    "window.player.getCurrentLiveLatency()",
                ),
            ):
                page = browser.new_page()
                _open(page, base, engine, url)
                page.wait_for_function(
                    "() => window.playing && !window.v.seeking && window.v.currentTime > 0", timeout=45_000
                )
                distance = page.evaluate(f"() => {behind}")
                assert 45 <= distance <= 66, (
                    f"{engine} starts over near the window's start, not at the edge: {distance:.1f} s behind"
                )
                page.close()
        finally:
            browser.close()


def test_after_stop_both_players_play_the_recording_to_its_end(pipeline):
    subprocess.run(
        [*kubecast_argv(), "program", "stop", "show", "--store", str(pipeline["store"])], check=True, timeout=30
    )
    base = pipeline["base"]
    wait_until(
        lambda: media_playlist(f"{base}/show-loc/video/index.m3u8").ended, timeout=20, what="the recording to end"
    )
    recording = media_playlist(f"{base}/show-loc/video/index.m3u8")
    assert mpd(f"{base}/show-loc/show.ism/manifest(format=mpd-time-cmaf)").get("type") == "static"
    assert "#EXT-X-ENDLIST" in fetch(f"{base}/show-loc/show.ism/ts/video/index.m3u8").decode()
    length = sum(duration for _, duration in recording.segments)
    playwright_sync = players.sync_playwright()
    with playwright_sync.sync_playwright() as playwright:
        browser = players.chromium(playwright)
        try:
            for engine, url in (
                ("hls", f"{base}/show-loc/show.m3u8"),
                ("hls", f"{base}/show-loc/show.ism/manifest(format=m3u8-aapl)"),
                ("dash", f"{base}/show-loc/show.mpd"),
                ("smooth", f"{base}/show-loc/show.ism/manifest"),
            ):
                page = browser.new_page()
                logged = []
                page.on("console", lambda message, logged=logged: logged.append(message.text))
                _open(page, base, engine, url)
                try:
                    page.wait_for_function("() => window.v.readyState >= 2", timeout=30_000)
                except Exception as error:
                    state = page.evaluate(
                        "() => [window.v.readyState, window.v.currentTime, window.errors, Array.from({length: "
                        "window.v.buffered.length}, (_, i) => [window.v.buffered.start(i), window.v.buffered.end(i)])]"
                    )
                    raise AssertionError(
                        f"{engine} never got a frame (readyState, currentTime, errors, buffered): {state} "
                        f"{logged[-10:]}"
                    ) from error
                assert abs(page.evaluate("() => window.v.duration") - length) < 2.5, f"{engine}: the whole recording"
                page.evaluate("() => { window.v.currentTime = 0; window.v.playbackRate = 8; window.v.play(); }")
                page.wait_for_function("() => window.ended", timeout=60_000)
                assert page.evaluate("() => window.errors") == [], engine
                page.close()
        finally:
            browser.close()


# hls.js with a JWT on its key requests only (the AMS key delivery model); the page's own state as _open's.
PLAY_AES128 = """([url, token]) => {
  const v = document.createElement('video'); v.muted = true; document.body.appendChild(v);
  window.v = v; window.errors = []; window.ended = false; v.addEventListener('ended', () => { window.ended = true; });
  const p = new Hls({xhrSetup: (xhr, url) => {
    if (url.includes('/keys/')) xhr.setRequestHeader('Authorization', 'Bearer ' + token);
  }});
  p.on(Hls.Events.ERROR, (_e, data) => { if (data.fatal) window.errors.push(data.details); });
  p.loadSource(url); p.attachMedia(v); window.player = p; }"""


def test_a_stopped_program_plays_aes128_encrypted_in_hls_js_to_its_end(pipeline, tmp_path):
    """A protected endpoint over the same store serves the stopped recording in AES-128 (segments
    that are not the stored ones, a key every ten segments); hls.js plays it, fMP4 and TS, from
    start to end, fetching its keys with a JWT."""
    import time

    import jwt

    from kubecast.api.components import EndpointConfig

    base = pipeline["base"]
    wait_until(
        lambda: media_playlist(f"{base}/show-loc/video/index.m3u8").ended, timeout=20, what="the recording to end"
    )
    length = sum(duration for _, duration in media_playlist(f"{base}/show-loc/video/index.m3u8").segments)
    (tmp_path / "master").write_text("00112233445566778899aabbccddeeff")
    (tmp_path / "jwt").write_text("viewers")
    config = EndpointConfig.model_validate(
        {
            "contentProtection": {
                "masterKeyFile": str(tmp_path / "master"),
                "keyRotationSegments": 10,
                "keyDelivery": {"jwtKeyFile": str(tmp_path / "jwt")},
            }
        }
    )
    (tmp_path / "endpoint.json").write_text(config.to_json())
    port = free_port()
    endpoint = kubecast(
        "endpoint",
        "--store",
        str(pipeline["store"]),
        "--listen",
        f"127.0.0.1:{port}",
        "--config",
        str(tmp_path / "endpoint.json"),
    )
    try:
        endpoint.wait_for_line("listening on", timeout=30)
        protected = f"http://127.0.0.1:{port}"
        playlist = fetch(f"{protected}/show-loc/video/index.m3u8").decode()
        assert playlist.count("#EXT-X-KEY:METHOD=AES-128") >= 3 and "#EXT-X-ENDLIST" in playlist
        first = next(line for line in playlist.splitlines() if line and not line.startswith("#"))
        assert fetch(f"{protected}/show-loc/video/{first}") != fetch(f"{base}/show-loc/video/{first}"), "encrypted"
        token = jwt.encode({"exp": int(time.time()) + 600}, "viewers", algorithm="HS256")
        playwright_sync = players.sync_playwright()
        with playwright_sync.sync_playwright() as playwright:
            browser = players.chromium(playwright)
            try:
                for url in (
                    f"{protected}/show-loc/show.m3u8",
                    f"{protected}/show-loc/show.ism/manifest(format=m3u8-aapl)",
                ):
                    page = browser.new_page()
                    keys: set[str] = set()
                    page.on(
                        "request", lambda request, keys=keys: keys.add(request.url) if "/keys/" in request.url else None
                    )
                    page.goto(f"{protected}/healthz")
                    page.add_script_tag(url=f"{protected}/static/vendor/hls.min.js")
                    page.evaluate(PLAY_AES128, [url, token])
                    page.wait_for_function("() => window.errors.length || window.v.readyState >= 2", timeout=30_000)
                    assert page.evaluate("() => window.errors") == [], url
                    assert abs(page.evaluate("() => window.v.duration") - length) < 2.5, f"{url}: the whole recording"
                    page.evaluate("() => { window.v.currentTime = 0; window.v.playbackRate = 8; window.v.play(); }")
                    page.wait_for_function("() => window.errors.length || window.ended", timeout=60_000)
                    assert page.evaluate("() => window.errors") == [] and page.evaluate("() => window.ended"), url
                    assert len(keys) >= 3, f"{url}: a key per ten segments, each fetched ({keys})"
                    page.close()
            finally:
                browser.close()
    finally:
        endpoint.stop()


def test_every_format_of_the_recording_is_continuous_and_the_ts_copy_decodes(pipeline):
    base = pipeline["base"]
    wait_until(
        lambda: media_playlist(f"{base}/show-loc/video/index.m3u8").ended, timeout=20, what="the recording to end"
    )
    for rendition in ("video", "audio"):
        times = download(media_playlist(f"{base}/show-loc/{rendition}/index.m3u8")).decode_times()
        assert all(a[0] + a[1] == b[0] for a, b in zip(times, times[1:])), f"HLS fMP4 {rendition}: tfdt continuous"
    root = mpd(f"{base}/show-loc/show.mpd")
    for template in root.iter("{urn:mpeg:dash:schema:mpd:2011}SegmentTemplate"):
        entries = expand_timeline(template)
        assert len(entries) >= 29 and all(a[0] + a[1] == b[0] for a, b in zip(entries, entries[1:])), (
            "DASH: no gap in the SegmentTimeline"
        )
    smooth = ET.fromstring(fetch(f"{base}/show-loc/show.ism/manifest"))
    for index in smooth.iter("StreamIndex"):
        chunks = [(int(c.get("t")), int(c.get("d"))) for c in index.iter("c")]
        assert chunks[0][0] == 0 and all(a[0] + a[1] == b[0] for a, b in zip(chunks, chunks[1:])), (
            f"Smooth {index.get('Type')}: contiguous from 0"
        )
    # HLS with TS segments: ffmpeg reads the whole recording through the playlist, audio and video, without an error.
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time",
            "-of",
            "csv=p=0",
            f"{base}/show-loc/show.ism/ts/video/index.m3u8",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0 and not probe.stderr.strip(), probe.stderr
    pts = sorted(float(line.strip(",")) for line in probe.stdout.split() if line.strip(","))
    steps = [b - a for a, b in zip(pts, pts[1:])]
    assert len(pts) >= 29 * 2 * 30 and max(steps) < 0.05, "TS: every frame, one frame apart across segment joins"
    decoded = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", f"{base}/show-loc/show.ism/ts/video/index.m3u8", "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert decoded.returncode == 0 and not decoded.stderr.strip(), decoded.stderr


def kubecast_argv() -> list[str]:
    import sys

    return [sys.executable, "-m", "kubecast.cli"]

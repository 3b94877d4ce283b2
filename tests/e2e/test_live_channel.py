"""One live channel end to end on one machine, with real peers on every side.

Debian's ffmpeg publishes testsrc2 + sine over RTMP into ``kubecast up``; PyAV and ffprobe read
the HLS and DASH it serves; headless Chromium plays the preview page with hls.js and dash.js.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urljoin

import players
import pytest
from helpers import Proc, contribution_command, free_port, kubecast, wait_until
from media_checks import MPD_NS, download, expand_timeline, fetch, media_playlist, mpd, multivariant

from kubecast.media.mp4 import parse_media_segment

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent
SEGMENT = 2.0
LADDER = {"v360": (640, 360), "v270": (480, 270), "v180": (320, 180)}


def ffmpeg_publish(url: str, *, seconds: float, size: str = "640x360", extra: list[str] | None = None) -> Proc:
    options = ["-pix_fmt", "yuv420p", "-b:a", "96k", *(extra or [])]
    command = contribution_command(url, seconds=seconds, size=size, gop=60, extra=options, loglevel="warning")
    return Proc(command, name="ffmpeg publisher")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    work = tmp_path_factory.mktemp("pipeline")
    rtmp, http = free_port(), free_port()
    up = kubecast(
        "up",
        "-f",
        str(HERE / "channels.yaml"),
        "--store",
        str(work / "store"),
        "--rtmp-port",
        str(rtmp),
        "--rtmp-secondary-port",
        str(free_port()),
        "--http-port",
        str(http),
        "--status-interval",
        "2",
        cwd=str(work),
    )
    publisher = None
    try:
        up.wait_for_line(r"Status page:", timeout=90)
        # Longer than the module's tests take (~3 min on 2 cores): the last of them still need cam1
        # live; the publisher is stopped at teardown.
        publisher = ffmpeg_publish(f"rtmp://127.0.0.1:{rtmp}/live/cam1/key-for-cam1", seconds=300)
        base = f"http://127.0.0.1:{http}"
        wait_until(
            lambda: len(media_playlist(f"{base}/live/cam1/v180/index.m3u8").segments) >= 5,
            timeout=90,
            interval=0.5,
            what="five published segments",
        )
        yield {"base": base, "rtmp": rtmp, "up": up, "publisher": publisher, "store": work / "store"}
    finally:
        if publisher:
            publisher.stop()
        up.stop(timeout=30)


def test_multivariant_playlist_lists_the_ladder(pipeline):
    variants, media = multivariant(f"{pipeline['base']}/live/cam1/index.m3u8")
    resolutions = {v.attributes["RESOLUTION"] for v in variants}
    assert resolutions == {f"{w}x{h}" for w, h in LADDER.values()}
    bandwidths = [int(v.attributes["BANDWIDTH"]) for v in variants]
    assert bandwidths == sorted(bandwidths, reverse=True)
    for variant in variants:
        assert variant.attributes["CODECS"].startswith("avc1.") and "mp4a.40.2" in variant.attributes["CODECS"]
        assert abs(float(variant.attributes["FRAME-RATE"]) - 30) < 0.01
        assert int(variant.attributes["AVERAGE-BANDWIDTH"]) <= int(variant.attributes["BANDWIDTH"])
    assert [m["TYPE"] for m in media] == ["AUDIO"]


def test_hls_renditions_are_aligned_and_continuous(pipeline):
    base = pipeline["base"]
    playlists = {name: media_playlist(f"{base}/live/cam1/{name}/index.m3u8") for name in LADDER}
    # Compare the same segment numbers in every rendition (a playlist may be one segment ahead).
    first = max(p.media_sequence for p in playlists.values())
    last = min(p.media_sequence + len(p.segments) - 1 for p in playlists.values())
    assert last - first >= 3
    keyframe_times = {}
    for name, playlist in playlists.items():
        assert playlist.discontinuities == 0 and not playlist.ended
        assert playlist.target_duration == 2
        for _, duration in playlist.segments:
            assert duration == pytest.approx(SEGMENT, abs=0.05)
        offset = first - playlist.media_sequence
        playlist.segments = playlist.segments[offset : offset + last - first + 1]
        track = download(playlist)
        times = track.decode_times()
        for number, (tfdt, duration) in enumerate(times, start=first):
            assert tfdt == number * 2 * 90000, f"{name} segment {number} does not start at n*D"
            assert duration == 2 * 90000
        for (tfdt, duration), (next_tfdt, _) in zip(times, times[1:]):
            assert next_tfdt == tfdt + duration
        frames = track.frames()
        assert len(frames) == pytest.approx(30 * SEGMENT * len(times), abs=2)
        keyframe_times[name] = [pts for pts, key in frames if key]
        assert keyframe_times[name] == [n * 2 * 90000 for n in range(first, last + 1)], (
            "a key frame at every boundary, none between"
        )
    assert len({tuple(times) for times in keyframe_times.values()}) == 1, "key frames aligned across renditions"


def test_hls_audio_is_continuous(pipeline):
    _, media = multivariant(f"{pipeline['base']}/live/cam1/index.m3u8")
    track = download(media_playlist(media[0]["URI"]))
    times = track.decode_times()
    assert len(times) >= 3
    for (tfdt, duration), (next_tfdt, _) in zip(times, times[1:]):
        assert next_tfdt == tfdt + duration


def test_ffprobe_reads_hls_and_dash(pipeline):
    for url, kind in (
        (f"{pipeline['base']}/live/cam1/index.m3u8", "hls"),
        (f"{pipeline['base']}/live/cam1/manifest.mpd", "dash"),
    ):
        result = subprocess.run(
            ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        streams = json.loads(result.stdout)["streams"]
        video = {(s["width"], s["height"]) for s in streams if s["codec_type"] == "video"}
        assert video == set(LADDER.values()), kind
        assert any(s["codec_type"] == "audio" and s["codec_name"] == "aac" for s in streams), kind


def ffmpeg_complaints(url: str, *, every_stream: bool = False) -> str:
    """What ``ffmpeg -v error`` prints reading 6 s of ``url`` (empty when all is well)."""
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", url, *(["-map", "0"] if every_stream else []), "-t", "6", "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr.strip()


@pytest.mark.parametrize("manifest", ["index.m3u8", "manifest.mpd"])
def test_ffmpeg_reads_every_rendition_without_a_timestamp_complaint(pipeline, manifest):
    # A new user's first check, and then every rendition at once: constant frame rate, one
    # duration for every picture, so no "non monotonically increasing dts" at the boundaries.
    url = f"{pipeline['base']}/live/cam1/{manifest}"
    assert ffmpeg_complaints(url) == ""
    assert ffmpeg_complaints(url, every_stream=True) == ""


def test_every_picture_lasts_one_slot(pipeline):
    playlist = media_playlist(f"{pipeline['base']}/live/cam1/v360/index.m3u8")
    track = download(playlist)
    durations = {sample.duration for data in track.segments for sample in parse_media_segment(data)[1]}
    assert durations == {3000}, "30 fps on a 90 kHz grid: 3000 ticks each"


def test_dash_manifest_matches_storage(pipeline):
    base = pipeline["base"]
    url = f"{base}/live/cam1/manifest.mpd"
    root = mpd(url)
    assert root.get("type") == "dynamic" and root.get("availabilityStartTime")
    assert root.find("mpd:UTCTiming", MPD_NS).get("value").endswith("/time")
    representations = root.findall(".//mpd:Representation", MPD_NS)
    video = {r.get("id"): (int(r.get("width")), int(r.get("height"))) for r in representations if r.get("width")}
    assert video == LADDER
    for adaptation in root.findall(".//mpd:AdaptationSet", MPD_NS):
        template = adaptation.find("mpd:SegmentTemplate", MPD_NS)
        entries = expand_timeline(template)
        assert len(entries) >= 3
        for (t, d), (next_t, _) in zip(entries, entries[1:]):
            assert next_t == t + d
        for representation in adaptation.findall("mpd:Representation", MPD_NS):
            rid = representation.get("id")
            t, _ = entries[-1]
            media_url = urljoin(url, template.get("media").replace("$RepresentationID$", rid).replace("$Time$", str(t)))
            init_url = urljoin(url, template.get("initialization").replace("$RepresentationID$", rid))
            assert fetch(init_url)[4:8] == b"ftyp"
            segment = fetch(media_url)
            assert b"moof" in segment[:64] and b"mdat" in segment


@pytest.mark.parametrize("engine", ["hls", "dash", "hls-ts"])
def test_preview_page_plays_in_chromium(pipeline, engine):
    playwright_sync = players.sync_playwright()
    url = f"{pipeline['base']}/preview/cam1/" + (f"?format={engine}" if engine != "hls" else "")
    with playwright_sync.sync_playwright() as playwright:
        browser = players.chromium(playwright)
        try:
            page = browser.new_page()
            page.goto(url, timeout=30_000)
            page.wait_for_function("() => window.kubecastPlayer && window.kubecastPlayer.video", timeout=30_000)
            assert page.evaluate("() => window.kubecastPlayer.engine").lower() == engine.split("-")[0]
            page.wait_for_function("() => window.kubecastPlayer.video.currentTime > 0.5", timeout=45_000)
            start = page.evaluate("() => window.kubecastPlayer.video.currentTime")
            page.wait_for_function(f"() => window.kubecastPlayer.video.currentTime > {start + 5}", timeout=30_000)
            assert page.evaluate("() => window.kubecastPlayer.errors") == []
            assert page.evaluate("() => window.kubecastPlayer.video.videoWidth") > 0
        finally:
            browser.close()


START_OFFSET = 4.0  # cam1's hlsStartOffset (channels.yaml): two segments, where hls.js would keep three
# Before hls.js loads anything: the end of the first media playlist it reads (where its start position
# is set); while it plays, its estimate of its distance from the live edge (the newest playlist's
# end plus the time since it last grew, less currentTime) every 100 ms; and the seconds it stalled
# (waiting for data) after it began to play, each of which adds a second to that distance.
START_PROBE = """
player.once(Hls.Events.LEVEL_LOADED, (_e, data) => { window.firstEdge = data.details.edge; });
window.stalled = [];
let waitingSince = null;
v.addEventListener('waiting', () => {
  if (window.firstPlayed !== undefined && waitingSince === null) waitingSince = performance.now();
});
v.addEventListener('playing', () => {
  if (window.firstPlayed === undefined) window.firstPlayed = v.currentTime;
  if (waitingSince !== null) { window.stalled.push([waitingSince, performance.now()]); waitingSince = null; }
});
window.stalledNow = () => waitingSince === null ? [] : [[waitingSince, performance.now()]];
window.latencies = [];
setInterval(() => {
  if (!v.paused && v.currentTime > 0 && player.latency > 0) window.latencies.push([performance.now(), player.latency]);
}, 100);
"""


def test_hls_js_starts_where_the_channel_asks_and_stays_there(pipeline):
    """cam1's playlists carry EXT-X-START:TIME-OFFSET=-4.  hls.js with its default settings, and
    with liveSyncDurationCount 3 set as the preview page sets it, would start and hold three target
    durations (6 s) behind the end of the first playlist it reads: both start two segments behind,
    and at playback rate 1 keep that distance (no step back towards 6 s).  A stall adds its length
    to the distance, and the README says this start invites one (a segment listed more than about
    2 s late): what hls.js must not add is a step back of its own, so the stalls are counted out."""
    configs = {"defaults": {"lowLatencyMode": True}, "liveSyncDurationCount 3": {}}  # players.py adds the 3
    with players.sync_playwright().sync_playwright() as playwright:
        browser = players.chromium(playwright)
        try:
            pages = {}
            for name, config in configs.items():  # side by side: one wait for both
                pages[name] = page = browser.new_page()
                url = f"{pipeline['base']}/live/cam1/index.m3u8"
                players.open_player(page, pipeline["base"], "hls", url, config=config, setup=START_PROBE)
            for name, page in pages.items():
                players.wait_for(page, f"8 s of playing ({name})", "() => window.latencies.length >= 80", timeout=60)
                assert page.evaluate("() => window.errors") == [], name
                assert page.evaluate("() => window.player.targetLatency") == 6, f"{name}: its own target is 6 s"
                start = page.evaluate("() => window.firstEdge - window.firstPlayed")
                assert abs(start - START_OFFSET) < 0.5, f"{name}: started {start:.2f} s before the playlist's end"
                samples = page.evaluate("() => window.latencies")
                split = samples[0][0] + 4000
                early = min(latency for moment, latency in samples if moment < split)
                late = min(latency for moment, latency in samples if moment >= split)
                stalls = page.evaluate("() => window.stalled.concat(window.stalledNow())")
                stalled = sum(end - begin for begin, end in stalls) / 1000
                assert late < early + stalled + 1, (
                    f"{name}: moved back from {early:.2f} to {late:.2f} s behind the edge "
                    f"({len(stalls)} stalls, {stalled:.2f} s in all)"
                )
        finally:
            browser.close()


def test_shaka_player_plays_the_live_channel_in_hls_and_dash(pipeline):
    base = pipeline["base"]
    with players.sync_playwright().sync_playwright() as playwright:
        browser = players.chromium(playwright)
        try:
            for url in (
                f"{base}/live/cam1/index.m3u8",
                f"{base}/live/cam1/ts/index.m3u8",
                f"{base}/live/cam1/manifest.mpd",
            ):
                page = browser.new_page()
                players.open_player(page, base, "shaka", url)
                # frames shown, not currentTime: a live player seeks to the edge before it has decoded anything
                page.wait_for_function(
                    "() => window.errors.length || window.v.getVideoPlaybackQuality().totalVideoFrames > 90",
                    timeout=40_000,
                )
                assert page.evaluate("() => window.errors") == [], url
                page.close()
        finally:
            browser.close()


def still_publishing(base: str, before, *, more: int = 1, timeout: float = 15) -> None:
    """cam1 goes on: its playlist lists ``more`` segments after ``before``'s (read earlier) within ``timeout``."""
    last_before = before.media_sequence + len(before.segments)
    wait_until(
        lambda: (
            (p := media_playlist(f"{base}/live/cam1/v180/index.m3u8")).media_sequence + len(p.segments)
            >= last_before + more
        ),
        timeout=timeout,
        what="cam1 still publishing",
    )


def test_wrong_key_is_refused_while_the_live_channel_carries_on(pipeline):
    base, rtmp = pipeline["base"], pipeline["rtmp"]
    before = media_playlist(f"{base}/live/cam1/v180/index.m3u8")
    intruder = ffmpeg_publish(f"rtmp://127.0.0.1:{rtmp}/live/cam1/not-the-key", seconds=5)
    try:
        assert intruder.popen.wait(30) != 0
    finally:
        intruder.stop()
    still_publishing(base, before, more=2, timeout=20)
    assert pipeline["publisher"].alive()
    assert "not-the-key" not in pipeline["up"].output(last=100000), "a stream key reached the logs"


def test_garbage_client_does_not_disturb_the_channel(pipeline):
    base, rtmp = pipeline["base"], pipeline["rtmp"]
    with socket.create_connection(("127.0.0.1", rtmp), timeout=5) as sock:
        sock.sendall(b"\x03" + bytes(range(256)) * 8 + b"GET / HTTP/1.1\r\n\r\n" * 10)
        sock.settimeout(15)
        try:
            while sock.recv(65536):
                pass  # the server answers the handshake, then closes on the garbage
        except (ConnectionResetError, TimeoutError):
            pass
    before = media_playlist(f"{base}/live/cam1/v180/index.m3u8")
    still_publishing(base, before)


def test_passthrough_channel_publishes_the_contribution_unchanged(pipeline):
    base, rtmp = pipeline["base"], pipeline["rtmp"]
    publisher = ffmpeg_publish(f"rtmp://127.0.0.1:{rtmp}/live/cam2/key-for-cam2", seconds=12, size="320x240")
    try:
        wait_until(
            lambda: (
                len(
                    media_playlist(
                        f"{base}/live/cam2/{multivariant(f'{base}/live/cam2/index.m3u8')[0][0].uri.split('/')[-2]}/index.m3u8"
                    ).segments
                )
                >= 3
            ),
            timeout=40,
            interval=0.5,
            what="pass-through segments",
        )
        variants, media = multivariant(f"{base}/live/cam2/index.m3u8")
        assert [v.attributes["RESOLUTION"] for v in variants] == ["320x240"]
        track = download(media_playlist(variants[0].uri))
        frames = track.frames()
        assert frames and frames[0][1], "segments start with a key frame"
    finally:
        publisher.stop()


def test_metrics_are_served(pipeline):
    text = fetch(f"{pipeline['base']}/metrics").decode()
    assert "kubecast_endpoint_requests_total" in text


ROOT = HERE.parents[1]


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads((ROOT / "helm" / "kubecast" / "files" / "dashboard.json").read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel.get("targets", [])]


def alert_groups() -> list[dict]:
    """The rule groups of the chart's PrometheusRule, as the Prometheus Operator hands them to Prometheus."""
    import helm_python as helm
    import yaml

    values = {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}
    rendered = helm.Chart.load(str(ROOT / "helm" / "kubecast")).render(
        values, name="kubecast", namespace="kubecast-system", is_install=True
    )
    rule = next(
        d for text in rendered.values() for d in yaml.safe_load_all(text) if d and d["kind"] == "PrometheusRule"
    )
    return rule["spec"]["groups"]


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus (Debian package) is not installed")
def test_prometheus_scrapes_every_process_and_every_dashboard_query_has_data(pipeline, tmp_path):
    """Debian's Prometheus scrapes the live pipeline's processes (the addresses `kubecast up`
    prints): every query of the shipped Grafana dashboard returns series, and every alert of the
    chart's PrometheusRule evaluates over what the processes export, each metric it reads present
    (its firing and quiet cases are `promtool test rules` in tests/operator/test_alerts.py)."""
    from prometheus import Prometheus, targets_of

    targets = targets_of(pipeline["up"].lines)
    assert {"ingest", "ingest secondary", "encoder cam1/A", "encoder cam1/B", "packager cam1", "endpoint"} <= set(
        targets
    ), targets
    groups = alert_groups()
    rules = [r for group in groups for r in group["rules"] if "alert" in r]
    assert len(rules) == 6
    prometheus = Prometheus(tmp_path, targets, groups)
    try:
        up = lambda: prometheus.query("sum(up)")["data"]["result"]  # noqa: E731
        wait_until(
            lambda: up() and float(up()[0]["value"][1]) == len(targets),
            timeout=20,
            interval=0.5,
            what="every target up",
        )
        queries = dashboard_queries()
        assert queries and not [expr for _, expr in queries if "$" in expr], "no dashboard variable left to fill in"
        for title, expr in queries:  # rate() and increase() need two scrapes in their window: a few seconds
            answer = wait_until(
                lambda: (a := prometheus.query(expr))["data"]["result"] and a,
                timeout=20,
                interval=0.5,
                what=f"data for the dashboard's {title!r}",
            )
            assert answer["status"] == "success"
        for rule in rules:
            # metric names, not the pod labels (kubecast_io_*); the operator's own come from the operator,
            # which a local pipeline does not run
            for metric in set(re.findall(r"\bkubecast_(?!operator_|io_)[a-z_]+", rule["expr"])):
                assert prometheus.query(f"count({{__name__={metric!r}}})")["data"]["result"], (
                    f"{rule['alert']} reads {metric}: not exported"
                )

        # Prometheus itself loads the rules and evaluates each one over the scraped series without an error
        def evaluated() -> dict:
            loaded = {r["name"]: r for g in prometheus.get("/api/v1/rules")["data"]["groups"] for r in g["rules"]}
            return (
                loaded
                if len(loaded) == len(rules) and all(r["lastEvaluation"] > "2000" for r in loaded.values())
                else {}
            )

        loaded = wait_until(evaluated, timeout=20, interval=0.5, what="every alert rule evaluated")
        assert {name: r["health"] for name, r in loaded.items()} == {r["alert"]: "ok" for r in rules}, loaded
    finally:
        prometheus.stop()


def test_second_publisher_on_a_live_channel_is_refused(pipeline):
    base, rtmp = pipeline["base"], pipeline["rtmp"]
    second = ffmpeg_publish(f"rtmp://127.0.0.1:{rtmp}/live/cam1/key-for-cam1", seconds=5)
    try:
        assert second.popen.wait(30) != 0, "a second publisher with the right key is still refused while one is live"
    finally:
        second.stop()
    before = media_playlist(f"{base}/live/cam1/v180/index.m3u8")
    still_publishing(base, before)
    assert pipeline["publisher"].alive()


def test_hls_with_ts_segments_is_remuxed_from_the_cmaf_copy(pipeline):
    base = pipeline["base"]
    text = fetch(f"{base}/live/cam1/ts/index.m3u8").decode()
    assert "#EXT-X-VERSION:3" in text and "EXT-X-MEDIA" not in text and text.count("#EXT-X-STREAM-INF") == len(LADDER)
    playlist = fetch(f"{base}/live/cam1/ts/v180/index.m3u8").decode()
    assert "#EXT-X-MAP" not in playlist and ".ts" in playlist
    cmaf = media_playlist(f"{base}/live/cam1/v180/index.m3u8")
    number = cmaf.segments[-2][0].rsplit("/", 1)[1].split(".")[0]
    segment = fetch(f"{base}/live/cam1/ts/v180/{number}.ts")
    import io

    import av

    with av.open(io.BytesIO(segment), format="mpegts") as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == LADDER["v180"]
        assert sum(1 for _ in container.decode(video=0)) == 60, "a 2 s segment at 30 fps, every frame"
    # ffmpeg reads the TS playlist end to end: video and audio decode without error, and the
    # constant frame rate gives its muxer nothing to complain about.
    assert ffmpeg_complaints(f"{base}/live/cam1/ts/v180/index.m3u8") == ""
    assert (
        fetch_status(f"{base}/live/cam1/ts/v180/999999.ts") == 404
        and fetch_status(f"{base}/live/cam1/ts/v180/x.ts") == 404
    )


def fetch_status(url: str) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


PLAYER_PAGE = """<!doctype html><video id="video" muted autoplay playsinline></video>
<script src="{base}/static/vendor/hls.min.js"></script>
<script>
  window.fatal = [];
  const hls = new Hls({{liveSyncDurationCount: 3}});
  hls.on(Hls.Events.ERROR, (event, data) => {{ if (data.fatal) window.fatal.push(data.details); }});
  hls.loadSource("{url}");
  hls.attachMedia(document.getElementById("video"));
</script>"""


def test_hls_js_plays_through_a_signed_url_and_across_a_key_rotation(pipeline, tmp_path):
    """A second endpoint on the pipeline's store requires signed URLs.  hls.js, given only a
    signed multivariant URL, plays (every request it makes carries the token); the endpoint then
    rolls to two live keys and the player carries on; once the old key is dropped its tokens
    are refused and the new key's work.

    A roll is what the operator does (``maxUnavailable: 0``): the new endpoint is listening
    before the old one stops, and players reach them at one address, here a proxy standing for
    the Service.  Stopping the only endpoint and starting another would refuse the player's
    connections for as long as that start takes, which hls.js survives only for ~3 s of playlist
    retries (a fatal levelLoadError after that) and which grows with the machine's load."""
    import time

    from faultproxy import FaultProxy

    from kubecast.media.tokens import sign

    keys = {"old": b"the key being retired", "new": b"the key taking over"}
    for key_id, key in keys.items():
        (tmp_path / key_id).write_bytes(key)

    def endpoint(*key_ids: str) -> tuple[Proc, str]:
        port, config = free_port(), tmp_path / f"endpoint-{'-'.join(key_ids)}.json"
        config.write_text(
            json.dumps({"signingKeys": [{"id": key_id, "file": str(tmp_path / key_id)} for key_id in key_ids]})
        )
        proc = kubecast(
            "endpoint", "--store", str(pipeline["store"]), "--listen", f"127.0.0.1:{port}", "--config", str(config)
        )
        try:
            proc.wait_for_line("listening on", timeout=30)
        except BaseException:
            proc.stop()
            raise
        return proc, f"http://127.0.0.1:{port}"

    publisher = ffmpeg_publish(
        f"rtmp://127.0.0.1:{pipeline['rtmp']}/live/cam2/key-for-cam2", seconds=60, size="320x240"
    )
    running, target = endpoint("old")
    service = FaultProxy(target, name="cam2 endpoint service").start()  # no faults: it only forwards

    def roll(*key_ids: str) -> None:
        nonlocal running
        new, service.target = endpoint(*key_ids)
        running, old = new, running
        old.stop()  # SIGTERM: it answers what it has begun, as a pod leaving the Service does

    base = service.url

    def signed(key_id: str, path: str = "/live/cam2/index.m3u8") -> str:
        token = sign(key=keys[key_id], key_id=key_id, scope="channel:cam2", expires=int(time.time()) + 600)
        return f"{base}/t/{token}{path}"

    playwright_sync = players.sync_playwright()
    try:
        wait_until(
            lambda: (
                fetch_status(signed("old")) == 200
                and len(
                    media_playlist(
                        signed("old", f"/live/cam2/{multivariant(signed('old'))[0][0].uri.split('/')[-2]}/index.m3u8")
                    ).segments
                )
                >= 3
            ),
            timeout=40,
            interval=0.5,
            what="cam2 live through a signed URL",
        )
        assert fetch_status(f"{base}/live/cam2/index.m3u8") == 401
        requests: list[str] = []
        with playwright_sync.sync_playwright() as playwright:
            browser = players.chromium(playwright)
            try:
                page = browser.new_page()
                page.on("request", lambda request: requests.append(request.url))
                page.set_content(PLAYER_PAGE.format(base=base, url=signed("old")))
                page.wait_for_function("() => document.getElementById('video').currentTime > 0.5", timeout=45_000)
                # The roll: the endpoint comes back with both keys; the player's token still works.
                roll("old", "new")
                start = page.evaluate("() => document.getElementById('video').currentTime")
                page.wait_for_function(
                    f"() => window.fatal.length || document.getElementById('video').currentTime > {start + 6}",
                    timeout=40_000,
                )
                assert page.evaluate("() => window.fatal") == []
            finally:
                browser.close()
        media = [url for url in requests if url.startswith(base) and "/static/" not in url]
        assert any(url.endswith(".m4s") for url in media) and any(url.endswith("init.mp4") for url in media)
        assert all(url.startswith(f"{base}/t/") for url in media), "every request the player made carried the token"
        assert fetch_status(signed("new")) == 200
        roll("new")
        assert fetch_status(signed("old")) == 403 and fetch_status(signed("new")) == 200, (
            "the retired key's tokens are refused"
        )
    finally:
        running.stop()
        service.stop()
        publisher.stop()


PLAY_HLS = """async ({src, token}) => {
  const video = document.createElement("video"); video.muted = true; document.body.appendChild(video);
  const errors = [];
  const hls = new Hls({xhrSetup: (xhr, url) => {
    if (url.includes("/keys/")) xhr.setRequestHeader("Authorization", "Bearer " + token);
  }});
  hls.on(Hls.Events.ERROR, (_event, data) => errors.push(data.details));
  hls.loadSource(src); hls.attachMedia(video); video.play().catch(() => {});
  window.under_test = {video, errors};
}"""
PLAY_DASH = """async ({src, token}) => {
  const video = document.createElement("video"); video.muted = true; document.body.appendChild(video);
  const errors = [];
  const player = dashjs.MediaPlayer().create();
  player.updateSettings({debug: {logLevel: 0}});
  player.setProtectionData({"org.w3.clearkey": {httpRequestHeaders: {Authorization: "Bearer " + token}}});
  player.on(dashjs.MediaPlayer.events.ERROR, (event) => errors.push(JSON.stringify(event.error)));
  player.initialize(video, src, true);
  window.under_test = {video, errors};
}"""
# Shaka finds the ClearKey licence URL in the MPD (dashif:Laurl); the JWT goes on licence requests only.
PLAY_SHAKA = """async ({src, token}) => {
  const video = document.createElement("video"); video.muted = true; document.body.appendChild(video);
  const errors = [];
  window.under_test = {video, errors};
  shaka.polyfill.installAll();
  const player = new shaka.Player(); await player.attach(video);
  player.getNetworkingEngine().registerRequestFilter((type, request) => {
    if (type === shaka.net.NetworkingEngine.RequestType.LICENSE)
      request.headers["Authorization"] = "Bearer " + token;
  });
  player.addEventListener("error", (event) => errors.push("shaka " + event.detail.code));
  player.load(src).then(() => video.play().catch(() => {}), (error) => errors.push("shaka load " + error.code));
}"""
# hls.js plays fMP4 HLS with SAMPLE-AES (cbcs) through EME; ClearKey's KEYFORMAT names the key id.
PLAY_HLS_CLEARKEY = r"""async ({src, token}) => {
  const video = document.createElement("video"); video.muted = true; document.body.appendChild(video);
  const errors = [];
  const licenseUrl = src.replace(/cbcs\/index\.m3u8$/, "keys/clearkey");
  const hls = new Hls({emeEnabled: true, drmSystems: {"org.w3.clearkey": {licenseUrl}},
                       licenseXhrSetup: (xhr) => { xhr.setRequestHeader("Authorization", "Bearer " + token); }});
  hls.on(Hls.Events.ERROR, (_event, data) => errors.push(data.details));
  hls.loadSource(src); hls.attachMedia(video); video.play().catch(() => {});
  window.under_test = {video, errors};
}"""
PLAYER_SCRIPTS = {
    PLAY_HLS: "hls.min.js",
    PLAY_HLS_CLEARKEY: "hls.min.js",
    PLAY_DASH: "dash.all.min.js",
    PLAY_SHAKA: "shaka-player.compiled.js",
}


def _protected_endpoint(store, scheme: str, folder: Path) -> tuple[Proc, str]:
    from kubecast.api.components import EndpointConfig

    folder.mkdir()
    (folder / "master").write_text("00112233445566778899aabbccddeeff")
    (folder / "jwt").write_text("viewers")
    config = EndpointConfig.model_validate(
        {
            "contentProtection": {
                "masterKeyFile": str(folder / "master"),
                "keyRotationSegments": 3,
                "cencScheme": scheme,
                "keyDelivery": {"jwtKeyFile": str(folder / "jwt"), "audience": "kubecast"},
            }
        }
    )
    (folder / "endpoint.json").write_text(config.to_json())
    port = free_port()
    endpoint = kubecast(
        "endpoint", "--store", str(store), "--listen", f"127.0.0.1:{port}", "--config", str(folder / "endpoint.json")
    )
    endpoint.wait_for_line("listening on", timeout=30)
    return endpoint, f"http://127.0.0.1:{port}"


def test_protected_live_channel_plays_in_chromium_hls_aes128_and_dash_clearkey(pipeline, tmp_path):
    """A protected endpoint over the live pipeline's store: hls.js plays AES-128 HLS (fMP4 and
    TS) with a JWT on the key requests and reports an error with an expired one; dash.js and
    Shaka Player play CENC DASH with ClearKey (cenc, then cbcs from a second endpoint), Shaka
    reports a licence error with an expired token; hls.js plays the cbcs copy as HLS
    (SAMPLE-AES, ClearKey's KEYFORMAT) through EME."""
    import time

    import jwt

    playwright_sync = players.sync_playwright()
    good = jwt.encode(
        {"aud": "kubecast", "exp": int(time.time()) + 600, "kubecast.io/channel": "cam1"}, "viewers", algorithm="HS256"
    )
    expired = jwt.encode({"aud": "kubecast", "exp": int(time.time()) - 5}, "viewers", algorithm="HS256")
    endpoints = [
        _protected_endpoint(pipeline["store"], "cenc", tmp_path / "cenc"),
        _protected_endpoint(pipeline["store"], "cbcs", tmp_path / "cbcs"),
    ]
    (_, base), (_, cbcs_base) = endpoints
    outcomes = {}
    try:
        with playwright_sync.sync_playwright() as playwright:
            browser = players.chromium(playwright)
            try:

                def plays(script, src, token, *, seconds=3.0, timeout=40_000):
                    # a fresh context each time: keys a page's CDM already holds must not play the next case
                    context = browser.new_context()
                    origin = src.split("/live/")[
                        0
                    ]  # the page on the endpoint's origin: dash.js sends credentials with an Authorization header
                    try:
                        page = context.new_page()
                        page.goto(
                            f"{origin}/healthz", timeout=30_000
                        )  # an http://127.0.0.1 origin: a secure context, as EME needs
                        page.add_script_tag(url=f"{origin}/static/vendor/{PLAYER_SCRIPTS[script]}")
                        page.evaluate(script, {"src": src, "token": token})
                        try:
                            # frames shown, not currentTime: a live player seeks to the edge
                            # before it has decoded anything
                            page.wait_for_function(
                                "() => window.under_test.video.getVideoPlaybackQuality().totalVideoFrames > "
                                f"{seconds * 30}",
                                timeout=timeout,
                            )
                            return True, page.evaluate("() => window.under_test.errors")
                        except playwright_sync.TimeoutError:
                            return False, page.evaluate("() => window.under_test.errors")
                    finally:
                        context.close()

                outcomes["hls fmp4"] = plays(PLAY_HLS, f"{base}/live/cam1/index.m3u8", good)
                outcomes["hls ts"] = plays(PLAY_HLS, f"{base}/live/cam1/ts/index.m3u8", good)
                outcomes["hls expired token"] = plays(PLAY_HLS, f"{base}/live/cam1/index.m3u8", expired, timeout=15_000)
                outcomes["dash cenc"] = plays(PLAY_DASH, f"{base}/live/cam1/manifest.mpd", good)
                outcomes["dash cenc expired token"] = plays(
                    PLAY_DASH, f"{base}/live/cam1/manifest.mpd", expired, timeout=15_000
                )
                outcomes["dash cbcs"] = plays(PLAY_DASH, f"{cbcs_base}/live/cam1/manifest.mpd", good)
                outcomes["shaka cenc"] = plays(PLAY_SHAKA, f"{base}/live/cam1/manifest.mpd", good)
                outcomes["shaka cbcs"] = plays(PLAY_SHAKA, f"{cbcs_base}/live/cam1/manifest.mpd", good)
                outcomes["shaka cenc expired token"] = plays(
                    PLAY_SHAKA, f"{base}/live/cam1/manifest.mpd", expired, timeout=15_000
                )
                outcomes["hls cbcs clearkey"] = plays(PLAY_HLS_CLEARKEY, f"{cbcs_base}/live/cam1/cbcs/index.m3u8", good)
            finally:
                browser.close()
    finally:
        for endpoint, _ in endpoints:
            endpoint.stop()
    print(outcomes)
    for name in ("hls fmp4", "hls ts", "dash cenc", "dash cbcs", "shaka cenc", "shaka cbcs", "hls cbcs clearkey"):
        assert outcomes[name][0], (name, outcomes[name])
    for name in ("hls expired token", "dash cenc expired token", "shaka cenc expired token"):
        played, errors = outcomes[name]
        assert not played and errors, (name, outcomes[name])
    assert "keyLoadError" in outcomes["hls expired token"][1]


def _playlist_lines(url: str) -> list[tuple[int, bool, str | None, float]]:
    """(segment number, after a discontinuity, program-date-time, EXTINF) of every segment."""
    rows, discontinuity, stamp = [], False, None
    lines = fetch(url).decode().splitlines()
    for index, line in enumerate(lines):
        if line == "#EXT-X-DISCONTINUITY":
            discontinuity = True
        elif line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            stamp = line.split(":", 1)[1]
        elif line.startswith("#EXTINF:"):
            rows.append((int(lines[index + 1].split(".")[0]), discontinuity, stamp, float(line[8:].rstrip(","))))
            discontinuity, stamp = False, None
    return rows


def _seconds(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_a_stopped_and_restarted_publisher_ends_every_track_at_the_same_segment(pipeline):
    base, rtmp = pipeline["base"], pipeline["rtmp"]
    # Six seconds, a multiple of the segment duration: the audio (AAC priming included) runs a
    # few milliseconds past the video's last segment, which once made an audio-only sliver.
    for attempt in range(2):
        publisher = ffmpeg_publish(f"rtmp://127.0.0.1:{rtmp}/live/cam3/key-for-cam1", seconds=6, size="320x180")
        try:
            assert publisher.popen.wait(40) == 0, publisher.output()
        finally:
            publisher.stop()

    def settled():
        video, audio = (_playlist_lines(f"{base}/cam3-loc/{track}/index.m3u8") for track in ("v180", "audio"))
        return (
            (video, audio)
            if any(d for _, d, _, _ in video) and video[-1][0] == audio[-1][0] and len(video) >= 5
            else None
        )

    video, audio = wait_until(settled, timeout=30, interval=1, what="both contributions in the program's playlists")
    time.sleep(3)  # the encoders finished their last segments; let the packager list them
    video, audio = (_playlist_lines(f"{base}/cam3-loc/{track}/index.m3u8") for track in ("v180", "audio"))
    assert [(n, d) for n, d, _, _ in video] == [(n, d) for n, d, _, _ in audio], (
        "the same segments and discontinuities in both playlists"
    )
    transport = _playlist_lines(f"{base}/cam3-loc/show.ism/ts/v180/index.m3u8")
    assert [(n, d, stamp) for n, d, stamp, _ in transport] == [(n, d, stamp) for n, d, stamp, _ in video], (
        "the TS playlist agrees"
    )
    assert sum(d for _, d, _, _ in video) == 1
    aac_frame = 1024 / 48000
    for (_, _, video_stamp, extinf), (_, _, audio_stamp, _) in zip(video, audio):
        assert extinf <= SEGMENT + 1 / 30 + 0.001, "no segment overflows its slot"
        assert (video_stamp is None) == (audio_stamp is None)
        if video_stamp:
            assert abs(_seconds(video_stamp) - _seconds(audio_stamp)) <= aac_frame, (video_stamp, audio_stamp)
    # DASH: one SegmentTimeline per track, the same segments, each within its [n*D, (n+1)*D) slot.
    root = mpd(f"{base}/cam3-loc/show.mpd")
    timelines = []
    for template in root.iter(f"{{{MPD_NS['mpd']}}}SegmentTemplate"):
        scale = int(template.get("timescale"))
        timelines.append([(t / scale, d / scale) for t, d in expand_timeline(template)])
    assert len(timelines) == 2 and len(timelines[0]) == len(timelines[1]) == len(video)
    for (video_t, video_d), (audio_t, audio_d) in zip(*timelines):
        slot = video_t // SEGMENT
        assert slot * SEGMENT <= video_t and video_t + video_d <= (slot + 1) * SEGMENT + 1 / 30 + 1e-6, (
            video_t,
            video_d,
        )
        assert abs(video_t - audio_t) <= aac_frame
        assert abs((video_t + video_d) - (audio_t + audio_d)) <= aac_frame
    # Once the program stops, ffmpeg reads both formats of the recording across the restart
    # without a complaint.
    subprocess.run(
        [sys.executable, "-m", "kubecast.cli", "program", "stop", "cam3-show", "--store", str(pipeline["store"])],
        check=True,
        timeout=30,
    )
    wait_until(
        lambda: media_playlist(f"{base}/cam3-loc/v180/index.m3u8").ended, timeout=20, what="the recording to end"
    )
    for url in (f"{base}/cam3-loc/show.m3u8", f"{base}/cam3-loc/show.mpd"):
        result = subprocess.run(
            ["ffmpeg", "-v", "error", "-i", url, "-map", "0", "-f", "null", "-"],
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
    # Shaka Player (which once threw on the sliver segment and stalled) plays the recording from its
    # start, across the restart, to its end, in every format at once (one page each).
    recording = {
        "hls fmp4": f"{base}/cam3-loc/show.m3u8",
        "hls ts": f"{base}/cam3-loc/show.ism/manifest(format=m3u8-aapl)",
        "dash": f"{base}/cam3-loc/show.mpd",
    }
    outcomes = {}
    with players.sync_playwright().sync_playwright() as playwright:
        browser = players.chromium(playwright)
        try:
            pages = {name: browser.new_page() for name in recording}
            for name, url in recording.items():
                players.open_player(pages[name], base, "shaka", url)
            for name, page in pages.items():
                page.wait_for_function("() => window.ended || window.errors.length", timeout=60_000)
                outcomes[name] = page.evaluate(
                    "() => ({errors: window.errors, ended: window.ended, time: window.v.currentTime,"
                    " stalls: window.player.getStats().stallsDetected,"
                    " frames: window.v.getVideoPlaybackQuality().totalVideoFrames})"
                )
        finally:
            browser.close()
    print(outcomes)
    recorded = sum(extinf for _, _, _, extinf in video)
    for name, outcome in outcomes.items():
        assert outcome["errors"] == [] and outcome["ended"] and outcome["stalls"] == 0, (name, outcome)
        assert outcome["time"] >= recorded - SEGMENT, (name, outcome, recorded)
        assert outcome["frames"] >= (recorded - SEGMENT) * 30, (name, outcome, recorded)

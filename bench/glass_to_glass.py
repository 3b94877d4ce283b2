"""Glass-to-glass latency in a real browser: from a picture's making to its showing in hls.js and dash.js.

    python bench/glass_to_glass.py [--seconds 120] [--modes hls,dash,ll-hls,ll-dash] [--segment-duration 2]
                                   [--hls-catch-up 1.1] [--hls-sync-count 2] [--hls-start-offset 4]

A publisher burns the wall-clock time into every picture it makes (``burned_clock.py``: 48 large
black and white cells, read back after any rung's compression), pipes the pictures in real time
to Debian's ffmpeg (libx264 ``ultrafast``/``zerolatency``, a key frame every second, a sine tone as
AAC) and on over RTMP into ``kubecast up`` (one encoder, the demo's three-rung ladder).  For each
mode in turn, headless Chromium (Debian's) opens a page on the endpoint and plays the channel:

- ``hls``: hls.js with its defaults (three target durations behind the live edge), or
  ``--hls-sync-count`` target durations behind it (hls.js's ``liveSyncDurationCount``), or on a
  channel whose playlists ask players to start ``--hls-start-offset`` seconds from their end
  (``spec.hlsStartOffset``, ``EXT-X-START``);
- ``dash``: dash.js with its defaults (the MPD's ``suggestedPresentationDelay``);
- ``ll-hls``: hls.js with ``lowLatencyMode`` on the low-latency channel (``spec.lowLatency``:
  500 ms parts); hls.js catches up to its target only with ``--hls-catch-up`` above 1;
- ``ll-dash``: dash.js on that channel's LL-DASH MPD, with its low-latency catch-up.

Every ``--interval`` the page draws the playing video into a 64x48 canvas, notes ``Date.now()``
(the same clock the publisher burned in) and the element's ``currentTime``; the bench reads the
burned time from each canvas and subtracts it from that moment.  It prints, per mode, the
latency's p50 and p95 after startup, the stalls after startup (``currentTime`` not advancing for
at least ``--stall`` seconds while playing: a frozen picture) with their total length, the time
to the first picture, how busy the machine's cores were over the mode's run and the load
average at its end.  Each channel runs alone under its own ``kubecast up``.  Goals (issue
#20): low-latency modes p50 under 3 s with no stall after startup on 2 cores, standard under 8 s.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e")]

from burned_clock import COLUMNS, ROWS, clock_picture, read_clock, unwrap  # noqa: E402
from players import SCRIPTS, chromium  # noqa: E402
from processes import kubecast_up, stop_group, wait_for  # noqa: E402

from kubecast.local.ports import unclaimed_port  # noqa: E402

SIZE, FPS = (1280, 720), 30
CANVAS = (COLUMNS * 8, ROWS * 8)
LADDER = (  # the demo's three rungs
    "{preset: Custom, x264Preset: superfast, renditions: ["
    "{name: video_720p, width: 1280, height: 720, bitrate: 2500000, profile: High}, "
    "{name: video_480p, width: 854, height: 480, bitrate: 1200000, profile: Main}, "
    "{name: video_240p, width: 426, height: 240, bitrate: 400000, profile: Baseline}]}"
)


@dataclass(frozen=True)
class Mode:
    name: str
    engine: str  # a key of players.SCRIPTS
    channel: str
    manifest: str  # the URL's last part under /live/<channel>/
    config: dict[str, Any]  # the player's own configuration (hls.js options, dash.js updateSettings)


MODES = {
    "hls": Mode("hls", "hls", "standard", "index.m3u8", {}),
    "dash": Mode("dash", "dash", "standard", "manifest.mpd", {}),
    "ll-hls": Mode("ll-hls", "hls", "lowlatency", "ll/index.m3u8", {"lowLatencyMode": True}),
    "ll-dash": Mode(
        "ll-dash", "dash", "lowlatency", "ll/manifest.mpd", {"streaming": {"liveCatchup": {"enabled": True}}}
    ),
}

# The page: the player (no option but the mode's), and a sampler that draws the video into a small
# canvas and keeps (Date.now(), currentTime, paused, the canvas's green channel as base64).
START = {
    "hls": "const p = new Hls(config); p.on(Hls.Events.ERROR, (_e, d) => { if (d.fatal) window.errors.push("
    "'hls.js: ' + d.details); }); p.loadSource(url); p.attachMedia(v); window.player = p;",
    "dash": "const p = dashjs.MediaPlayer().create(); p.updateSettings(config);"
    " p.on(dashjs.MediaPlayer.events.ERROR, (e) => window.errors.push('dash.js: ' + JSON.stringify(e.error)));"
    " p.initialize(v, url, true); window.player = p;",
}
PAGE = """([url, start, config, width, height, interval]) => {
  const v = document.createElement('video'); v.muted = true; v.autoplay = true; document.body.appendChild(v);
  window.errors = []; window.samples = [];
  v.addEventListener('error', () => window.errors.push('video: ' + (v.error && v.error.message)));
  new Function('url', 'v', 'config', start)(url, v, config);
  const canvas = document.createElement('canvas'); canvas.width = width; canvas.height = height;
  const context = canvas.getContext('2d', {willReadFrequently: true});
  setInterval(() => {
    let grey = null;
    if (v.readyState >= 2 && v.videoWidth) {
      context.drawImage(v, 0, 0, width, height);
      const rgba = context.getImageData(0, 0, width, height).data;
      let text = '';
      for (let i = 0; i < width * height; i++) text += String.fromCharCode(rgba[4 * i + 1]);
      grey = btoa(text);
    }
    window.samples.push([Date.now(), v.currentTime, v.paused, grey]);
  }, interval);
}"""


@dataclass
class Result:
    mode: str
    startup: float | None = None  # seconds from the page's start to the first picture with a clock
    latencies: list[float] = field(default_factory=list)
    stalls: list[float] = field(default_factory=list)  # each stall's length, seconds
    unreadable: int = 0  # samples with a picture showing no readable clock
    busy: float = 0.0  # the machine's cores busy over the run, as a fraction of all cores
    load: float = 0.0  # the 1-minute load average at the end of the run
    errors: list[str] = field(default_factory=list)


class ClockPublisher:
    """Pictures of the wall clock made in real time, through ffmpeg to an RTMP URL."""

    def __init__(self, url: str) -> None:
        width, height = SIZE
        self.ffmpeg = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-use_wallclock_as_timestamps", "1"]
            + ["-f", "rawvideo", "-pix_fmt", "gray"]
            + ["-video_size", f"{width}x{height}", "-framerate", str(FPS), "-i", "pipe:0"]
            + ["-re", "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000"]
            + ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(FPS), "-b:v", "4M"]
            + ["-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv", url],
            stdin=subprocess.PIPE,
            start_new_session=True,
        )
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        assert self.ffmpeg.stdin is not None
        started, tick = time.monotonic(), 0
        while not self.stopping.is_set():
            # the time burned in is when the picture is made, as a camera's would be
            picture = clock_picture(time.time_ns() // 1_000_000, *SIZE)
            try:
                self.ffmpeg.stdin.write(picture)
                self.ffmpeg.stdin.flush()
            except (BrokenPipeError, ValueError):
                return
            # A camera makes no pictures while the encoder is not reading: ticks missed while the
            # pipe was full are skipped, not made up in a burst (ffmpeg stamps each picture with the
            # wall clock as it reads it), so media time keeps to the clock the pictures show.
            tick = max(tick + 1, int((time.monotonic() - started) * FPS))
            delay = started + tick / FPS - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        stop_group(self.ffmpeg)


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of all cores so far, from /proc/stat."""
    fields = [float(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def analyse(result: Result, samples: list[list[Any]], opened_ms: int, *, stall: float) -> None:
    """Latencies, startup and stalls from the page's samples [now_ms, currentTime, paused, grey]."""
    started_at = None
    frozen_since: tuple[int, float] | None = None  # (ms, currentTime) where the picture stopped
    for now_ms, current, paused, grey in samples:
        shown = read_clock(base64.b64decode(grey), *CANVAS) if grey else None
        if started_at is None:
            if shown is None:
                continue
            started_at = now_ms
            result.startup = (now_ms - opened_ms) / 1000
        if shown is None:
            result.unreadable += grey is not None
        else:
            result.latencies.append((now_ms - unwrap(shown, now_ms)) / 1000)
        if frozen_since is not None and (current != frozen_since[1] or paused):
            if (now_ms - frozen_since[0]) / 1000 >= stall:
                result.stalls.append((now_ms - frozen_since[0]) / 1000)
            frozen_since = None
        if frozen_since is None and not paused:
            frozen_since = (now_ms, current)
    if frozen_since is not None and samples and (samples[-1][0] - frozen_since[0]) / 1000 >= stall:
        result.stalls.append((samples[-1][0] - frozen_since[0]) / 1000)


def play(browser: Any, origin: str, mode: Mode, *, seconds: float, interval: float, stall: float) -> Result:
    result = Result(mode.name)
    page = browser.new_page()
    try:
        page.goto(f"{origin}/healthz", timeout=30_000)
        for script in SCRIPTS[mode.engine]:
            page.add_script_tag(url=f"{origin}/static/vendor/{script}")
        url = f"{origin}/live/{mode.channel}/{mode.manifest}"
        opened_ms = time.time_ns() // 1_000_000
        page.evaluate(PAGE, [url, START[mode.engine], mode.config, *CANVAS, round(interval * 1000)])
        samples: list[list[Any]] = []
        deadline = time.monotonic() + 60  # to the first picture
        before = None
        while True:
            time.sleep(1)
            samples += page.evaluate("window.samples.splice(0)")
            started = any(grey and read_clock(base64.b64decode(grey), *CANVAS) is not None for *_, grey in samples)
            if started and before is None:
                before, deadline = cpu_times(), time.monotonic() + seconds
            if time.monotonic() > deadline:
                break
        after = cpu_times()
        result.errors = page.evaluate("window.errors")
        if before is not None:
            result.busy = (after[0] - before[0]) / max(1.0, after[1] - before[1])
        result.load = os.getloadavg()[0]
        analyse(result, samples, opened_ms, stall=stall)
    finally:
        page.close()
    return result


def channel_yaml(channel: str, segment_duration: float, hls_start_offset: float | None = None) -> str:
    extra = ", lowLatency: {partDuration: 0.5}" if channel == "lowlatency" else ""
    if hls_start_offset is not None and channel == "standard":
        extra += f", hlsStartOffset: {hls_start_offset}"
    return (
        f"apiVersion: kubecast.io/v1alpha1\nkind: Channel\nmetadata: {{name: {channel}}}\n"
        f"spec: {{encoding: {LADDER}, segmentDuration: {segment_duration}{extra}}}\n"
    )


def wait_for_segments(playlist: str, count: int, *, timeout: float) -> None:
    """Until the media playlist at ``playlist`` lists ``count`` segments (players start on a few)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(playlist, timeout=5) as answer:
                if answer.read().count(b"#EXTINF") >= count:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{playlist} did not list {count} segments within {timeout:.0f} s")
        time.sleep(0.5)


def run_channel(browser: Any, channel: str, modes: list[Mode], args: argparse.Namespace) -> list[Result]:
    """``kubecast up`` with ``channel`` alone, the clock published into it, and each of ``modes`` played."""
    results = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "channel.yaml").write_text(channel_yaml(channel, args.segment_duration, args.hls_start_offset))
        rtmp, http = unclaimed_port(), unclaimed_port()
        up, lines = kubecast_up(
            work / "channel.yaml", work / "store", work, "--rtmp-port", str(rtmp),
            "--rtmp-secondary-port", str(unclaimed_port()), "--http-port", str(http),
        )  # fmt: skip
        publisher = None
        try:
            wait_for(lines, "Status page", 90)
            publisher = ClockPublisher(f"rtmp://127.0.0.1:{rtmp}/live/{channel}/any-key")
            origin = f"http://127.0.0.1:{http}"
            wait_for_segments(f"{origin}/live/{channel}/video_240p/index.m3u8", 3, timeout=90)
            for mode in modes:
                results.append(
                    play(browser, origin, mode, seconds=args.seconds, interval=args.interval, stall=args.stall)
                )
        finally:
            if publisher is not None:
                publisher.stop()
            stop_group(up)
    return results


def report(results: list[Result], seconds: float) -> None:
    print(f"{os.cpu_count()} cores; each mode {seconds:.0f} s after its first picture")
    print(f"{'mode':8} {'p50 s':>6} {'p95 s':>6} {'stalls':>6} {'stalled s':>9} {'startup s':>9} {'samples':>7}"
          f" {'unread':>6} {'cores busy':>10} {'load':>5}")  # fmt: skip
    for result in results:
        if not result.latencies:
            print(f"{result.mode:8} no picture with a clock was shown; errors: {result.errors}")
            continue
        print(
            f"{result.mode:8} {statistics.median(result.latencies):6.2f} {percentile(result.latencies, 0.95):6.2f} "
            f"{len(result.stalls):6d} {sum(result.stalls):9.1f} {result.startup or 0:9.1f} "
            f"{len(result.latencies):7d} {result.unreadable:6d} {result.busy * 100:9.0f}% {result.load:5.1f}"
        )
        if result.errors:
            print(f"         player errors: {result.errors}")


def with_player_setting(modes: list[Mode], name: str, setting: str, value: float) -> list[Mode]:
    """``modes`` with the player of mode ``name`` configured with ``setting`` = ``value``."""
    return [
        dataclasses.replace(mode, config={**mode.config, setting: value}) if mode.name == name else mode
        for mode in modes
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120, help="measured seconds per mode, after startup")
    parser.add_argument("--modes", default="hls,dash,ll-hls,ll-dash", help="comma-separated, of " + ", ".join(MODES))
    parser.add_argument("--segment-duration", type=float, default=2.0, help="the channels' spec.segmentDuration")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between the page's samples")
    parser.add_argument("--stall", type=float, default=0.5, help="seconds without progress that count as a stall")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--hls-catch-up",
        type=float,
        default=None,
        help="hls.js's maxLiveSyncPlaybackRate in ll-hls (default: hls.js's own, 1: no catch-up)",
    )
    parser.add_argument(
        "--hls-sync-count",
        type=int,
        default=None,
        help="hls.js's liveSyncDurationCount in hls (default: hls.js's own, 3 target durations)",
    )
    parser.add_argument(
        "--hls-start-offset",
        type=float,
        default=None,
        help="the standard channel's spec.hlsStartOffset (EXT-X-START: players start this many seconds before the "
        "playlist's end; default: unset, players choose)",
    )
    args = parser.parse_args()
    modes = [MODES[name] for name in args.modes.split(",")]
    if args.hls_sync_count is not None:
        modes = with_player_setting(modes, "hls", "liveSyncDurationCount", args.hls_sync_count)
    if args.hls_catch_up is not None:
        modes = with_player_setting(modes, "ll-hls", "maxLiveSyncPlaybackRate", args.hls_catch_up)
    from playwright.sync_api import sync_playwright

    results: list[Result] = []
    with sync_playwright() as playwright:
        browser = chromium(playwright)
        try:
            # one channel's pipeline at a time, alone on the machine, for the modes that play it
            for channel in dict.fromkeys(mode.channel for mode in modes):
                played = [mode for mode in modes if mode.channel == channel]
                results += run_channel(browser, channel, played, args)
        finally:
            browser.close()
    report(results, args.seconds)
    if args.json:
        args.json.write_text(json.dumps([result.__dict__ for result in results], indent=1))
    return 0 if all(result.latencies for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Hours of running: one live-encoded channel, two recording Programs and simulated viewers.

    python bench/soak.py [--seconds 3600] [--viewers 50] [--interval 60] [--warmup 600]
                         [--single-encoder] [--long-window PT10M] [--json summary.json] [--log up.log]
                         [--starve-at SECONDS [--starve-for SECONDS] [--starve-quota CORES]]

Runs ``kubecast up`` with one channel (a two-rendition live ladder, encoders A and B fed by one
ffmpeg through the tee muxer, as a dual push) and two Programs, publishes a lavfi test picture
with a tone in real time, and starts ``--viewers`` HTTP clients, half HLS and half DASH, each
following the live playlists at real-time pace and fetching every new video and audio segment
of its rendition, as a player does.  Every ``--interval`` seconds it prints the resident memory
and open file descriptors of each kubecast process; at the end the CPU per component, the
segments published, the viewers' responses by status, and the largest drift between audio and
video: for every segment number, the difference between the audio and the video segment's
start and end (tfdt, tfdt + sample durations) as viewers were served them, and as the stored
timeline lists them.  The goals for a long run, each printed PASS or FAIL (exit status 1 on a
FAIL): resident memory growth under 5 % from ``--warmup`` to the end, file descriptors flat
(at most ``FD_SLACK`` more at the end than after the warm-up), no 5xx, and audio/video drift
under one AAC frame (1024 samples).  Linux only (it reads /proc).  On a shared machine the CPU
figures include the contention of whatever else runs.

``--starve-at`` starves encoder A on purpose, as a loaded machine did in earlier hours: from that
second of the run, for ``--starve-for`` seconds, it is capped at ``--starve-quota`` of one core by
a cgroup-v1 CFS quota (``starve.py``; root and /sys/fs/cgroup/cpu needed), so that the run shows
what a starved spell leaves behind, beside encoder B, which is not starved.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from processes import stop_group  # noqa: E402 - bench/ is on the path of a script run from it
from starve import cpu_quota  # noqa: E402 - likewise

from kubecast.media.mp4 import parse_media_segment  # noqa: E402 - after the path is set

CHANNEL = "soak"
SEGMENT_SECONDS = 2
SAMPLE_RATE = 48000
AUDIO_FRAME = 1024 / SAMPLE_RATE
TIMELINE_POLL = 10.0  # seconds; well inside the live window, so every stored row is seen
FD_SLACK = 5  # viewers' keep-alive connections come and go; a leak grows without bound


def manifest(long_window: str) -> str:
    """The channel and its two Programs; the second records ``long_window`` (ISO 8601)."""
    return f"""apiVersion: kubecast.io/v1alpha1
kind: Channel
metadata: {{name: {CHANNEL}}}
spec:
  encoding:
    preset: Custom
    x264Preset: ultrafast
    renditions:
      - {{name: v360, width: 640, height: 360, bitrate: 800000, profile: High}}
      - {{name: v180, width: 320, height: 180, bitrate: 250000, profile: Baseline}}
  segmentDuration: {SEGMENT_SECONDS}
  liveWindow: 120
---
apiVersion: kubecast.io/v1alpha1
kind: Program
metadata: {{name: soak-short}}
spec: {{channelName: {CHANNEL}, archiveWindow: PT5M, manifestName: short}}
---
apiVersion: kubecast.io/v1alpha1
kind: Program
metadata: {{name: soak-long}}
spec: {{channelName: {CHANNEL}, archiveWindow: {long_window}, manifestName: long}}
"""


PROGRAM_URLS = ["/soak-short/short.m3u8", "/soak-short/short.mpd", "/soak-long/long.m3u8", "/soak-long/long.mpd"]


@dataclass
class Stats:
    """What the viewers saw, shared by all of them (one event loop: no locks)."""

    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # connection failures, by exception type
    segments: int = 0
    bytes: int = 0
    timed: set[str] = field(default_factory=set)  # segment URLs already parsed for their times
    served: dict[tuple[str, int], tuple[float, float]] = field(default_factory=dict)  # (track, n) -> start, end


@dataclass(frozen=True)
class Track:
    id: str
    kind: str
    timescale: int


async def fetch(session: aiohttp.ClientSession, url: str, stats: Stats) -> bytes | None:
    try:
        async with session.get(url) as response:
            body = await response.read()
    except (aiohttp.ClientError, asyncio.TimeoutError) as error:
        stats.errors[type(error).__name__] += 1
        return None
    stats.statuses[response.status] += 1
    return body if response.status == 200 else None


async def fetch_segment(session: aiohttp.ClientSession, url: str, track: Track, stats: Stats) -> None:
    body = await fetch(session, url, stats)
    if body is None:
        return
    stats.segments += 1
    stats.bytes += len(body)
    if url in stats.timed:
        return  # another viewer fetched the same object; parsing it once is enough
    stats.timed.add(url)
    tfdt, samples = parse_media_segment(body)
    start, end = tfdt / track.timescale, (tfdt + sum(s.duration for s in samples)) / track.timescale
    stats.served[(track.id, round(start / SEGMENT_SECONDS))] = (start, end)


async def hls_track(session: aiohttp.ClientSession, url: str, track: Track, stats: Stats, stop: asyncio.Event) -> None:
    """One media playlist, reloaded as RFC 8216 asks: after a target duration, half that when unchanged."""
    next_sequence: int | None = None
    while not stop.is_set():
        text = (await fetch(session, url, stats) or b"").decode()
        sequence = int(m.group(1)) if (m := re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text)) else 0
        uris = [line for line in text.splitlines() if line and not line.startswith("#")]
        if next_sequence is None and uris:
            await fetch(session, urljoin(url, "init.mp4"), stats)
            next_sequence = sequence + max(0, len(uris) - 3)  # start near the live edge, as players do
        fresh = [
            uri for index, uri in enumerate(uris) if next_sequence is not None and sequence + index >= next_sequence
        ]
        for uri in fresh:
            await fetch_segment(session, urljoin(url, uri), track, stats)
        if fresh:
            next_sequence = sequence + len(uris)
        await sleep_or_stop(stop, SEGMENT_SECONDS if fresh else SEGMENT_SECONDS / 2)


def dash_times(template: ET.Element) -> list[int]:
    times, cursor = [], 0
    for s in template.iter("{urn:mpeg:dash:schema:mpd:2011}S"):
        cursor = int(s.get("t", cursor))
        for _ in range(int(s.get("r", "0")) + 1):
            times.append(cursor)
            cursor += int(s.get("d", "0"))
    return times


async def dash_viewer(
    session: aiohttp.ClientSession, url: str, tracks: dict[str, Track], index: int, stats: Stats, stop: asyncio.Event
) -> None:
    """Reloads the MPD every minimumUpdatePeriod (one segment) and fetches each new segment of one
    video representation and the audio."""
    done: dict[str, int] = {}  # representation -> the last $Time$ fetched
    while not stop.is_set():
        body = await fetch(session, url, stats)
        fresh = False
        if body is not None:
            for adaptation in ET.fromstring(body).iter("{urn:mpeg:dash:schema:mpd:2011}AdaptationSet"):
                template = adaptation.find("{urn:mpeg:dash:schema:mpd:2011}SegmentTemplate")
                ids = [r.get("id", "") for r in adaptation.iter("{urn:mpeg:dash:schema:mpd:2011}Representation")]
                if template is None or not ids:
                    continue
                rid = ids[index % len(ids)]
                times = dash_times(template)
                if rid not in done and times:
                    init = template.get("initialization", "").replace("$RepresentationID$", rid)
                    await fetch(session, urljoin(url, init), stats)
                    done[rid] = times[max(0, len(times) - 3) - 1] if len(times) > 3 else -1
                for t in (t for t in times if t > done.get(rid, -1)):
                    media = template.get("media", "").replace("$RepresentationID$", rid).replace("$Time$", str(t))
                    await fetch_segment(session, urljoin(url, media), tracks[rid], stats)
                    done[rid], fresh = t, True
        await sleep_or_stop(stop, SEGMENT_SECONDS if fresh else SEGMENT_SECONDS / 2)


async def hls_viewer(
    session: aiohttp.ClientSession, url: str, tracks: dict[str, Track], index: int, stats: Stats, stop: asyncio.Event
) -> None:
    text = ""
    while not stop.is_set() and not text:
        text = (await fetch(session, url, stats) or b"").decode()
        if not text:
            await sleep_or_stop(stop, 1)
    variants = [line for line in text.splitlines() if line and not line.startswith("#")]
    audio = re.findall(r'TYPE=AUDIO[^\n]*URI="([^"]+)"', text)
    chosen = [variants[index % len(variants)], *audio[:1]]
    await asyncio.gather(
        *(hls_track(session, urljoin(url, uri), tracks[uri.split("/")[-2]], stats, stop) for uri in chosen)
    )


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass


# -- the processes -------------------------------------------------------------------------------


@dataclass
class Sample:
    elapsed: float
    rss_mb: dict[str, float]
    fds: dict[str, int]
    cpu_seconds: dict[str, float]
    cache_mb: float = 0.0  # the endpoint's object cache (bounded by its --cache-mb), part of its RSS


def process_name(pid: int, rtmp_port: int) -> str | None:
    """The component a child of ``kubecast up`` runs, from its command line."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    if "kubecast.cli" not in argv:
        return None
    command = argv[argv.index("kubecast.cli") + 1]
    if command == "encoder":
        return f"encoder {argv[argv.index('--instance') + 1]}"
    if command == "ingest":
        return "ingest A" if argv[argv.index("--listen") + 1].endswith(f":{rtmp_port}") else "ingest B"
    return command


def children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(entry.name))
    return found


def measure(pids: dict[str, int], elapsed: float) -> Sample:
    sample = Sample(elapsed, {}, {}, {})
    ticks = os.sysconf("SC_CLK_TCK")
    for name, pid in pids.items():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            sample.fds[name] = len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            continue  # exited between the listing and the reading; the next sample finds its successor
        sample.rss_mb[name] = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]
        sample.cpu_seconds[name] = (int(stat[11]) + int(stat[12])) / ticks  # utime + stime
    return sample


def timeline_rows(store: Path) -> tuple[dict[str, Track], dict[tuple[str, int], tuple[float, float]]]:
    try:
        timeline = json.loads((store / "channels" / CHANNEL / "timeline.json").read_text())
    except (OSError, ValueError):
        return {}, {}
    tracks, rows = {}, {}
    for entry in timeline["tracks"]:
        info = entry["info"]
        tracks[info["id"]] = track = Track(info["id"], info["kind"], info["timescale"])
        for number, start, duration, *_ in entry["segments"]:
            rows[(track.id, number)] = (start / track.timescale, (start + duration) / track.timescale)
    return tracks, rows


def drift(tracks: dict[str, Track], times: dict[tuple[str, int], tuple[float, float]]) -> tuple[float, int]:
    """The largest difference between an audio and a video segment's start or end, over the segment
    numbers both have, and how many numbers were compared."""
    audio = [t.id for t in tracks.values() if t.kind == "audio"]
    worst, compared = 0.0, 0
    for (track, number), (start, end) in times.items():
        if tracks.get(track, Track("", "", 1)).kind != "video":
            continue
        for other in audio:
            if (paired := times.get((other, number))) is not None:
                worst, compared = max(worst, abs(paired[0] - start), abs(paired[1] - end)), compared + 1
    return worst, compared


def publisher(rtmp: int, secondary: list[int], seconds: int) -> list[str]:
    outputs = [f"rtmp://127.0.0.1:{port}/live/{CHANNEL}/soak-key" for port in [rtmp, *secondary]]
    return [
        *("ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi").split(),
        *("-i", f"sine=frequency=1000:sample_rate={SAMPLE_RATE}", "-t", str(seconds), "-map", "0:v", "-map", "1:a"),
        *("-c:v libx264 -preset ultrafast -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p").split(),
        *("-c:a aac -b:a 96k -flags +global_header -f tee").split(),
        "|".join(f"[f=flv:onfail=ignore]{url}" for url in outputs),
    ]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout:.0f} s")
        time.sleep(0.5)


# -- the run -------------------------------------------------------------------------------------


async def soak(
    args: argparse.Namespace, base: str, store: Path, up: subprocess.Popen[bytes], rtmp: int
) -> dict[str, Any]:
    tracks, _ = timeline_rows(store)
    stats, stop = Stats(), asyncio.Event()
    sessions = [aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) for _ in range(args.viewers)]
    viewers = []
    for index, session in enumerate(sessions):
        if index % 2 == 0:
            viewers.append(hls_viewer(session, f"{base}/live/{CHANNEL}/index.m3u8", tracks, index // 2, stats, stop))
        else:
            viewers.append(dash_viewer(session, f"{base}/live/{CHANNEL}/manifest.mpd", tracks, index // 2, stats, stop))
    tasks = [asyncio.create_task(viewer) for viewer in viewers]
    stored: dict[tuple[str, int], tuple[float, float]] = {}
    samples: list[Sample] = []
    pids: dict[str, int] = {}
    restarts: Counter[str] = Counter()
    started = time.monotonic()
    print(f"{args.viewers} viewers on {base}, {args.seconds} s, a sample every {args.interval} s", flush=True)
    spell = contextlib.ExitStack()
    spell_state = "before" if args.starve_at is not None else "none"
    async with aiohttp.ClientSession() as checker:
        while True:
            elapsed = time.monotonic() - started
            if spell_state == "before" and elapsed >= args.starve_at and "encoder A" in pids:
                spell.enter_context(cpu_quota(pids["encoder A"], args.starve_quota, "soak-starved-encoder"))
                spell_state = "starved"
                print(f"{elapsed / 60:5.1f}m encoder A capped at {args.starve_quota} core", flush=True)
            if spell_state == "starved" and elapsed >= args.starve_at + args.starve_for:
                spell.close()
                spell_state = "after"
                print(f"{elapsed / 60:5.1f}m encoder A let go", flush=True)
            stored.update(timeline_rows(store)[1])  # often: a row stays listed only for the live window
            if not samples or elapsed >= samples[-1].elapsed + args.interval or elapsed >= args.seconds:
                current = {name: pid for pid in children(up.pid) if (name := process_name(pid, rtmp))}
                current["supervisor"] = up.pid
                restarts.update(name for name, pid in current.items() if pids.get(name, pid) != pid)
                pids = current
                samples.append(measure(pids, elapsed))
                metrics = (await fetch(checker, base + "/metrics", stats) or b"").decode()
                if match := re.search(r"^kubecast_endpoint_object_cache_bytes ([0-9.e+]+)", metrics, re.M):
                    samples[-1].cache_mb = float(match.group(1)) / 2**20
                for path in PROGRAM_URLS:
                    await fetch(checker, base + path, stats)
                print_sample(samples[-1], stats, len(samples) == 1)
            if elapsed >= args.seconds or any(task.done() for task in tasks):
                break
            await asyncio.sleep(min(TIMELINE_POLL, args.interval, max(0.0, args.seconds - elapsed)) + 0.001)
    spell.close()
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    failed = [task.exception() for task in tasks if task.exception() is not None]
    for session in sessions:
        await session.close()
    return summarise(args, samples, stats, tracks, stored, restarts, failed)


def print_sample(sample: Sample, stats: Stats, header: bool) -> None:
    names = sorted(sample.rss_mb)
    if header:
        print("time    " + "".join(f"{name:>18}" for name in names) + "  cache MB  (RSS MB / open fds)  responses")
    cells = "".join(f"{f'{sample.rss_mb[n]:.1f}/{sample.fds[n]}':>18}" for n in names)
    print(
        f"{sample.elapsed / 60:5.1f}m {cells} {sample.cache_mb:9.1f}  {dict(sorted(stats.statuses.items()))}",
        flush=True,
    )


def summarise(
    args: argparse.Namespace,
    samples: list[Sample],
    stats: Stats,
    tracks: dict[str, Track],
    stored: dict[tuple[str, int], tuple[float, float]],
    restarts: Counter[str],
    failed: list[BaseException | None],
) -> dict[str, Any]:
    first, last = samples[0], samples[-1]
    base = next((s for s in samples if s.elapsed >= args.warmup), samples[-1])
    wall = last.elapsed - first.elapsed or 1.0
    print(f"\nCPU over {wall:.0f} s (% of one core; the machine is shared, so this includes contention):")
    cpu = {n: 100 * (last.cpu_seconds[n] - first.cpu_seconds.get(n, 0)) / wall for n in sorted(last.cpu_seconds)}
    print("  " + "   ".join(f"{n} {p:.1f} %" for n, p in cpu.items()))
    video = sorted(t.id for t in tracks.values() if t.kind == "video")
    numbers = sorted(n for (track, n) in stored if video and track == video[0])
    missing = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers)) if numbers else []
    print(f"segments published ({video[0] if video else '-'}): {len(numbers)}, missing numbers: {missing[:20]}")
    print(f"viewers fetched {stats.segments} segments, {stats.bytes / 1e6:.0f} MB; responses {dict(stats.statuses)}")
    if stats.errors or failed or restarts:
        print(f"connection errors {dict(stats.errors)}; viewers that failed {failed[:3]}; restarts {dict(restarts)}")
    served_drift, served_pairs = drift(tracks, stats.served)
    stored_drift, stored_pairs = drift(tracks, stored)
    # The endpoint's object cache fills towards its cap (256 MB by default) for as long as new segments
    # come (half an hour of this channel): bounded by design, so the endpoint is judged net of it.
    net = {"endpoint": (last.cache_mb, base.cache_mb)}
    growth = {
        n: 100 * ((last.rss_mb[n] - net.get(n, (0, 0))[0]) / (base.rss_mb[n] - net.get(n, (0, 0))[1]) - 1)
        for n in last.rss_mb
        if n in base.rss_mb
    }
    fd_growth = {n: last.fds[n] - base.fds[n] for n in last.fds if n in base.fds}
    fivexx = sum(count for status, count in stats.statuses.items() if status >= 500)
    worst = max(served_drift, stored_drift)
    goals = {
        f"RSS growth under 5 % after {base.elapsed / 60:.1f} min (endpoint: net of its object cache, "
        f"{base.cache_mb:.0f} -> {last.cache_mb:.0f} MB)": (
            all(g < 5 for g in growth.values()),
            ", ".join(f"{n} {g:+.1f} %" for n, g in sorted(growth.items())),
        ),
        f"open fds flat (at most +{FD_SLACK})": (
            all(g <= FD_SLACK for g in fd_growth.values()),
            ", ".join(f"{n} {g:+d}" for n, g in sorted(fd_growth.items())),
        ),
        "zero 5xx": (fivexx == 0, f"{fivexx} responses 5xx"),
        f"A/V drift under one audio frame ({AUDIO_FRAME * 1000:.1f} ms)": (
            worst < AUDIO_FRAME and served_pairs > 0 and stored_pairs > 0,
            f"served {served_drift * 1000:.2f} ms over {served_pairs} pairs, "
            f"stored {stored_drift * 1000:.2f} ms over {stored_pairs} pairs",
        ),
        "no component restarted, no viewer failed or lost its connection": (
            not restarts and not failed and not stats.errors,
            f"restarts {dict(restarts)}, connection errors {dict(stats.errors)}",
        ),
    }
    print()
    for goal, (ok, detail) in goals.items():
        print(f"{'PASS' if ok else 'FAIL'}  {goal}: {detail}")
    return {
        "goals": {goal: ok for goal, (ok, _) in goals.items()},
        "fd_growth": fd_growth,
        "rss_growth_percent": growth,
        "fivexx": fivexx,
        "statuses": {str(k): v for k, v in stats.statuses.items()},
        "drift_seconds": {"served": served_drift, "stored": stored_drift},
        "pairs": {"served": served_pairs, "stored": stored_pairs},
        "segments_published": len(numbers),
        "missing": missing,
        "segments_fetched": stats.segments,
        "cpu_percent": cpu,
        "restarts": dict(restarts),
        "connection_errors": dict(stats.errors),
        "samples": [vars(s) for s in samples],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=3600, help="how long the viewers watch")
    parser.add_argument("--viewers", type=int, default=50, help="half HLS, half DASH")
    parser.add_argument("--interval", type=float, default=60, help="seconds between samples of the processes")
    parser.add_argument("--warmup", type=float, default=600, help="memory growth is measured from this sample on")
    parser.add_argument("--single-encoder", action="store_true", help="encoder A only (no B, half the CPU)")
    parser.add_argument("--starve-at", type=float, help="seconds into the run when encoder A is starved of CPU")
    parser.add_argument("--starve-for", type=float, default=120, help="how long encoder A is starved")
    parser.add_argument("--starve-quota", type=float, default=0.05, help="cores encoder A may use while starved")
    parser.add_argument(
        "--long-window",
        default="PT10M",
        help="the second Program's archiveWindow (ISO 8601). Its rows are memory the packager and the endpoint "
        "must hold, so the default fills within the default warm-up: what grows after it is a leak, not "
        "recorded content. A longer window measures what a recorded window costs.",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--log", help="keep the components' log (kubecast up's output) in this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kubecast-soak-") as scratch:
        folder = Path(scratch)
        (folder / "soak.yaml").write_text(manifest(args.long_window))
        # Port 0 everywhere: kubecast up chooses free ports (holding each until all are chosen), and says which.
        command = [sys.executable, "-m", "kubecast.cli", "up", "-f", str(folder / "soak.yaml"), "--store"]
        command += [str(folder / "store"), "--rtmp-port", "0", "--http-port", "0", "--rtmp-secondary-port", "0"]
        command += ["--single-encoder"] if args.single_encoder else []
        log = (folder / "up.log").open("wb")
        up = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=folder, start_new_session=True)
        ffmpeg = None
        try:
            wait_for(lambda: b"Status page" in (folder / "up.log").read_bytes(), 120, "kubecast up ready")
            printed = (folder / "up.log").read_text(errors="replace")
            http = int(re.findall(r"Status page:\s+http://[^:]+:(\d+)/", printed)[0])
            rtmp, *secondary = (int(port) for port in re.findall(r"ngest \(RTMP\):\s+rtmp://[^:]+:(\d+)/", printed))
            ffmpeg = subprocess.Popen(
                publisher(rtmp, secondary[:1], args.seconds + 120), stdin=subprocess.DEVNULL, start_new_session=True
            )
            wait_for(lambda: len(timeline_rows(folder / "store")[1]) >= 9, 120, "three segments of every track")
            summary = asyncio.run(soak(args, f"http://127.0.0.1:{http}", folder / "store", up, rtmp))
        except Exception:
            print((folder / "up.log").read_text(errors="replace")[-5000:], file=sys.stderr)
            raise
        finally:
            for process in (ffmpeg, up):
                if process is not None:
                    stop_group(process)
            log.close()
            if args.log:
                shutil.copyfile(folder / "up.log", args.log)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return 0 if all(summary["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())

"""The storage-fault drill: a live channel on moto's S3 behind the fault proxy, watched by hls.js.

Every component (both encoders, the packager, the endpoint) reaches storage through
``faultproxy.FaultProxy``; the test reads the store directly from moto, past the proxy.  One
dual-push stream lives through the faults in turn, each at a seeded random moment: 500 ms of
added latency per request, 10 % of requests answered 503, and an outage.  Meanwhile an auditor
checks, for every segment the timeline lists, that the object is in the store (listed only once
durable), and the encoders' upload backlog is sampled from their metrics.  Used by
``tests/e2e/test_storage_faults.py`` (a 10 s outage) and ``bench/storage_faults.py`` (30 s).
"""

from __future__ import annotations

import contextlib
import random
import re
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from drill import Pipeline, Player
from faultproxy import FaultProxy
from helpers import Proc, lavfi_source, wait_until
from media_checks import download, media_playlist

from kubecast.storage import Store, layout

SEGMENT_SECONDS = 2
RENDITIONS = ["v360", "v180", "audio"]
KEY = "key-for-cam1"
MANIFEST = f"""
apiVersion: kubecast.io/v1alpha1
kind: Channel
metadata: {{name: cam1}}
spec:
  ingest:
    redundancy: DualPush
    streamKeySecretRef: {{name: cam1-key, key: streamKey}}
  encoding:
    preset: Custom
    x264Preset: ultrafast
    renditions:
      - {{name: v360, width: 640, height: 360, bitrate: 800000, profile: High}}
      - {{name: v180, width: 320, height: 180, bitrate: 250000, profile: Baseline}}
  segmentDuration: {SEGMENT_SECONDS}
  liveWindow: 600
---
apiVersion: v1
kind: Secret
metadata: {{name: cam1-key}}
stringData: {{streamKey: {KEY}}}
"""
RESET_STALL = "() => { window.kubecastMonitor.longestStallMs = 0; }"


@dataclass
class FaultResult:
    name: str
    seconds: float  # how long the fault lasted
    stall: float  # the longest player stall from the fault's start until the player caught up after it


@dataclass
class DrillResult:
    faults: list[FaultResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # what hls.js reported
    unreadable_listed: list[str] = field(default_factory=list)  # listed segments the store did not have
    served_problems: list[str] = field(default_factory=list)  # missing segments or tfdt jumps in what is served
    peak_backlog: float = 0.0  # segments waiting in one encoder, at most
    timeline: dict = field(default_factory=dict)
    proxy_counts: str = ""


def publish(urls: list[str], seconds: float) -> Proc:
    """Debian's ffmpeg pushing the same stream to both ingests."""
    tee = "|".join(f"[f=flv:onfail=ignore]{url}" for url in urls)
    argv = ["ffmpeg", "-hide_banner", "-loglevel", "warning", "-re", *lavfi_source(size="640x360")]
    argv += ["-t", f"{seconds:.1f}", "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast"]
    argv += ["-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", "-flags", "+global_header"]
    return Proc([*argv, "-f", "tee", tee], name="ffmpeg publisher")


class Auditor:
    """Reads the timeline straight from the store (past the proxy) every few hundred ms and checks
    that each newly listed segment is an object in the store; samples the encoders' backlog."""

    def __init__(self, store: Store, metrics_urls: list[str]):
        self.store = store
        self.metrics_urls = metrics_urls
        self.checked: set[tuple[str, int]] = set()
        self.missing: list[str] = []
        self.peak_backlog = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="auditor", daemon=True)

    def __enter__(self) -> Auditor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(0.3):
            with contextlib.suppress(Exception):  # a torn moment of the test's own reading: next round
                self.audit()
            for url in self.metrics_urls:
                with contextlib.suppress(OSError):
                    text = urllib.request.urlopen(url, timeout=2).read().decode()
                    if match := re.search(r"^kubecast_encoder_upload_backlog_segments (\S+)$", text, re.M):
                        self.peak_backlog = max(self.peak_backlog, float(match.group(1)))

    def audit(self) -> None:
        import json

        data = self.store.get_sync(layout.timeline_key("cam1"))
        if data is None:
            return
        for track in json.loads(data)["tracks"]:
            track_id = track["info"]["id"]
            for row in track["segments"]:
                number, source = row[0], row[4]
                if (track_id, number) in self.checked:
                    continue
                self.checked.add((track_id, number))
                key = layout.segment_key("cam1", source, track_id, number)
                if self.store.get_sync(key) is None:
                    self.missing.append(f"{track_id}/{number} from {source}")


def run_drill(
    workdir: Path,
    *,
    s3_endpoint: str,
    store_url: str,
    outage_seconds: float,
    fault_seconds: float = 10,
    silent_outage: bool = False,
    seed: int,
) -> DrillResult:
    """One stream through latency, 503s and an outage (``silent_outage``: requests get no answer
    rather than a reset); the caller checks the result."""
    rng = random.Random(seed)
    manifest = workdir / "channel.yaml"
    manifest.write_text(MANIFEST)
    result = DrillResult()
    with FaultProxy(s3_endpoint, seed=seed) as proxy:
        pipeline = Pipeline(manifest, workdir, store_url=store_url, env={"AWS_ENDPOINT_URL": proxy.url})
        metrics = [f"http://127.0.0.1:{pipeline.ports.metrics[f'encoder cam1/{i}']}/metrics" for i in "AB"]
        settle = 4 * SEGMENT_SECONDS  # after a fault: the player catches up, the next fault starts clean
        # Long enough for a slow start; the publisher is stopped once the faults are over.
        stream_seconds = 90 + 2 * (fault_seconds + settle + 2) + outage_seconds + settle + 2
        publisher = None
        player = None
        try:
            pipeline.start()
            started = time.monotonic()
            urls = [
                f"rtmp://127.0.0.1:{port}/live/cam1/{KEY}"
                for port in (pipeline.ports.rtmp, pipeline.ports.rtmp_secondary)
            ]
            publisher = publish(urls, stream_seconds)
            wait_until(
                lambda: min((len(t["segments"]) for t in pipeline.timeline("cam1")["tracks"]), default=0) >= 3,
                timeout=40,
                interval=0.3,
                what="three segments of every rendition",
            )
            player = Player(f"{pipeline.base}/preview/cam1/")
            player.wait_playing()
            with Auditor(Store(store_url), metrics) as auditor:

                def fault(name: str, seconds: float, on, off) -> None:  # noqa: ANN001
                    time.sleep(rng.uniform(0, 2))
                    player.page.evaluate(RESET_STALL)
                    on()
                    time.sleep(seconds)
                    off()
                    time.sleep(settle)
                    result.faults.append(FaultResult(name, seconds, player.longest_stall()))
                    print(f"storage drill: {name} for {seconds:.0f} s: longest stall {result.faults[-1].stall:.2f} s")

                fault(
                    "500 ms latency per request",
                    fault_seconds,
                    lambda: setattr(proxy, "latency", 0.5),
                    lambda: setattr(proxy, "latency", 0.0),
                )
                fault(
                    "10 % of requests 503",
                    fault_seconds,
                    lambda: setattr(proxy, "failure_rate", 0.1),
                    lambda: setattr(proxy, "failure_rate", 0.0),
                )
                fault(
                    "outage, no answer" if silent_outage else "outage",
                    outage_seconds,
                    lambda: proxy.outage(outage_seconds, silent=silent_outage),
                    lambda: None,
                )
                assert time.monotonic() - started < stream_seconds - 2, "the faults outlasted the stream"
                result.errors = player.errors()
                player.close()
                player = None
                publisher.stop()  # ffmpeg ends the stream; the encoders close every track at one number
                wait_until(
                    lambda: pipeline.timeline("cam1")["state"] == "waiting",
                    timeout=30,
                    interval=0.5,
                    what="the channel to go idle",
                )
                auditor.audit()  # the last rows
                result.served_problems = served_problems(pipeline.base)
            result.unreadable_listed = auditor.missing
            result.peak_backlog = auditor.peak_backlog
            result.timeline = pipeline.timeline("cam1")
            result.proxy_counts = str(proxy.counts)
            return result
        finally:
            if player is not None:
                player.close()
            if publisher is not None:
                publisher.stop()
            pipeline.stop()


def check_nothing_lost(index: dict) -> None:
    """Every rendition has every number from its first to its last, each segment's time
    continuing the previous one's, no discontinuity."""
    tracks = {t["info"]["id"]: t for t in index["tracks"]}
    assert sorted(tracks) == sorted(RENDITIONS)
    for track_id, track in tracks.items():
        rows = track["segments"]
        assert len(rows) > 20, f"{track_id}: only {len(rows)} segments"
        for previous, row in zip(rows, rows[1:]):
            assert row[0] == previous[0] + 1, f"{track_id}: segment {previous[0] + 1} is missing"
            assert row[1] == previous[1] + previous[2], f"{track_id}: gap or overlap before segment {row[0]}"
            assert not row[5], f"{track_id}: a discontinuity at {row[0]}"
    numbers = {track_id: (t["segments"][0][0], t["segments"][-1][0]) for track_id, t in tracks.items()}
    assert len({first for first, _ in numbers.values()}) == 1, f"renditions start apart: {numbers}"


def served_problems(base: str) -> list[str]:
    """The bytes the endpoint serves: each segment's tfdt is where the one before it ended."""
    problems = []
    for rendition in RENDITIONS:
        playlist = media_playlist(f"{base}/live/cam1/{rendition}/index.m3u8")
        if playlist.discontinuities:
            problems.append(f"{rendition}: {playlist.discontinuities} discontinuities")
        times = download(playlist).decode_times()
        if len(times) < 20:
            problems.append(f"{rendition}: only {len(times)} segments served")
        for (start, duration), (next_start, _) in zip(times, times[1:]):
            if next_start != start + duration:
                problems.append(f"{rendition}: tfdt {next_start} after {start}+{duration}")
    return problems

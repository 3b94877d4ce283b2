"""The drill: one dual-push channel, two endpoint replicas behind haproxy, hls.js watching
through haproxy, and every data-plane process frozen in turn (SIGSTOP for ``freeze_seconds``,
then SIGCONT): ingest A, ingest B, encoder A, encoder B, the packager, one endpoint replica;
then one endpoint replica and ingest A killed (SIGKILL) and, as their Deployments would,
started again after the same time.  ``tests/e2e/test_drills.py`` runs it with 10 s freezes and
asserts; ``bench/drills.py`` with 30 s freezes and prints.

A hung process is the hard case: its sockets stay open, its last progress or timeline stays
in storage, and nothing restarts it.  Per fault the tests assert what a viewer must not notice:
no stall longer than one segment, no player error, every segment number present in every
rendition with continuous ``tfdt`` and no discontinuity, the same bytes under every segment URL
from both replicas, and a media sequence that never went back for a client that alternated
between them (haproxy balances each request round robin).  A Program (``show``) records the
channel throughout, and a second such client reloads its playlist: its DVR window must keep
growing while the packager is frozen.  Fault times are seeded (``KUBECAST_KILL_SEED`` repeats
a run).

The publisher is the README's dual push: one ffmpeg encode, ``tee`` to both ingests, each output
through its own ``fifo`` (``use_fifo``).  That is what a contribution encoder's two outputs are:
one encode, and per output a send queue of its own that drops (and reconnects) on its own, so a
stuck path never holds up the other (a hardware encoder's primary/backup outputs, OBS's
multiple-output plugin each run their own connection).  A bare ``tee`` writes to its outputs in
turn from one thread: a hung ingest (which stops reading, so its socket buffers fill: about 16 s
of this stream on loopback) blocks the whole encode and starves the other path too (measured:
in a 30 s freeze of ingest A the channel stopped about 26 s into it).  Two separate ffmpeg
encodes would not model it either: they would not carry the same timestamps.
"""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from balancer import Balancer
from drill import Link, Pipeline, Player, seeded
from helpers import Proc, wait_until
from media_checks import MediaPlaylist, fetch, media_playlist

from kubecast.api import load_paths
from kubecast.local.programs import publish_programs
from kubecast.media.mp4 import parse_media_segment
from kubecast.storage import Store

SEGMENT_SECONDS = 2
RENDITIONS = ["v360", "v180", "audio"]
KEY = "key-for-cam1"
SETTLE_SECONDS = 6  # after a fault: the player has played past it before its stall is read
MANIFEST = """
apiVersion: kubecast.io/v1alpha1
kind: Channel
metadata: {name: cam1}
spec:
  ingest:
    redundancy: DualPush
    streamKeySecretRef: {name: cam1-key, key: streamKey}
  encoding:
    preset: Custom
    x264Preset: ultrafast
    renditions:
      - {name: v360, width: 640, height: 360, bitrate: 800000, profile: High}
      - {name: v180, width: 320, height: 180, bitrate: 250000, profile: Baseline}
  segmentDuration: 2
  liveWindow: 600
---
apiVersion: v1
kind: Secret
metadata: {name: cam1-key}
stringData: {streamKey: key-for-cam1}
---
apiVersion: kubecast.io/v1alpha1
kind: Program
metadata: {name: show}
spec: {channelName: cam1, archiveWindow: PT10M}
"""
FAULTS = [
    ("ingest A frozen", "freeze", "ingest"),
    ("ingest B frozen", "freeze", "ingest secondary"),
    ("ingest A killed", "kill", "ingest"),
    ("encoder A frozen", "freeze", "encoder cam1/A"),
    ("encoder B frozen", "freeze", "encoder cam1/B"),
    ("packager frozen", "freeze", "packager cam1"),
    ("endpoint replica frozen", "freeze", "endpoint"),
    ("endpoint replica killed", "kill", "endpoint 2"),
]


# Each output's own queue (``fifo``): about 4 s of this stream, then its oldest packets are
# dropped rather than the encode held up; a failed connection is made again every second, from
# a key frame.  Escaped twice: ``tee`` unescapes its output list, then each output's options.
FIFO_OPTIONS = "\\\\:".join(
    ["queue_size=300", "drop_pkts_on_overflow=1", "attempt_recovery=1", "recover_any_error=1",
     "recovery_wait_time=1", "restart_with_keyframe=1"]
)  # fmt: skip


def publish(urls: list[str], seconds: float) -> Proc:
    """ffmpeg's dual push, as the README gives it: one encode, the same stream to both ingests."""
    outputs = "|".join(f"[f=flv:onfail=ignore:use_fifo=1:fifo_options={FIFO_OPTIONS}]{url}" for url in urls)
    return Proc(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
         "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000",
         "-t", f"{seconds:.0f}", "-map", "0:v", "-map", "1:a",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "96k", "-flags", "+global_header", "-f", "tee", outputs],
        name="ffmpeg publisher",
    )  # fmt: skip


@dataclass
class Outcome:
    """What one fault did to the viewer."""

    name: str
    stall: float = 0.0
    errors: list[str] = field(default_factory=list)
    first: int = 0  # the newest listed segment when the fault began
    last: int = 0  # … when its settling time ended
    began: float = 0.0  # monotonic
    ended: float = 0.0


@dataclass
class Poll:
    """A client that reloads a media playlist through the balancer, alternating replicas."""

    url: str
    seen: list[tuple[float, int, int]] = field(default_factory=list)  # (time, media sequence, newest number)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.wait(0.4):
            try:
                playlist = media_playlist(self.url)
            except (OSError, urllib.error.HTTPError, AssertionError) as error:
                self.failures.append(f"{time.monotonic():.1f}: {error}")
                continue
            if playlist.segments:
                self.seen.append((time.monotonic(), playlist.media_sequence, newest_listed(playlist)))


@dataclass
class Served:
    """One rendition as both replicas served it after the drill: per segment number, its
    (tfdt, duration) and whether the replicas' bytes differ."""

    rows: dict[int, tuple[int, int]] = field(default_factory=dict)
    differ: list[int] = field(default_factory=list)
    discontinuities: int = 0


@dataclass
class DrillRun:
    seed: int
    outcomes: dict[str, Outcome]
    poll: Poll
    served: dict[str, Served]
    program: Poll  # the same client on the program ``show`` (its DVR window must go on while the packager is frozen)
    freeze_seconds: float


def newest(pipeline: Pipeline) -> int:
    return min(t["segments"][-1][0] for t in pipeline.timeline("cam1")["tracks"] if t["segments"])


def newest_listed(playlist: MediaPlaylist) -> int:
    """The number of the newest segment a media playlist lists (-1: none)."""
    return int(playlist.segments[-1][0].rsplit("/", 1)[1].removesuffix(".m4s")) if playlist.segments else -1


def served_by(replicas: list[str], stored: int) -> dict[str, Served]:
    """Every listed segment of every rendition, fetched from each replica directly, once every
    replica lists the ``stored`` newest segment: a replica reads the timeline a moment after the
    packager writes it, so without that wait the snapshot can end before the faults' last segment."""
    urls = [f"{base}/live/cam1/{rendition}/index.m3u8" for base in replicas for rendition in RENDITIONS]
    wait_until(
        lambda: all(newest_listed(media_playlist(url)) >= stored for url in urls),
        timeout=20,
        interval=0.3,
        what=f"every replica listing segment {stored} of every rendition",
    )
    result = {}
    for rendition in RENDITIONS:
        served = result[rendition] = Served()
        playlists = [media_playlist(f"{base}/live/cam1/{rendition}/index.m3u8") for base in replicas]
        served.discontinuities = max(p.discontinuities for p in playlists)
        for url, _ in playlists[0].segments:
            path = url.split("/live/", 1)[1]
            first, *others = [fetch(f"{base}/live/{path}") for base in replicas]
            number = int(path.rsplit("/", 1)[1].removesuffix(".m4s"))
            base_time, samples = parse_media_segment(first)
            served.rows[number] = (base_time, sum(sample.duration for sample in samples))
            if any(other != first for other in others):
                served.differ.append(number)
    return result


def run_drill(workdir: Path, freeze_seconds: float, report: Callable[[str], None] = print) -> DrillRun:
    seed, rng = seeded("drill")
    manifest = workdir / "channel.yaml"
    manifest.write_text(MANIFEST)
    pipeline = Pipeline(manifest, workdir)
    balancer = publisher = player = None
    links: list[Link] = []
    poll, program = Poll(""), Poll("")
    try:
        pipeline.start()
        asyncio.run(publish_programs(Store(pipeline.store_url), load_paths([str(manifest)])))  # as `kubecast up` does
        second = pipeline.start_endpoint_replica("endpoint 2")
        replicas = [f"http://127.0.0.1:{pipeline.ports.http}", f"http://127.0.0.1:{second}"]
        balancer = Balancer(workdir, {"r1": pipeline.ports.http, "r2": second})
        slot = freeze_seconds + 2 + SETTLE_SECONDS
        links = [Link(pipeline.ports.rtmp), Link(pipeline.ports.rtmp_secondary)]
        publisher = publish(
            [f"rtmp://127.0.0.1:{link.port}/live/cam1/{KEY}" for link in links], 40 + slot * len(FAULTS)
        )
        wait_until(lambda: newest(pipeline) >= 2, timeout=40, interval=0.3, what="three segments of every rendition")
        player = Player(f"{balancer.base}/preview/cam1/")
        player.wait_playing()
        poll.url = f"{balancer.base}/live/cam1/v360/index.m3u8"
        program.url = f"{balancer.base}/show/v360/index.m3u8"
        wait_until(lambda: media_playlist(program.url).segments, timeout=20, interval=0.5, what="the program recording")
        pollers = [threading.Thread(target=client.run, daemon=True) for client in (poll, program)]
        for poller in pollers:
            poller.start()
        time.sleep(SEGMENT_SECONDS * 2)
        outcomes = {}
        for name, action, process in FAULTS:
            outcome = outcomes[name] = Outcome(name)
            time.sleep(rng.uniform(0, 2))
            player.page.evaluate("() => { window.kubecastMonitor.longestStallMs = 0; }")
            errors_before = len(player.errors())
            outcome.first, outcome.began = newest(pipeline), time.monotonic()
            if action == "freeze":
                pipeline.freeze(process)
                time.sleep(freeze_seconds)
                pipeline.thaw(process)
            else:
                pipeline.kill(process)
                time.sleep(freeze_seconds)
                pipeline.start(process)  # as its Deployment would
            time.sleep(SETTLE_SECONDS)
            outcome.stall, outcome.errors = player.longest_stall(), player.errors()[errors_before:]
            outcome.last, outcome.ended = newest(pipeline), time.monotonic()
            report(f"drill: {name}: longest stall {outcome.stall:.2f} s, player errors {outcome.errors}")
        for client, poller in zip((poll, program), pollers):
            client.stop.set()
            poller.join(5)
        stored = max(outcome.last for outcome in outcomes.values())
        return DrillRun(seed, outcomes, poll, served_by(replicas, stored), program, freeze_seconds)
    finally:
        poll.stop.set()
        program.stop.set()
        if player:
            player.close()
        if publisher:
            publisher.stop()
        for link in links:
            link.cut()
        if balancer:
            balancer.stop()
        pipeline.stop()


def what_a_viewer_noticed(drill: DrillRun, fault: str) -> list[str]:
    """Everything about one fault a viewer could have noticed besides the stall: player errors,
    a channel that did not move on, missing segments, a jump in ``tfdt``, replicas serving
    different bytes, a playlist that went back.  Empty: nothing."""
    outcome = drill.outcomes[fault]
    problems = [f"the player reported {error}" for error in outcome.errors]
    numbers = range(outcome.first - 1, outcome.last + 1)
    if outcome.last <= outcome.first + 3:
        problems.append(f"the channel did not move on: {outcome.first} to {outcome.last}")
    for rendition, served in drill.served.items():
        if missing := [n for n in numbers if n not in served.rows]:
            problems.append(f"{rendition} lacks segments {missing}")
        for n in numbers[1:]:
            if n - 1 in served.rows and n in served.rows:
                start, duration = served.rows[n - 1]
                if served.rows[n][0] != start + duration:
                    problems.append(f"{rendition} tfdt jumps before segment {n}")
        if differ := [n for n in served.differ if n in numbers]:
            problems.append(f"the replicas serve different bytes for {rendition} segments {differ}")
    window = [seen for seen in drill.poll.seen if outcome.began - 1 <= seen[0] <= outcome.ended]
    if len(window) <= 10:
        problems.append(f"the alternating client saw too little: {window}")
    problems.extend(f"the playlist went back: {step}" for step in steps_back(window, drill))
    return problems


def during(drill: DrillRun, at: float) -> str:
    """Which fault (or the settling after it) a monotonic time falls in, for failure messages."""
    for outcome in drill.outcomes.values():
        if outcome.began <= at <= outcome.ended:
            return f"{outcome.name}, {at - outcome.began:.1f} s after it began"
    return "between faults"


def steps_back(seen: list[tuple[float, int, int]], drill: DrillRun) -> list[str]:
    """Every reload whose playlist was older (media sequence or newest number) than the one before."""
    return [
        f"{sequence}/{number} then {later_sequence}/{later_number} ({during(drill, at)})"
        for (_, sequence, number), (at, later_sequence, later_number) in zip(seen, seen[1:])
        if later_sequence < sequence or later_number < number
    ]


def program_growth(drill: DrillRun) -> int:
    """Segments the program ``show``'s playlist gained while the packager was frozen (from a
    second into the freeze to its end), as the alternating client saw it."""
    outcome = drill.outcomes["packager frozen"]
    thawed = outcome.began + drill.freeze_seconds
    frozen = [number for at, _, number in drill.program.seen if outcome.began + 1 <= at <= thawed]
    return frozen[-1] - frozen[0] if frozen else 0

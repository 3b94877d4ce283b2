"""What low-latency HLS costs: encoder CPU, storage writes, endpoint reads and a viewer's requests.

    python bench/low_latency_cost.py [--seconds 30]

Two live-encoded channels with the demo's three-rung ladder run under one ``kubecast up`` (one
encoder each), one after the other (the idle one costs nothing), each fed over RTMP by ffmpeg
(testsrc2 720p30 and a tone, in real time): ``standard``, and ``low``, the same with
``lowLatency: {partDuration: 0.5}``.  While each runs, one scripted viewer plays it as a player
would: on ``standard`` it reloads the 720p playlist every second and fetches each new segment; on
``low`` it asks for the next part with a blocking reload (``_HLS_msn``/``_HLS_part``) and fetches
it, as hls.js does in low-latency mode.  For each channel it prints, over ``--seconds`` after a
warm-up: the encoder's CPU (``/proc``), the encoder's storage writes by kind (its
``kubecast_encoder_store_writes_total``: each one a PUT on an object store), the endpoint's
storage reads of index objects by kind (``kubecast_endpoint_index_reads_total``) and CPU, and
the viewer's requests; then the ratios of ``low`` to ``standard``.

It also prints how soon a part reaches a viewer: for each blocking reload answered, the wall
clock of the answer minus the wall-clock end of the part it asked for (the playlist's
PROGRAM-DATE-TIME plus the durations before the part's end).  That is the encoder's delay (a
part is complete one frame after its end, then encoded), its two writes (the part, then
parts.json), the endpoint's read of parts.json and the answer.  ``--store s3`` runs the pipeline on
moto's S3 server behind ``tests/faultproxy.py`` adding ``--s3-latency-ms`` to every request (a
local moto answers in about a millisecond; S3 in tens), to show what an object store adds.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from helpers import contribution_command  # noqa: E402
from processes import DEMO_LADDER, kubecast_up, s3_bucket, stop_group, tree, wait_for  # noqa: E402

from kubecast.local.ports import unclaimed_port  # noqa: E402

CHANNELS = "---\n".join(
    f"apiVersion: kubecast.io/v1alpha1\nkind: Channel\nmetadata: {{name: {name}}}\n"
    f"spec: {{encoding: {DEMO_LADDER}, segmentDuration: 2{extra}}}\n"
    for name, extra in (("standard", ""), ("low", ", lowLatency: {partDuration: 0.5}"))
)
WARM_UP = 10  # seconds of contribution before the measurement: past the encoder's start-up
RENDITION = "video_720p"


def fetch(url: str, timeout: float = 10) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def counters(url: str, name: str) -> dict[str, float]:
    """label value -> value of a one-label counter on a Prometheus page."""
    text = fetch(url)[1].decode()
    return {label: float(value) for label, value in re.findall(rf'^{name}{{\w+="(\w+)"}} (\S+)$', text, re.M)}


def delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {key: value - before.get(key, 0.0) for key, value in after.items() if value - before.get(key, 0.0)}


class Viewer(threading.Thread):
    """One player's requests, counted."""

    def __init__(self, base: str, channel: str, *, low_latency: bool) -> None:
        super().__init__(daemon=True)
        self.base, self.channel, self.low_latency = base, channel, low_latency
        self.requests = 0
        self.part_delays: list[float] = []  # seconds from a part's end (wall clock) to the answer naming it
        self.stop = threading.Event()

    def get(self, url: str) -> tuple[int, bytes]:
        self.requests += 1
        return fetch(url)

    def run(self) -> None:
        if self.low_latency:
            self._low_latency()
        else:
            self._standard()

    def _standard(self) -> None:
        playlist, seen = f"{self.base}/live/{self.channel}/{RENDITION}/index.m3u8", set()
        while not self.stop.is_set():
            text = self.get(playlist)[1].decode()
            for uri in re.findall(r"^(\d+\.m4s)$", text, re.M)[-2:]:
                if uri not in seen:
                    seen.add(uri)
                    self.get(f"{self.base}/live/{self.channel}/{RENDITION}/{uri}")
            self.stop.wait(1.0)

    def _low_latency(self) -> None:
        folder = f"{self.base}/live/{self.channel}/ll/{RENDITION}"
        text = self.get(f"{folder}/index.m3u8")[1].decode()
        while not self.stop.is_set():
            hint = re.search(r'PRELOAD-HINT:TYPE=PART,URI="((\d+)\.(\d+)\.\w+\.m4s)"', text)
            if hint is None:
                self.stop.wait(0.5)
                text = self.get(f"{folder}/index.m3u8")[1].decode()
                continue
            sequence = int(text.split("#EXT-X-MEDIA-SEQUENCE:", 1)[1].split()[0])
            whole = text.count("#EXTINF:")
            open_parts = text.split("#EXTINF:")[-1].count("#EXT-X-PART:")
            part = int(hint[3])
            msn = sequence + whole + (1 if part == 0 and open_parts else 0)
            status, body = self.get(f"{folder}/index.m3u8?_HLS_msn={msn}&_HLS_part={part}")
            answered = time.time()
            if status == 200:
                text = body.decode()
                if (end := part_end(text, hint[1])) is not None:
                    self.part_delays.append(answered - end.timestamp())
                self.get(f"{folder}/{hint[1]}")
            else:
                text = self.get(f"{folder}/index.m3u8")[1].decode()


@dataclass(frozen=True)
class Reading:
    """Counters at one moment (``minus`` makes the difference over a window)."""

    encoder_cpu: float
    endpoint_cpu: float
    writes: dict[str, float]
    reads: dict[str, float]
    requests: int

    def minus(self, earlier: Reading) -> Reading:
        return Reading(
            self.encoder_cpu - earlier.encoder_cpu,
            self.endpoint_cpu - earlier.endpoint_cpu,
            delta(self.writes, earlier.writes),
            delta(self.reads, earlier.reads),
            self.requests - earlier.requests,
        )

    def line(self, seconds: int) -> str:
        def rates(counts: dict[str, float]) -> str:
            each = ", ".join(f"{kind} {count / seconds:.2f}" for kind, count in sorted(counts.items()))
            return f"{sum(counts.values()) / seconds:.1f}/s ({each})"

        return (
            f"encoder {self.encoder_cpu / seconds:.3f} cores, storage writes {rates(self.writes)}; "
            f"endpoint {self.endpoint_cpu / seconds:.3f} cores, index reads {rates(self.reads)}; "
            f"one viewer {self.requests / seconds:.2f} requests/s"
        )


def read(up: int, channel: str, encoder_metrics: str, endpoint_metrics: str, viewer: Viewer) -> Reading:
    processes = tree(up)
    return Reading(
        sum(cpu for command, cpu in processes.values() if f"encoder-{channel}.json" in command),
        sum(cpu for command, cpu in processes.values() if "endpoint.json" in command),
        counters(encoder_metrics, "kubecast_encoder_store_writes_total"),
        counters(endpoint_metrics, "kubecast_endpoint_index_reads_total"),
        viewer.requests,
    )


def part_end(text: str, uri: str) -> datetime | None:
    """The wall-clock end of the part ``uri`` in a low-latency playlist, from its first
    PROGRAM-DATE-TIME and the durations listed after it (None: not listed)."""
    clock: datetime | None = None
    for line in text.splitlines():
        if line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            clock = datetime.fromisoformat(line.split(":", 1)[1].replace("Z", "+00:00"))
            parts = timedelta()
        elif clock is None:
            continue
        elif line.startswith("#EXT-X-PART:"):
            parts += timedelta(seconds=float(line.split("DURATION=")[1].split(",")[0]))
            if f'URI="{uri}"' in line:
                return clock + parts
        elif line.startswith("#EXTINF:"):
            clock += timedelta(seconds=float(line[8:].rstrip(",")))
            parts = timedelta()
    return None


@contextlib.contextmanager
def storage(kind: str, work: Path, latency_ms: float) -> Iterator[str]:
    """The store URL the pipeline runs on: a local folder, or a bucket on moto's S3 server behind
    the fault proxy adding ``latency_ms`` to every request (the environment tells every component)."""
    if kind == "folder":
        yield str(work / "store")
        return
    from faultproxy import FaultProxy
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        with FaultProxy(f"http://{host}:{port}") as proxy:
            proxy.latency = latency_ms / 1000
            yield s3_bucket(proxy.url, f"http://{host}:{port}") + "/media"
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--store", choices=("folder", "s3"), default="folder")
    parser.add_argument("--s3-latency-ms", type=float, default=30.0, help="added to every S3 request (--store s3)")
    args = parser.parse_args()
    results: dict[str, Reading] = {}
    delays: list[float] = []
    with tempfile.TemporaryDirectory() as folder, storage(args.store, Path(folder), args.s3_latency_ms) as store:
        work = Path(folder)
        (work / "channels.yaml").write_text(CHANNELS)
        rtmp, http = unclaimed_port(), unclaimed_port()
        up, lines = kubecast_up(
            work / "channels.yaml",
            store,
            work,
            *("--rtmp-port", str(rtmp), "--rtmp-secondary-port", str(unclaimed_port())),
            *("--http-port", str(http), "--ingest-http-port", str(unclaimed_port())),
            *("--srt-port", str(unclaimed_port())),
        )
        base = f"http://127.0.0.1:{http}"
        publisher: subprocess.Popen[bytes] | None = None
        try:
            wait_for(lines, "Status page", 120)
            printed = "".join(lines)
            for name in ("standard", "low"):
                found = re.search(rf"encoder {name}/A:\s+(http://\S+/metrics)", printed)
                assert found is not None, f"no metrics URL printed for the encoder of {name}"
                command = contribution_command(
                    f"rtmp://127.0.0.1:{rtmp}/live/{name}/x", seconds=WARM_UP + args.seconds + 10, size="1280x720"
                )
                # One channel at a time: the other's encoder idles, and this one has both cores.
                publisher = subprocess.Popen(command, start_new_session=True)
                time.sleep(WARM_UP)
                viewer = Viewer(base, name, low_latency=name == "low")
                viewer.start()
                time.sleep(2)  # the viewer's first requests are its start, not its steady state
                before = read(up.pid, name, found[1], f"{base}/metrics", viewer)
                time.sleep(args.seconds)
                results[name] = read(up.pid, name, found[1], f"{base}/metrics", viewer).minus(before)
                delays += viewer.part_delays
                viewer.stop.set()
                viewer.join(15)
                stop_group(publisher)
                publisher = None
        finally:
            if publisher is not None:
                stop_group(publisher)
            stop_group(up)
    seconds = args.seconds
    where = "a local folder" if args.store == "folder" else f"S3 (moto) with {args.s3_latency_ms:.0f} ms per request"
    print(f"{os.cpu_count()} cores, {seconds} s measured after {WARM_UP} s each, 720p30 in, the demo's ladder out, "
          f"storage: {where}")  # fmt: skip
    for name, result in results.items():
        print(f"{name}: {result.line(seconds)}")
    low, standard = results["low"], results["standard"]
    print(f"low / standard: encoder CPU {low.encoder_cpu / standard.encoder_cpu:.3f}, "
          f"endpoint CPU {low.endpoint_cpu / standard.endpoint_cpu:.2f}, "
          f"storage writes {sum(low.writes.values()) / sum(standard.writes.values()):.2f}, "
          f"index reads {sum(low.reads.values()) / max(1.0, sum(standard.reads.values())):.2f}, "
          f"viewer requests {low.requests / standard.requests:.2f}")  # fmt: skip
    if delays:
        cuts = statistics.quantiles(delays, n=20)
        print(f"a part's end to the blocking reload naming it: p50 {statistics.median(delays):.3f} s, "
              f"p95 {cuts[18]:.3f} s, max {max(delays):.3f} s over {len(delays)} parts")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

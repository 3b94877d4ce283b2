"""Segment publish latency while live: from a segment's end to its listing in the timeline.

    python bench/latency.py [--seconds 60] [--ladder demo|Default720p]

Runs ``kubecast up`` with one channel, publishes a 720p30 test pattern with the ffmpeg CLI in
real time, and watches ``timeline.json`` every 20 ms from outside, as an endpoint would.  For
each segment of each rendition, latency = the moment it first appears in the timeline minus
the wall-clock time of its end (availabilityStartTime + (tfdt + duration) / timescale).  It
prints p50, p99 and max; the goal is p99 <= 500 ms.  (The packager's own histogram,
kubecast_packager_publish_latency_seconds, measures the same thing from inside.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from processes import stop_group

from kubecast.local.ports import unclaimed_port

LADDERS = {
    "demo": """    preset: Custom
    x264Preset: superfast
    renditions:
      - {name: video_720p, width: 1280, height: 720, bitrate: 2500000, profile: High}
      - {name: video_480p, width: 854, height: 480, bitrate: 1200000, profile: Main}
      - {name: video_240p, width: 426, height: 240, bitrate: 400000, profile: Baseline}""",
    "Default720p": "    preset: Default720p",
}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--ladder", default="demo", choices=sorted(LADDERS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "channel.yaml").write_text(
            "apiVersion: kubecast.io/v1alpha1\nkind: Channel\nmetadata: {name: bench}\nspec:\n  encoding:\n"
            + LADDERS[args.ladder]
            + "\n"
        )
        rtmp, http = unclaimed_port(), unclaimed_port()
        up = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kubecast.cli",
                "up",
                "-f",
                str(folder / "channel.yaml"),
                "--store",
                str(folder / "store"),
                "--rtmp-port",
                str(rtmp),
                "--http-port",
                str(http),
                "--quiet",
                "--status-interval",
                "3600",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        publisher = None
        try:
            deadline = time.monotonic() + 60
            for line in up.stdout:
                if "Status page" in line or time.monotonic() > deadline:
                    break
            publisher = subprocess.Popen(
                [
                    "ffmpeg",
                    "-v",
                    "error",
                    "-re",
                    "-f",
                    "lavfi",
                    "-i",
                    "testsrc2=size=1280x720:rate=30",
                    "-f",
                    "lavfi",
                    "-i",
                    "sine=sample_rate=48000",
                    "-t",
                    str(args.seconds + 10),
                    "-c:v",
                    "libx264",
                    "-preset",
                    "ultrafast",
                    "-tune",
                    "zerolatency",
                    "-g",
                    "60",
                    "-pix_fmt",
                    "yuv420p",
                    "-c:a",
                    "aac",
                    "-f",
                    "flv",
                    f"rtmp://127.0.0.1:{rtmp}/live/bench/any-key",
                ],
                start_new_session=True,
            )
            timeline_file = folder / "store" / "channels" / "bench" / "timeline.json"
            seen: dict[tuple[str, int], float] = {}
            latencies: list[float] = []
            end = time.monotonic() + args.seconds + 8
            while time.monotonic() < end:
                try:
                    timeline = json.loads(timeline_file.read_text())
                except (OSError, ValueError):
                    time.sleep(0.02)
                    continue
                now = datetime.now().astimezone()
                start = timeline.get("availabilityStartTime")
                for track in timeline["tracks"]:
                    timescale = track["info"]["timescale"]
                    for number, tfdt, duration, *_ in track["segments"]:
                        key = (track["info"]["id"], number)
                        if key in seen or start is None:
                            continue
                        seen[key] = time.monotonic()
                        segment_end = datetime.fromisoformat(start.replace("Z", "+00:00")) + timedelta(
                            seconds=(tfdt + duration) / timescale
                        )
                        if len(seen) > len(timeline["tracks"]):  # the first segment of each track may predate the watch
                            latencies.append((now - segment_end).total_seconds())
                time.sleep(0.02)
        finally:
            for process in (publisher, up):
                if process is not None:
                    stop_group(process)
        if not latencies:
            print("no segments were published")
            return 1
        print(f"{len(latencies)} segments over {args.seconds} s, ladder {args.ladder}, {os.cpu_count()} cores")
        print(
            f"publish latency p50 {percentile(latencies, 0.5) * 1000:.0f} ms   p99 "
            f"{percentile(latencies, 0.99) * 1000:.0f} ms   max {max(latencies) * 1000:.0f} ms   (goal: p99 <= 500 ms)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What a stopped channel costs: CPU of its encoder and packager while it runs, and once stopped.

    python bench/stopped_cost.py [--seconds 10]

Runs ``kubecast up`` (one encoder) with one live-encoded channel (the demo's three-rung ladder),
publishes a 720p30 test pattern with the ffmpeg CLI in real time, and reads the CPU time
(utime + stime, /proc/<pid>/stat) of every process under ``kubecast up`` over ``--seconds``:
once while the channel runs, once after ``kubecast channel stop`` has stopped it.  It prints the
channel's own processes (encoder and packager) and the whole of ``kubecast up`` (the ingest,
the streaming endpoint and the supervisor stay) in cores (CPU seconds per second).  On a
cluster the same channel has its encoder and packager Deployments at ``replicas: 0``: no pod,
no CPU request (tests/operator/test_channel_lifecycle_kmock.py).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from processes import kubecast_up, stop_group, tree, wait_for

from kubecast.local.ports import unclaimed_port

CHANNEL = """apiVersion: kubecast.io/v1alpha1
kind: Channel
metadata: {name: bench}
spec:
  encoding:
    preset: Custom
    x264Preset: superfast
    renditions:
      - {name: video_720p, width: 1280, height: 720, bitrate: 2500000, profile: High}
      - {name: video_480p, width: 854, height: 480, bitrate: 1200000, profile: Main}
      - {name: video_240p, width: 426, height: 240, bitrate: 400000, profile: Baseline}
"""


def is_channel_process(command: str) -> bool:
    return "encoder-bench.json" in command or "packager-bench.json" in command


def measure(root: int, seconds: float) -> tuple[float, float, int]:
    """(cores used by the channel's processes, cores used by all of kubecast up, channel processes)."""
    before = tree(root)
    time.sleep(seconds)
    after = tree(root)
    used = {pid: cpu - before[pid][1] for pid, (_, cpu) in after.items() if pid in before}
    channel = [pid for pid, (command, _) in after.items() if is_channel_process(command)]
    return sum(used.get(pid, 0.0) for pid in channel) / seconds, sum(used.values()) / seconds, len(channel)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "channel.yaml").write_text(CHANNEL)
        rtmp, http = unclaimed_port(), unclaimed_port()
        store = work / "store"
        up, lines = kubecast_up(
            work / "channel.yaml",
            store,
            work,
            "--rtmp-port",
            str(rtmp),
            "--rtmp-secondary-port",
            str(unclaimed_port()),
            "--http-port",
            str(http),
        )
        publisher = None
        try:
            wait_for(lines, "Status page", 90)
            publisher = subprocess.Popen(
                ["ffmpeg", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30"]
                + ["-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", str(int(args.seconds) * 3 + 60)]
                + ["-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac"]
                + ["-f", "flv", f"rtmp://127.0.0.1:{rtmp}/live/bench/any-key"],
                stderr=subprocess.DEVNULL,  # the stop cuts it off: "Broken pipe" is expected
                start_new_session=True,
            )
            playlist = f"http://127.0.0.1:{http}/live/bench/video_240p/index.m3u8"
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(playlist, timeout=5) as answer:
                        if b"#EXTINF" in answer.read():
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError("no segment within 60 s")
                time.sleep(0.5)
            time.sleep(4)  # past the encoder's start-up
            running = measure(up.pid, args.seconds)
            subprocess.run(
                [sys.executable, "-m", "kubecast.cli", "channel", "stop", "bench", "--store", str(store)],
                check=True,
                capture_output=True,
                timeout=30,
            )
            wait_for(lines, "channel bench: Stopped", 60)
            stopped = measure(up.pid, args.seconds)
        finally:
            for process in (publisher, up):
                if process is not None:
                    stop_group(process)
        print(f"{os.cpu_count()} cores, {args.seconds:.0f} s each, the demo's 3-rung ladder from 720p30, one encoder")
        for name, (channel, total, processes) in (("running", running), ("stopped", stopped)):
            print(
                f"{name}: the channel's encoder and packager {channel:.2f} cores ({processes} processes); "
                f"all of kubecast up {total:.2f} cores"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

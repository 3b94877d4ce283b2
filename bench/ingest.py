"""Ingest cost per protocol: CPU seconds one ``kubecast ingest`` process spends per second of a
pass-through contribution, against ``ffmpeg -c copy`` remuxing the same input, in the same run.

    python bench/ingest.py [--seconds 30] [--bitrate 6M] [--readrate 4]

A 1080p30 H.264 + AAC source is encoded once.  For each protocol, Debian's ffmpeg sends it
with ``-c copy`` (at ``--readrate`` times real time, so UDP is not flooded) into an ingest
process whose encoder address is a sink in this process; the ingest's CPU time (from /proc)
divided by the media seconds is its cost.  The peer is ``ffmpeg -c copy`` of the same source
into the protocol's container, written to /dev/null: the work of demuxing and remuxing.
It prints both, the ratio (ours / ffmpeg; lower is better), and the contribution bitrate one
core of ingest would sustain at that cost.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubecast.local.ports import unclaimed_port  # noqa: E402 - found through the line above

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Sink:
    """The encoder's contribution port: counts and discards."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.received = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            connection, _ = self.server.accept()
            threading.Thread(target=self._drain, args=(connection,), daemon=True).start()

    def _drain(self, connection: socket.socket) -> None:
        with connection:
            while data := connection.recv(1 << 20):
                self.received += len(data)


def run_ingest(workdir: Path, sink: Sink, ports: dict) -> subprocess.Popen:
    config = {
        "channels": {
            "bench": {
                "encoders": [f"127.0.0.1:{sink.port}"],
                "protocols": ["RTMP", "FragmentedMP4", "CMAF", "SRT", "UDP", "RTP"],
                "udpListen": f"127.0.0.1:{ports['udp']}",
            }
        },
        "idleTimeout": 3,
    }
    (workdir / "ingest.json").write_text(json.dumps(config))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubecast.cli",
            "ingest",
            "--listen",
            f"127.0.0.1:{ports['rtmp']}",
            "--http-listen",
            f"127.0.0.1:{ports['http']}",
            "--srt-listen",
            f"127.0.0.1:{ports['srt']}",
            "--config",
            str(workdir / "ingest.json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    for line in process.stdout:
        if "listening on" in line:
            break
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
    return process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--bitrate", default="6M")
    parser.add_argument("--readrate", type=float, default=4.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        source = work / "source.mp4"
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=1920x1080:rate=30",
                "-f",
                "lavfi",
                "-i",
                "sine=sample_rate=48000",
                "-t",
                str(args.seconds),
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-b:v",
                args.bitrate,
                "-g",
                "60",
                "-keyint_min",
                "60",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                str(source),
            ],
            check=True,
        )
        ports = {
            "rtmp": unclaimed_port(),
            "http": unclaimed_port(),
            "srt": unclaimed_port(),
            "udp": unclaimed_port(),
        }
        outputs = {
            "RTMP": (["-f", "flv"], f"rtmp://127.0.0.1:{ports['rtmp']}/live/bench/any"),
            "Smooth": (
                ["-movflags", "isml+frag_keyframe", "-f", "ismv"],
                f"http://127.0.0.1:{ports['http']}/ingest/bench.isml/Streams(v)",
            ),
            "CMAF": (
                ["-seg_duration", "2", "-f", "dash"],
                f"http://127.0.0.1:{ports['http']}/ingest/bench.cmaf/manifest.mpd",
            ),
            "SRT": (["-f", "mpegts"], f"srt://127.0.0.1:{ports['srt']}?streamid=bench&pkt_size=1316&linger=2"),
            "RTP": (["-f", "rtp_mpegts"], f"rtp://127.0.0.1:{ports['udp']}?pkt_size=1316"),
            "UDP": (["-f", "mpegts"], f"udp://127.0.0.1:{ports['udp']}?pkt_size=1316"),
        }
        print(f"{args.seconds} s of 1080p30 H.264 at {args.bitrate}bit/s + AAC, sent at {args.readrate:g}x real time")
        print(
            f"{'protocol':<8} {'ingest CPU s/media s':>21} {'ffmpeg -c copy':>15} {'ratio':>7} "
            f"{'one core sustains':>18}"
        )
        for protocol, (muxer, url) in outputs.items():
            sink = Sink()
            ingest = run_ingest(work, sink, ports)
            try:
                before = cpu_seconds(ingest.pid)
                subprocess.run(
                    [
                        "ffmpeg",
                        "-v",
                        "error",
                        "-readrate",
                        str(args.readrate),
                        "-i",
                        str(source),
                        "-c",
                        "copy",
                        *muxer,
                        url,
                    ],
                    check=True,
                    timeout=600,
                )
                deadline = time.monotonic() + 10
                last = -1
                while time.monotonic() < deadline and sink.received != last:  # the ingest has forwarded everything
                    last = sink.received
                    time.sleep(1)
                ours = (cpu_seconds(ingest.pid) - before) / args.seconds
            finally:
                ingest.terminate()
                ingest.wait(30)
            theirs = ffmpeg_cpu(source, muxer) / args.seconds
            sustained = bitrate_of(args.bitrate) / ours / 1e6 if ours else float("inf")
            print(
                f"{protocol:<8} {ours:>21.4f} {theirs:>15.4f} {ours / theirs:>7.2f} {sustained:>11.0f} Mbit/s   "
                f"({sink.received / 1e6:.1f} MB forwarded)",
                flush=True,
            )


def bitrate_of(text: str) -> float:
    return float(text.rstrip("kKmM")) * {"k": 1e3, "m": 1e6}.get(text[-1].lower(), 1)


def ffmpeg_cpu(source: Path, muxer: list[str]) -> float:
    """CPU seconds of ``ffmpeg -c copy`` into the protocol's container (the best of three)."""
    best = None
    fmt = muxer[-1]
    extra = muxer[:-2]
    if fmt == "dash":  # the same CMAF fragments, into one stream rather than a folder of files
        fmt, extra = "mp4", ["-movflags", "cmaf+frag_keyframe+empty_moov+default_base_moof"]
    for _ in range(3):
        before = os.times()
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-i",
                str(source),
                "-c",
                "copy",
                *extra,
                "-f",
                "mpegts" if fmt == "rtp_mpegts" else fmt,
                "-y",
                "/dev/null",
            ],
            check=True,
            capture_output=True,
        )
        after = os.times()
        used = (after.children_user - before.children_user) + (after.children_system - before.children_system)
        best = used if best is None else min(best, used)
    return best


if __name__ == "__main__":
    main()

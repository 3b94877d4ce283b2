"""Transcoding speed: our ladder encoder against the ffmpeg CLI, in the same run.

    python bench/transcode.py [--seconds 60] [--preset veryfast] [--ladder Default720p]

A 1080p30 source (testsrc2, made once with the ffmpeg CLI) goes through the ladder twice:
once through kubecast's encoder code (PyAV decode in one thread, one RenditionEncoder thread
per rung, on the constant-frame-rate grid, key frames forced every segment, as the live
encoder runs them), once through one ffmpeg process that splits, scales and encodes the same
rungs with the same x264 preset and options.  Both are video-only (audio is one AAC encode,
the same in both).  It prints both speeds as multiples of real time and their ratio.  Real
time on 2 cores is the target.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubecast.api import PRESETS  # noqa: E402
from kubecast.encoder.framerate import FrameGrid  # noqa: E402
from kubecast.encoder.rendition import RenditionEncoder, SlotFrame  # noqa: E402

SEGMENT_MS = 2000


def make_source(path: Path, seconds: int) -> None:
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
            "-t",
            str(seconds),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-b:v",
            "8M",
            "-g",
            "60",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
    )


def ours(source: Path, ladder, preset: str) -> float:
    grid = FrameGrid(Fraction(30), SEGMENT_MS)
    workers = [
        RenditionEncoder(
            rendition=r, x264_preset=preset, grid=grid, publish_track=lambda *a: None, publish_segment=lambda *a: None
        )
        for r in ladder
    ]
    for worker in workers:
        worker.start()
    started = time.perf_counter()
    container = av.open(str(source))
    stream = container.streams.video[0]
    current = None
    for frame in container.decode(stream):
        slot = grid.slot_of(int(frame.pts * stream.time_base * 90000))
        number = grid.segment_of(slot)
        force = current is None or number > current
        current = number
        for worker in workers:
            worker.frames.put(SlotFrame(frame, slot, force))
    for worker in workers:
        worker.frames.put(None)
    for worker in workers:
        worker.join()
        if worker.error:
            raise worker.error
    return time.perf_counter() - started


def ffmpeg_cli(source: Path, ladder, preset: str) -> float:
    labels = [f"v{i}" for i in range(len(ladder))]
    graph = (
        f"[0:v]split={len(ladder)}"
        + "".join(f"[s{i}]" for i in range(len(ladder)))
        + ";"
        + ";".join(f"[s{i}]scale={r.width}:{r.height}:flags=bilinear[{labels[i]}]" for i, r in enumerate(ladder))
    )
    command = ["ffmpeg", "-v", "error", "-y", "-i", str(source), "-filter_complex", graph]
    for label, rendition in zip(labels, ladder):
        command += [
            "-map",
            f"[{label}]",
            "-c:v",
            "libx264",
            "-preset",
            preset,
            "-profile:v",
            rendition.profile.value.lower(),
            "-b:v",
            str(rendition.bitrate),
            "-maxrate",
            str(rendition.bitrate * 11 // 10),
            "-bufsize",
            str(rendition.bitrate * 2),
            "-bf",
            "0",
            "-force_key_frames",
            "expr:gte(t,n_forced*2)",
            "-x264-params",
            "keyint=600:min-keyint=600:scenecut=0:open-gop=0:rc-lookahead=8:sync-lookahead=0",
            "-f",
            "null",
            os.devnull,
        ]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--preset", action="append", help="x264 preset(s) to measure (repeatable); default veryfast")
    parser.add_argument("--ladder", default="Default720p", choices=sorted(PRESETS))
    args = parser.parse_args()
    ladder = PRESETS[args.ladder]
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "source.mp4"
        make_source(source, args.seconds)
        print(f"{args.ladder} ({len(ladder)} renditions) from {args.seconds} s of 1080p30, {os.cpu_count()} cores")
        for preset in args.preset or ["veryfast"]:
            ours_seconds = ours(source, ladder, preset)
            ffmpeg_seconds = ffmpeg_cli(source, ladder, preset)
            ours_speed, ffmpeg_speed = args.seconds / ours_seconds, args.seconds / ffmpeg_seconds
            print(
                f"preset {preset:9s} kubecast {ours_speed:5.2f}x real time   ffmpeg CLI {ffmpeg_speed:5.2f}x real time "
                f"  ratio {ours_speed / ffmpeg_speed:4.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

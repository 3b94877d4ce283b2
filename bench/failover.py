"""The failover drill: a long dual-push stream, random SIGKILLs of encoders and the packager.

    python bench/failover.py [--seconds 180] [--kills 4] [--seed N]

Publishes testsrc2 + sine with Debian's ffmpeg to both ingests of a local pipeline (the kill
tests' channel: two renditions and audio), plays it with hls.js in headless Chromium, and kills
a random part every so often (encoder A or B, or the packager; each comes back after 3-8 s, and
the next kill waits until it is live again, so one encoder is always up).  Prints missing
segments, discontinuities, the longest player stall, and what the second encoder costs: CPU
seconds of each encoder against the whole pipeline's.  Goal: 0 missing, 0 discontinuities, a
stall under one segment duration.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "e2e")]

from drill import Pipeline, Player  # noqa: E402
from test_failover import KEY, MANIFEST, SEGMENT_SECONDS, Drill  # noqa: E402

TICKS = 100  # os.sysconf("SC_CLK_TCK") on Linux


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


class CpuMeter:
    """CPU seconds per process name, summed over every incarnation (a killed one keeps what it used)."""

    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline
        self.seen: dict[tuple[str, int], float] = {}

    def sample(self) -> None:
        for name, proc in self.pipeline.procs.items():
            used = cpu_seconds(proc.popen.pid)
            if used is not None:
                self.seen[(name, proc.popen.pid)] = used

    def totals(self) -> dict[str, float]:
        result: dict[str, float] = {}
        for (name, _), used in self.seen.items():
            result[name] = result.get(name, 0.0) + used
        return result


def count_losses(index: dict) -> tuple[int, int]:
    """(missing segment numbers, discontinuities) over every track."""
    missing = discontinuities = 0
    for track in index["tracks"]:
        rows = track["segments"]
        for previous, row in zip(rows, rows[1:]):
            missing += row[0] - previous[0] - 1
            discontinuities += bool(row[5])
    return missing, discontinuities


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--kills", type=int, default=4)
    parser.add_argument("--seed", type=int, default=random.randrange(1 << 30))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(f"seed {args.seed}: {args.kills} kills over {args.seconds:.0f} s", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="kubecast-failover-"))
    manifest = workdir / "channel.yaml"
    manifest.write_text(MANIFEST.format(mode="DualPush", segment=SEGMENT_SECONDS, key=KEY))
    drill = Drill(Pipeline(manifest, workdir), "DualPush")
    meter = CpuMeter(drill.pipeline)
    player = None
    try:
        drill.pipeline.start()
        drill.started = time.monotonic()
        drill.connect(seconds=args.seconds)
        drill.wait_live("A", "B")
        time.sleep(3 * SEGMENT_SECONDS)
        player = Player(f"{drill.pipeline.base}/preview/cam1/")
        player.wait_playing()
        window = (args.seconds - 30) / max(1, args.kills)
        for kill in range(args.kills):
            drill.at(20 + kill * window + rng.uniform(0, window / 2))
            victim = rng.choice(
                [
                    drill.pipeline.encoder("cam1", "A"),
                    drill.pipeline.encoder("cam1", "B"),
                    drill.pipeline.packager("cam1"),
                ]
            )
            meter.sample()
            drill.pipeline.kill(victim)
            print(f"  {drill.elapsed():6.1f} s  killed {victim}", flush=True)
            time.sleep(rng.uniform(3, 8))
            drill.pipeline.start(victim)
            print(f"  {drill.elapsed():6.1f} s  restarted {victim}", flush=True)
            drill.wait_live("A", "B", timeout=60)
            time.sleep(2 * SEGMENT_SECONDS)
        while drill.elapsed() < args.seconds - 4:
            meter.sample()
            time.sleep(1)
        stall, errors = player.longest_stall(), player.errors()
        player.close()
        player = None
        meter.sample()
        drill.publisher.popen.wait(60)
        time.sleep(2 * SEGMENT_SECONDS)
        missing, discontinuities = count_losses(drill.pipeline.timeline("cam1"))
        cpu = meter.totals()
        encoders = {i: cpu.get(drill.pipeline.encoder("cam1", i), 0.0) for i in ("A", "B")}
        total = sum(cpu.values())
        print(f"\nmissing segments:      {missing}")
        print(f"discontinuities:       {discontinuities}")
        print(
            f"longest player stall:  {stall:.2f} s (one segment: {SEGMENT_SECONDS} s); player errors: "
            f"{errors or 'none'}"
        )
        print(
            f"encoder CPU:           A {encoders['A']:.1f} s, B {encoders['B']:.1f} s; whole pipeline {total:.1f} s "
            f"(ffmpeg publisher and Chromium not counted)"
        )
        print(
            f"second encoder's cost: +{100 * min(encoders.values()) / max(1e-9, total - min(encoders.values())):.0f}% "
            "CPU "
            f"over a single-encoder pipeline"
        )
        return 0 if missing == 0 and discontinuities == 0 and stall <= SEGMENT_SECONDS else 1
    finally:
        if player:
            player.close()
        drill.close()


if __name__ == "__main__":
    sys.exit(main())

"""A starved spell of the encoder on demand, with and without a change: what memory it leaves.

    python bench/starve.py --baseline DIR [--quota 0.05] [--before 90] [--spell 120] [--after 240]

The one-hour soak's encoders kept memory after every spell in which the machine starved them of
CPU (README, soak).  Such spells came from other work and were neither timed nor repeatable; this
bench makes one.  It runs two pipelines side by side, each ``kubecast up --single-encoder`` with
the soak's channel (640x360 and 320x180, x264 ultrafast) fed by its own ffmpeg publishing the
same test picture and tone in real time: one on this checkout, one on the code in ``--baseline``
(a copy of another revision, e.g. ``git archive main | tar -x -C DIR``, put first on the
baseline's ``PYTHONPATH``).  After ``--before`` seconds both encoders go into cgroup-v1 CPU
groups of their own, each capped by a CFS quota at ``--quota`` of one core (the encoder needs
about 0.12), for ``--spell`` seconds; then they are let go and watched for ``--after`` seconds.
Every ``--interval`` seconds it prints each encoder's resident memory, split as
``/proc/<pid>/smaps`` shows it: glibc's main heap, its other arenas' heaps (64 MiB-aligned
mappings) and the rest of the anonymous memory (buffers mapped on their own, thread stacks,
Python's object arenas); at the end each one's growth from just before the spell to the end.

Linux only, with the cgroup-v1 ``cpu`` controller mounted at /sys/fs/cgroup/cpu and the right to
write there (root): the groups are made below the group this bench runs in, so that a group given
CPU priority (``/work/coord/quiet-run``) keeps it for the pipelines.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CPU_CONTROLLER = Path("/sys/fs/cgroup/cpu")
CFS_PERIOD_US = 100_000
ARENA_HEAP_ALIGN = 64 << 20  # glibc's HEAP_MAX_SIZE on 64-bit: every non-main arena heap starts aligned to it
MANIFEST = """apiVersion: kubecast.io/v1alpha1
kind: Channel
metadata: {name: starve}
spec:
  encoding:
    preset: Custom
    x264Preset: ultrafast
    renditions:
      - {name: v360, width: 640, height: 360, bitrate: 800000, profile: High}
      - {name: v180, width: 320, height: 180, bitrate: 250000, profile: Baseline}
  segmentDuration: 2
  liveWindow: 120
"""


def own_cpu_group() -> Path:
    """The cgroup-v1 CPU group this process runs in."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(","):
            return CPU_CONTROLLER / path.lstrip("/")
    raise RuntimeError("no cgroup-v1 cpu controller (this bench needs /sys/fs/cgroup/cpu)")


@contextlib.contextmanager
def cpu_quota(pid: int, cores: float, name: str) -> Iterator[None]:
    """While inside: process ``pid`` (all its threads) capped at ``cores`` of CPU by a CFS quota, in
    a group ``name`` below this process's own; then back in the group it came from."""
    home = own_cpu_group()
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(","):
            home = CPU_CONTROLLER / path.lstrip("/")
    group = own_cpu_group() / name
    group.mkdir(exist_ok=True)
    (group / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
    (group / "cpu.cfs_quota_us").write_text(str(int(cores * CFS_PERIOD_US)))
    (group / "cgroup.procs").write_text(str(pid))  # cgroup v1: writing a process moves all its threads
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError, OSError):  # it may have exited meanwhile
            (home / "cgroup.procs").write_text(str(pid))
        with contextlib.suppress(OSError):
            group.rmdir()


@dataclass(frozen=True)
class Memory:
    """One process's resident memory in MB, by where glibc and Python put it."""

    rss: float
    main_heap: float
    arena_heaps: float
    other_anonymous: float


def memory(pid: int) -> Memory:
    rss = {"main": 0, "arenas": 0, "other": 0, "total": 0}
    kind = "file"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            start = int(fields[0].split("-")[0], 16)
            path = fields[5] if len(fields) > 5 else ""
            if path == "[heap]":
                kind = "main"
            elif path:
                kind = "file"  # libraries, and [stack] and the like
            else:
                kind = "arenas" if start % ARENA_HEAP_ALIGN == 0 and fields[1] == "rw-p" else "other"
        elif fields[0] == "Rss:":
            rss["total"] += int(fields[1])
            if kind != "file":
                rss[kind] += int(fields[1])
    return Memory(rss["total"] / 1024, rss["main"] / 1024, rss["arenas"] / 1024, rss["other"] / 1024)


def encoder_pid(up: int) -> int | None:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == up and b"encoder" in argv:
            return int(entry.name)
    return None


@dataclass
class Pipeline:
    label: str
    up: subprocess.Popen[bytes]
    folder: Path
    ffmpeg: subprocess.Popen[bytes] | None = None
    encoder: int | None = None


def start(label: str, folder: Path, pythonpath: str | None) -> Pipeline:
    folder.mkdir()
    (folder / "starve.yaml").write_text(MANIFEST)
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    command = [sys.executable, "-m", "kubecast.cli", "up", "-f", "starve.yaml", "--store", "store", "--single-encoder"]
    command += ["--rtmp-port", "0", "--http-port", "0", "--status-interval", "3600"]
    log = (folder / "up.log").open("wb")
    up = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=folder, env=env, start_new_session=True)
    return Pipeline(label, up, folder)


def publish(pipeline: Pipeline, seconds: float) -> None:
    deadline = time.monotonic() + 120
    while b"Status page" not in (pipeline.folder / "up.log").read_bytes():
        if time.monotonic() > deadline or pipeline.up.poll() is not None:
            raise TimeoutError(f"{pipeline.label}: kubecast up not ready:\n" + (pipeline.folder / "up.log").read_text())
        time.sleep(0.5)
    printed = (pipeline.folder / "up.log").read_text(errors="replace")
    rtmp = int(re.findall(r"ngest \(RTMP\):\s+rtmp://[^:]+:(\d+)/", printed)[0])
    pipeline.encoder = encoder_pid(pipeline.up.pid)
    pipeline.ffmpeg = subprocess.Popen(
        [
            *"ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc2=size=640x360:rate=30".split(),
            *"-f lavfi -i sine=frequency=1000:sample_rate=48000 -map 0:v -map 1:a -t".split(),
            str(int(seconds)),
            *"-c:v libx264 -preset ultrafast -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p".split(),
            *"-c:a aac -b:a 96k -f flv".split(),
            f"rtmp://127.0.0.1:{rtmp}/live/starve/key",
        ],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    timeline = pipeline.folder / "store" / "channels" / "starve" / "timeline.json"
    while not timeline.exists():  # the encoder has encoded, and the packager listed, a first segment
        if time.monotonic() > deadline + 60 or pipeline.ffmpeg.poll() is not None:
            raise TimeoutError(f"{pipeline.label}: no segment:\n" + (pipeline.folder / "up.log").read_text())
        time.sleep(0.5)


def stop(pipeline: Pipeline) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from processes import stop_group

    for process in (pipeline.ffmpeg, pipeline.up):
        if process is not None:
            stop_group(process)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True, help="a copy of the code to compare against")
    parser.add_argument("--quota", type=float, default=0.05, help="cores each encoder may use in the spell")
    parser.add_argument("--before", type=float, default=90, help="seconds encoding before the spell")
    parser.add_argument("--spell", type=float, default=120, help="seconds starved")
    parser.add_argument("--after", type=float, default=240, help="seconds watched after the spell")
    parser.add_argument("--interval", type=float, default=10, help="seconds between samples")
    parser.add_argument("--json", help="also write the samples to this file")
    args = parser.parse_args()
    total = args.before + args.spell + args.after
    samples: list[tuple[str, dict[str, Memory]]] = []  # (phase, encoder -> its memory)
    with tempfile.TemporaryDirectory(prefix="kubecast-starve-") as scratch:
        pipelines = [
            start("this checkout", Path(scratch) / "this", None),
            start("baseline", Path(scratch) / "baseline", str(Path(args.baseline).resolve())),
        ]
        try:
            for pipeline in pipelines:
                publish(pipeline, total + 60)
            print(f"encoders: {', '.join(f'{p.label} pid {p.encoder}' for p in pipelines)}; quota {args.quota} core")
            header = "".join(f"{p.label + ' RSS (main/arenas/other)':>44}" for p in pipelines)
            print(f"time   phase   {header}", flush=True)
            began = time.monotonic()
            with contextlib.ExitStack() as quotas:
                while (elapsed := time.monotonic() - began) < total:
                    phase = "before" if elapsed < args.before else "after"
                    phase = "starved" if args.before <= elapsed < args.before + args.spell else phase
                    pids = {p.label: p.encoder for p in pipelines}
                    for pipeline in pipelines:
                        pipeline.encoder = encoder_pid(pipeline.up.pid)  # a new one if it was restarted
                    if pids != {p.label: p.encoder for p in pipelines}:
                        print(f"an encoder changed: {pids}", flush=True)
                    if phase == "starved" and samples[-1][0] == "before":
                        for pipeline in pipelines:
                            assert pipeline.encoder is not None
                            quotas.enter_context(cpu_quota(pipeline.encoder, args.quota, f"starve-{pipeline.encoder}"))
                    if phase == "after":
                        quotas.close()
                    row = {p.label: memory(p.encoder) for p in pipelines if p.encoder}
                    samples.append((phase, row))
                    cells = "".join(
                        f"{f'{m.rss:.1f} ({m.main_heap:.1f}/{m.arena_heaps:.1f}/{m.other_anonymous:.1f})':>44}"
                        for m in row.values()
                    )
                    print(f"{elapsed:5.0f}s {phase:8}{cells}", flush=True)
                    time.sleep(max(0.0, args.interval - (time.monotonic() - began - elapsed)))
        finally:
            for pipeline in pipelines:
                stop(pipeline)
    print()
    for pipeline in pipelines:
        label = pipeline.label
        before = [row[label] for phase, row in samples if phase == "before"][-1]
        peak = max(row[label].rss for phase, row in samples if phase != "before")
        end = samples[-1][1][label]
        print(
            f"{label}: RSS {before.rss:.1f} MB just before the spell, {peak:.1f} at most, {end.rss:.1f} at the end "
            f"({100 * (end.rss / before.rss - 1):+.1f} %); glibc's non-main arena heaps {before.arena_heaps:.1f} -> "
            f"{end.arena_heaps:.1f} MB, other anonymous {before.other_anonymous:.1f} -> {end.other_anonymous:.1f} MB"
        )
    if args.json:
        rows = [{"phase": phase, **{label: vars(m) for label, m in row.items()}} for phase, row in samples]
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

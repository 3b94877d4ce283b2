"""A Program's recorded window as it grows: resident memory of the endpoint and the packager per hour of it.

    python bench/window_rss.py [--hours 2] [--step 10] [--baseline DIR]

``window_memory.py`` counts the bytes Python keeps per row; this measures what the soak measures,
resident memory (VmRSS), but for the window alone and in minutes rather than hours.  A recording
of the soak's channel (``window_memory.channel_timeline``) grows segment by segment, as fast as
it can, to ``--hours`` of window:

- packager: a process doing the packager's work for that Program (``ProgramRecorder.step`` on
  every new segment, a retention round every 30 s of media, free memory given back before each
  reading, as the packager gives it back every minute); its RSS after each hour of window;
- endpoint: a real ``kubecast endpoint`` process on the same local-folder store, asked for the
  program's HLS (CMAF and MPEG-TS), DASH and Smooth manifests every ``--step`` segments, once the
  recording written has reached its playlists; its RSS after each hour of window.  (Viewers ask
  at every segment; every ``--step`` is fewer parses and renders, so less churn.)

Growth per hour is taken from the end of the first hour to the end, so that start-up and the
first renders are not counted.  With ``--baseline DIR`` (a copy of another revision) both are
run again with that code first on ``PYTHONPATH``, and the ratio printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

from window_memory import (
    AST,
    CHANNEL,
    FIRST_NUMBER,
    MANIFEST,
    PROGRAM,
    ROOT,
    SEGMENT_MS,
    SEGMENTS_PER_HOUR,
    channel_timeline,
    program_urls,
)

RETENTION_EVERY = 15  # segments: 30 s of media, as the packager's RETENTION_INTERVAL
READY_TIMEOUT = 30.0
LISTED_TIMEOUT = 10.0


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class Recording:
    """The packager's part for one Program over a growing channel timeline, in a local-folder store."""

    def __init__(self, folder: Path, hours: float):
        from kubecast.packager.programs import ProgramRecorder
        from kubecast.storage import ProgramRecord, Store

        self.store = Store(f"file://{folder}")
        self.program = ProgramRecord(
            name=PROGRAM,
            channel=CHANNEL,
            locator=PROGRAM,
            manifest_name=MANIFEST,
            archive_window_seconds=hours * 3600 + 600,  # never full: it grows for the whole run
        )
        self.recorder = ProgramRecorder(self.store, CHANNEL)
        self.newest = FIRST_NUMBER

    async def start(self) -> None:
        from kubecast.storage import layout

        await self.store.put(layout.program_key(CHANNEL, PROGRAM), self.program.to_json())
        await self.store.put(layout.locator_key(PROGRAM), self.program.to_json())
        channel = self._channel()
        channel.state = "stopped"  # stored stopped, so the endpoint serves the recording as written
        await self.store.put(layout.timeline_key(CHANNEL), channel.to_json())
        await self._record()

    def _channel(self):  # -> Timeline
        now = AST + timedelta(milliseconds=(self.newest + 1) * SEGMENT_MS)
        return channel_timeline(self.newest - 59, 60, now)

    async def _record(self) -> None:
        channel = self._channel()
        await self.recorder.step(channel, channel.updated)

    async def advance(self) -> None:
        """One more segment published and recorded; a retention round every 30 s of media."""
        from kubecast.packager.retention import clean

        self.newest += 1
        await self._record()
        if self.newest % RETENTION_EVERY == 0:
            await clean(self.store, self._channel(), await self.recorder.kept() or [])


async def _grow_packager(hours: float) -> list[float]:
    """(as a process of its own) RSS in MB after each hour of window, as the packager would hold."""
    from kubecast import allocator

    allocator.cap_arenas()  # as the packager's start_runtime does
    allocator.pin_mmap_threshold()
    readings = []
    with tempfile.TemporaryDirectory() as folder:
        recording = Recording(Path(folder), hours)
        await recording.start()
        for _ in range(int(hours)):
            for _ in range(SEGMENTS_PER_HOUR):
                await recording.advance()
            allocator.release_free_memory()
            readings.append(rss_mb())
    return readings


def _start_endpoint(folder: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "kubecast.cli", "endpoint", "--store", str(folder), "--listen", "127.0.0.1:0"]
    command += ["--log-level", "WARNING"]
    endpoint = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    assert endpoint.stdout is not None
    ready, _, _ = select.select([endpoint.stdout], [], [], READY_TIMEOUT)
    line = endpoint.stdout.readline() if ready else ""
    if "listening on " not in line:
        endpoint.kill()
        raise SystemExit(f"the endpoint did not start: {line!r}")
    return endpoint, line.split("listening on ", 1)[1].strip()


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


async def _grow_endpoint(hours: float, step: int, env: dict[str, str]) -> list[float]:
    """RSS in MB of a real endpoint process after each hour of window, asked for every manifest of
    the program every ``step`` segments."""
    readings = []
    with tempfile.TemporaryDirectory() as folder:
        recording = Recording(Path(folder), hours)
        await recording.start()
        endpoint, base = _start_endpoint(Path(folder), env)
        try:
            for _ in range(int(hours)):
                for _ in range(SEGMENTS_PER_HOUR // step):
                    for _ in range(step):
                        await recording.advance()
                    # The endpoint reads the recording again after its cache's time to live: wait
                    # (bounded) until its playlist lists what was written, then ask for the rest.
                    newest = f"\n{recording.newest}.m4s\n".encode()
                    deadline = time.monotonic() + LISTED_TIMEOUT
                    while newest not in await asyncio.to_thread(_fetch, f"{base}/{PROGRAM}/v360/index.m3u8"):
                        if time.monotonic() > deadline:
                            raise SystemExit(f"the endpoint never listed segment {recording.newest}")
                    for url in program_urls():
                        await asyncio.to_thread(_fetch, f"{base}{url}")
                readings.append(rss_mb(endpoint.pid))
        finally:
            endpoint.terminate()
            endpoint.wait(timeout=30)
    return readings


def _env(code: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), os.environ.get("PYTHONPATH", "")])}


def report(name: str, code: Path, hours: int, step: int) -> dict[str, float]:
    env = _env(code)
    command = [sys.executable, __file__, "--grow-packager", str(hours)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=3600)
    if result.returncode != 0:
        raise SystemExit(f"the packager's growth with {code} failed:\n{result.stderr}")
    readings = {"packager": json.loads(result.stdout), "endpoint": asyncio.run(_grow_endpoint(hours, step, env))}
    print(f"{name} ({code})")
    per_hour = {}
    for part, mb in readings.items():
        per_hour[part] = (mb[-1] - mb[0]) / (len(mb) - 1)
        shown = ", ".join(f"{value:.1f}" for value in mb)
        print(
            f"  {part:9} RSS MB after each hour of window: {shown}; {per_hour[part]:+.2f} MB per hour after the first"
        )
    return per_hour


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=int, default=2, help="hours of window to grow to (at least 2)")
    parser.add_argument("--step", type=int, default=10, help="segments between the endpoint's manifest requests")
    parser.add_argument("--baseline", type=Path, help="another revision's checkout, measured the same way")
    parser.add_argument("--grow-packager", type=int, help=argparse.SUPPRESS)  # the packager's process (internal)
    args = parser.parse_args()
    if args.grow_packager is not None:
        print(json.dumps(asyncio.run(_grow_packager(args.grow_packager))))
        return 0
    if args.hours < 2 or SEGMENTS_PER_HOUR % args.step:
        parser.error(f"--hours must be at least 2 and --step divide {SEGMENTS_PER_HOUR}")
    print(f"a Program's window of the soak's channel ({SEGMENT_MS / 1000:g} s segments), grown to {args.hours} h")
    current = report("this checkout", ROOT, args.hours, args.step)
    if args.baseline is not None:
        before = report("baseline", args.baseline.resolve(), args.hours, args.step)
        for part, growth in current.items():
            print(f"  {part:9} this checkout grows {growth / before[part]:.2f}x as much per hour as the baseline")
    return 0


if __name__ == "__main__":
    sys.exit(main())

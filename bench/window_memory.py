"""What a Program's recorded window costs in memory, per segment row, in the endpoint and the packager.

    python bench/window_memory.py [--rows 1000 10000 100000] [--baseline DIR] [--top 8]

A Program's window (``archiveWindow``, up to 30 days) is held by the packager, which records
it, and by every endpoint replica that serves it.  This bench builds a recording of N segment
rows per track (the soak's three tracks: 640x360 and 320x180 video at 90 kHz, AAC audio at
48 kHz, 2 s segments, the audio's durations alternating a frame longer and shorter) with the
project's own ``kubecast.storage.programs.record``, stores it in a local-folder store in a
temporary folder, and then, with ``tracemalloc`` tracing every allocation:

- endpoint: ``make_app`` on that store, served by aiohttp on a free port, is asked for the
  program's HLS multivariant and media playlists (CMAF and MPEG-TS), its DASH MPD and its
  Smooth manifest, as players do; what stays allocated after the responses (and a garbage
  collection) is what the process keeps for the window: the parsed rows and the rendered
  manifests it caches;
- packager: a ``ProgramRecorder`` reads the recording back and records the channel's next
  segment into it, as it does every second, and a retention round runs over it, as every 30 s;
  what stays allocated is its copy of the window.

Each N is measured in a fresh interpreter, and so is a recording of ``BASE_ROWS`` rows, which
stands for everything that does not grow with the window (the application, its routes, the
imports): bytes per row are (kept at N - kept at BASE_ROWS) / (rows at N - rows at BASE_ROWS),
where a row is one track's row (a 2 s segment of the soak's channel has three).  ``peak`` is
the most traced at any moment of the same run, per row likewise (the stored JSON, its parse,
the renders and, for the endpoint, the client's copy of a response, side by side).  With
``--baseline DIR`` (a copy of another revision, e.g. ``git archive main | tar -x -C DIR``) the
same is measured with that code first on ``PYTHONPATH``, and the ratio printed.  ``--top``
prints the allocation sites that keep the most at the largest N.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE_ROWS = 100
CHANNEL = "soak"
PROGRAM = "soak-long"
MANIFEST = "long"
SEGMENT_MS = 2000
FIRST_NUMBER = 10_000  # a program started some hours into its channel's timeline
AST = datetime(2026, 1, 1, tzinfo=timezone.utc)
SEGMENTS_PER_HOUR = 3600_000 // SEGMENT_MS


def _tracks() -> list[tuple[str, str, int, int]]:
    """(id, kind, timescale, bytes per segment) of the soak channel's tracks."""
    return [("v360", "video", 90000, 200_000), ("v180", "video", 90000, 62_500), ("audio", "audio", 48000, 32_000)]


def channel_timeline(first: int, count: int, now: datetime):  # -> Timeline (imported late: see main)
    """The channel's timeline listing segments ``first`` to ``first + count - 1``, with the
    sizes varying, the audio's durations alternating a frame longer and shorter, and a stretch
    from encoder B every 500 segments (a failover), as a long recording has."""
    from kubecast.media.timeline import Timeline, TimelineSegment, TimelineTrack
    from kubecast.media.tracks import TrackInfo

    rng = random.Random(first)
    tracks = []
    for track_id, kind, timescale, size in _tracks():
        info = TrackInfo(
            id=track_id,
            kind=kind,
            codecs="avc1.64001e" if kind == "video" else "mp4a.40.2",
            bandwidth=size * 4,
            timescale=timescale,
            init="init-aa.mp4",
            **(
                {"width": 640, "height": 360, "frame_rate": "30"}
                if kind == "video"
                else {"sample_rate": 48000, "channels": 2}
            ),
        )
        rows = []
        for number in range(first, first + count):
            if kind == "video":
                start, duration = number * 180000, 180000
            else:  # 2 s of 1024-sample AAC frames: 93.75, so 94 and 93 frames in turn (in pairs, roughly)
                start = (number * 96000) // 1024 * 1024
                duration = ((number + 1) * 96000) // 1024 * 1024 - start
            source = "B" if number % 500 < 20 else "A"
            rows.append(TimelineSegment(number, start, duration, rng.randint(size * 3 // 4, size * 5 // 4), source))
        tracks.append(TimelineTrack(info=info, init_source="A", segments=rows))
    return Timeline(
        channel=CHANNEL,
        state="live",
        updated=now,
        availability_start_time=AST,
        segment_duration_ms=SEGMENT_MS,
        window_ms=120_000,
        tracks=tracks,
    )


async def _store_recording(folder: Path, rows: int):  # -> (Store, ProgramRecord, next channel timeline)
    """A recording of ``rows`` segments per track, made by ``record`` as the packager makes it, in
    a local-folder store under ``folder``; and the channel's timeline one segment later."""
    from kubecast.storage import ProgramRecord, Store, layout
    from kubecast.storage.programs import record

    store = Store(f"file://{folder}")
    program = ProgramRecord(
        name=PROGRAM,
        channel=CHANNEL,
        locator=PROGRAM,
        manifest_name=MANIFEST,
        archive_window_seconds=(rows + 100) * SEGMENT_MS / 1000,
    )
    now = AST + timedelta(milliseconds=(FIRST_NUMBER + rows) * SEGMENT_MS)
    started, _ = record(None, program, channel_timeline(FIRST_NUMBER, 1, now), now)
    recorded, _ = record(started, program, channel_timeline(FIRST_NUMBER, rows, now), now)
    assert recorded is not None and all(len(t.segments) == rows for t in recorded.tracks), "record dropped rows"
    recorded.generation = 1
    await store.put(layout.program_key(CHANNEL, PROGRAM), program.to_json())
    await store.put(layout.locator_key(PROGRAM), program.to_json())
    await store.put(layout.program_timeline_key(CHANNEL, PROGRAM), recorded.to_json())
    # The channel's own timeline is stopped, so that the endpoint serves the stored recording
    # whatever the time (a live one older than a few seconds would be merged, as when the
    # packager is away).
    stopped = channel_timeline(FIRST_NUMBER + rows - 60, 60, now)
    stopped.state = "stopped"
    await store.put(layout.timeline_key(CHANNEL), stopped.to_json())
    return store, program, channel_timeline(FIRST_NUMBER + rows - 59, 60, now)


def program_urls() -> list[str]:
    base = f"/{PROGRAM}/{MANIFEST}"
    videos = [t[0] for t in _tracks() if t[1] == "video"]
    return (
        [f"{base}.m3u8", f"{base}.mpd", f"{base}.ism/manifest", f"{base}.ism/manifest(format=m3u8-aapl)"]
        + [f"/{PROGRAM}/{track[0]}/index.m3u8" for track in _tracks()]
        + [f"/{PROGRAM}/ts/{video}/index.m3u8" for video in videos]
    )


def _kept_since(before: tracemalloc.Snapshot, top: int) -> tuple[int, list[str]]:
    gc.collect()
    # Not counted: tracemalloc's own records, and the HTTP client standing in for the players.
    ignored = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "*/aiohttp/client*")]
    after = tracemalloc.take_snapshot().filter_traces(ignored)
    differences = after.compare_to(before.filter_traces(ignored), "lineno")
    sites = [f"{d.size_diff:>12,} B {d.count_diff:>9,} blocks  {d.traceback[0]}" for d in differences[:top]]
    return sum(d.size_diff for d in differences), sites


async def _fetch(session, url: str) -> None:
    # A function of its own, so that no response (and its body) outlives it in a local variable.
    async with session.get(url) as response:
        assert response.status == 200, f"{url}: {response.status}"
        await response.read()


async def _endpoint(store, top: int) -> dict[str, object]:
    import aiohttp
    from aiohttp import web

    from kubecast.endpoint.app import make_app

    gc.collect()
    before = tracemalloc.take_snapshot()
    tracemalloc.reset_peak()
    start = tracemalloc.get_traced_memory()[0]
    runner = web.AppRunner(make_app(store))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        # The player's side (its buffers and connections) is closed before counting.
        async with aiohttp.ClientSession() as session:
            for url in program_urls():
                await _fetch(session, f"http://127.0.0.1:{port}{url}")
        peak = tracemalloc.get_traced_memory()[1] - start
        kept, sites = _kept_since(before, top)
    finally:
        await runner.cleanup()
    return {"kept": kept, "peak": peak, "sites": sites}


async def _packager(store, following, top: int) -> dict[str, object]:
    from kubecast.packager.programs import ProgramRecorder
    from kubecast.packager.retention import clean

    gc.collect()
    before = tracemalloc.take_snapshot()
    tracemalloc.reset_peak()
    start = tracemalloc.get_traced_memory()[0]
    recorder = ProgramRecorder(store, CHANNEL)
    await recorder.step(following, following.updated)
    # And a retention round, as every 30 s (the store holds no segments: it deletes nothing).
    await clean(store, following, await recorder.kept() or [])
    recorded = recorder.timelines[PROGRAM]
    assert recorded is not None and recorded.generation == 2, "the packager did not record the next segment"
    peak = tracemalloc.get_traced_memory()[1] - start
    kept, sites = _kept_since(before, top)
    del recorder
    return {"kept": kept, "peak": peak, "sites": sites}


async def _measure(rows: int, top: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        store, _, following = await _store_recording(Path(folder), rows)
        del _
        # Both measured from the stored recording: neither keeps the objects made above.
        tracemalloc.start(1)
        endpoint = await _endpoint(store, top)
        packager = await _packager(store, following, top)
        tracemalloc.stop()
    return {"rows": rows, "endpoint": endpoint, "packager": packager}


def measured(rows: int, top: int, code: Path) -> dict:
    """One measurement in a fresh interpreter, with ``code`` first on its path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, __file__, "--measure", str(rows), "--top", str(top)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=1800)
    if result.returncode != 0:
        raise SystemExit(f"measuring {rows} rows with {code} failed:\n{result.stderr}")
    return json.loads(result.stdout)


def per_row(at: dict, base: dict, part: str, what: str) -> float:
    """Bytes per row of one track (the recording has a row per track and segment)."""
    return (at[part][what] - base[part][what]) / ((at["rows"] - base["rows"]) * len(_tracks()))


def report(name: str, code: Path, rows: list[int], top: int) -> dict[tuple[str, int], float]:
    print(f"{name} ({code})")
    base = measured(BASE_ROWS, 0, code)
    per: dict[tuple[str, int], float] = {}
    largest = None
    for count in rows:
        at = measured(count, top if count == max(rows) else 0, code)
        for part in ("endpoint", "packager"):
            kept, peak = per_row(at, base, part, "kept"), per_row(at, base, part, "peak")
            per[(part, count)] = kept
            hour = kept * len(_tracks()) * SEGMENTS_PER_HOUR / 1e6
            print(
                f"  {part:9} N={count:>7,}: kept {kept:7.0f} B/row ({hour:5.1f} MB per hour of window), "
                f"peak {peak:7.0f} B/row"
            )
        if count == max(rows):
            largest = at
    if top and largest is not None:
        for part in ("endpoint", "packager"):
            print(f"  {part}: where the memory kept at N={largest['rows']:,} was allocated")
            for site in largest[part]["sites"]:
                print(f"    {site}")
    return per


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--baseline", type=Path, help="another revision's checkout, measured the same way")
    parser.add_argument("--top", type=int, default=8, help="allocation sites to print for the largest N")
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)  # one measurement, as JSON (internal)
    args = parser.parse_args()
    if args.measure is not None:
        print(json.dumps(asyncio.run(_measure(args.measure, args.top))))
        return 0
    print(f"bytes kept per segment row of one track ({len(_tracks())} tracks, {SEGMENT_MS / 1000:g} s segments)")
    current = report("this checkout", ROOT, args.rows, args.top)
    if args.baseline is not None:
        before = report("baseline", args.baseline.resolve(), args.rows, args.top)
        for (part, count), kept in current.items():
            print(f"  {part:9} N={count:>7,}: this checkout keeps {kept / before[(part, count)]:.2f}x the baseline's")
    return 0


if __name__ == "__main__":
    sys.exit(main())

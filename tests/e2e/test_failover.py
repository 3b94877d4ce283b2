"""Active-active encoders, proven by killing one mid-stream.

Debian's ffmpeg dual-pushes one contribution (the ``tee`` muxer) to the primary and the
secondary ingest of ``kubecast up``; encoder A is killed with SIGKILL at a seeded random
moment (the local supervisor restarts it, so it also has to rejoin).  Then the published
timeline must have every segment number, continuous decode times (no gap, no overlap), no
discontinuity, segments from both encoders, and HLS that decodes from end to end.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import av
import pytest

from helpers import Proc, free_port, kubecast, wait_until
from media_checks import download, media_playlist

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent
RENDITIONS = ["v360", "v270", "v180", "audio"]


def dual_push(primary: str, secondary: str, *, seconds: float) -> Proc:
    outputs = "|".join(f"[f=flv:onfail=ignore]{url}" for url in (primary, secondary))
    return Proc(
        [
            "ffmpeg", "-hide_banner", "-loglevel", "warning", "-re",
            "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000",
            "-t", str(seconds), "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "96k", "-flags", "+global_header", "-f", "tee", outputs,
        ],
        name="ffmpeg dual push",
    )


def pids_of(*needles: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if all(needle in command for needle in needles):
                pids.append(int(entry.name))
    return pids


def timeline(store: Path) -> dict:
    return json.loads((store / "channels" / "cam1" / "timeline.json").read_text())


def test_killing_encoder_a_loses_no_segment_and_adds_no_discontinuity(tmp_path):
    seed = int(os.environ.get("KUBECAST_KILL_SEED", random.randrange(1 << 30)))
    print(f"kill seed: {seed} (KUBECAST_KILL_SEED={seed} repeats this run)")
    rng = random.Random(seed)
    store = tmp_path / "store"
    rtmp, secondary, http = free_port(), free_port(), free_port()
    up = kubecast(
        "up", "-f", str(HERE / "channels.yaml"), "--store", str(store), "--rtmp-port", str(rtmp),
        "--rtmp-secondary-port", str(secondary), "--http-port", str(http), "--status-interval", "2", cwd=str(tmp_path),
    )
    publisher = None
    try:
        up.wait_for_line(r"Status page:", timeout=90)
        publisher = dual_push(f"rtmp://127.0.0.1:{rtmp}/live/cam1/key-for-cam1", f"rtmp://127.0.0.1:{secondary}/live/cam1/key-for-cam1", seconds=45)
        wait_until(lambda: all(h["state"] == "live" for h in timeline(store)["encoders"].values()) and len(timeline(store)["encoders"]) == 2,
                   timeout=60, interval=0.5, what="both encoders live")
        time.sleep(rng.uniform(4, 12))  # the seeded random moment of the kill
        victims = pids_of(str(store), "encoder", "--channel cam1", "--instance A")
        assert len(victims) == 1, victims
        os.kill(victims[0], signal.SIGKILL)
        killed_at = time.monotonic()
        wait_until(lambda: not publisher.alive(), timeout=90, interval=0.5, what="the publisher to finish")
        # Both encoders flush when the contribution ends; give the packager a moment.
        wait_until(lambda: timeline(store)["state"] == "waiting", timeout=30, interval=0.5, what="the channel to go idle")
        assert time.monotonic() - killed_at > 10, "the kill happened too late to prove anything"

        index = timeline(store)
        tracks = {t["info"]["id"]: t["segments"] for t in index["tracks"]}
        assert sorted(tracks) == sorted(RENDITIONS)
        for track_id, rows in tracks.items():
            numbers = [row[0] for row in rows]
            assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), f"{track_id}: missing numbers"
            for previous, row in zip(rows, rows[1:]):
                assert row[1] == previous[1] + previous[2], f"{track_id}: gap or overlap before segment {row[0]}"
            assert not any(row[5] for row in rows[1:]), f"{track_id}: a discontinuity"
            # A copy from each encoder made it into the timeline: a failover really happened.
            # The last segment may be a flush of either.
            assert {row[4] for row in rows[:-1]} == {"A", "B"}, f"{track_id}: sources {[row[4] for row in rows]}"
        playlist = media_playlist(f"http://127.0.0.1:{http}/live/cam1/v360/index.m3u8")
        assert playlist.discontinuities == 0
        track = download(playlist)
        container = av.open(__import__("io").BytesIO(track.init + b"".join(track.segments)), format="mp4")
        frames = sum(1 for _ in container.decode(video=0))
        container.close()
        assert frames >= 30 * 2 * (len(playlist.segments) - 1)
    finally:
        if publisher:
            publisher.stop()
        up.stop(timeout=30)

"""Channel stop and start on one machine, with ffmpeg publishing over RTMP: stopping cuts the
publisher off and refuses the next one with the reason, stops the channel's running program
(which then plays on demand to its end), leaves no encoder or packager process of the channel
running (no CPU), and the endpoint keeps serving what is stored; starting takes a publisher
again and the timeline carries on at higher segment numbers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import Proc, kubecast_up, rtmp_publisher, wait_until
from media_checks import media_playlist

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent


def channel_processes(work: Path, channel: str) -> list[str]:
    """Command lines of the running encoders and packager of ``channel`` started under ``work``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile
        text = " ".join(part.decode(errors="replace") for part in argv)
        if str(work) in text and (f"encoder-{channel}.json" in text or f"packager-{channel}.json" in text):
            found.append(text)
    return found


def numbers(playlist_url: str) -> list[int]:
    return [int(url.rsplit("/", 1)[1].split(".")[0]) for url, _ in media_playlist(playlist_url).segments]


def test_stop_refuses_publishers_freezes_programs_and_start_carries_on(tmp_path):
    work = tmp_path
    store = work / "store"
    run = kubecast_up(HERE / "lifecycle.yaml", store, work)
    up, base = run.proc, run.base
    url = f"rtmp://127.0.0.1:{run.rtmp}/live/desk/any"
    live = f"{base}/live/desk/video/index.m3u8"
    program = f"{base}/desk-show/video/index.m3u8"
    first = None
    try:
        up.wait_for_line(r"Status page:", timeout=90)
        assert len(channel_processes(work, "desk")) == 2, "encoder A and the packager run"
        first = Proc(rtmp_publisher(url, 60), name="publisher")
        wait_until(lambda: len(media_playlist(program).segments) >= 4, timeout=60, interval=1, what="4 recorded")

        def channel(action: str) -> None:
            done = subprocess.run(
                [sys.executable, "-m", "kubecast.cli", "channel", action, "desk", "--store", str(store)],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert done.returncode == 0, done.stdout + done.stderr

        channel("stop")
        up.wait_for_line(r"channel desk: Stopped", timeout=40)
        assert first.popen.wait(10) != 0, "the live publisher was cut off"
        assert channel_processes(work, "desk") == [], "no encoder or packager of a stopped channel runs"
        up.wait_for_line(r"ending the contribution of .*channel desk is stopped", timeout=5)

        # The program stopped with its channel and plays on demand, from its start to its end.
        recorded = media_playlist(program)
        assert recorded.ended and len(recorded.segments) >= 4
        played = subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-count_frames",
                "-select_streams",
                "v",
                "-show_entries",
                "stream=nb_read_frames",
                "-of",
                "csv=p=0",
                program,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert played.returncode == 0, played.stderr
        seconds = sum(duration for _, duration in recorded.segments)
        assert int(played.stdout.split()[0]) == pytest.approx(seconds * 30, abs=3), "every frame decodes"
        # The endpoint keeps serving the channel's stored segments.
        stored = numbers(live)
        assert stored and media_playlist(live).segments

        refused = subprocess.run(rtmp_publisher(url, 5), capture_output=True, text=True, timeout=60)
        assert refused.returncode != 0 and "channel desk is stopped" in refused.stderr, refused.stderr
        up.wait_for_line(r"refused a publish from .*channel desk is stopped", timeout=5)

        channel("start")
        up.wait_for_line(r"channel desk: Running", timeout=60)
        assert len(channel_processes(work, "desk")) == 2
        with Proc(rtmp_publisher(url, 30), name="publisher again"):
            again = wait_until(
                lambda: [n for n in numbers(live) if n > max(stored)] or None,
                timeout=60,
                interval=1,
                what="new segments after the start",
            )
        assert min(again) > max(stored), "numbering continues upward: no URL is reused"
        assert media_playlist(program).ended, "a stopped program never records again"
    finally:
        if first:
            first.stop()
        up.stop(timeout=30)

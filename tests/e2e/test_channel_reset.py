"""Channel reset on one machine, with ffmpeg publishing over RTMP: after ``kubecast channel reset``
a publisher whose timestamps continue the old contribution (it would have joined the old epoch)
starts a fresh timeline instead: a new epoch under the reset token, a discontinuity, numbering
that continues upward (no URL is reused), and a program recorded before the reset keeps every
segment it had, byte for byte."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import Proc, kubecast_up, rtmp_publisher, wait_until
from media_checks import fetch, media_playlist

from kubecast.encoder.timing import TOLERANCE_MS
from kubecast.storage import Epoch, Store, layout

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent
D_MS = 1000  # lifecycle.yaml: segmentDuration 1


def number(url: str) -> int:
    return int(url.rsplit("/", 1)[1].split(".")[0])


def epochs(store: Path) -> list[Epoch]:
    found = Store(str(store)).list_sync(layout.clock_prefix("desk"))
    keys = sorted(info.key for info in found if "/epoch-" in info.key)
    return [Epoch.model_validate_json(Store(str(store)).get_sync(key) or b"") for key in keys]


def test_reset_starts_a_fresh_timeline_above_the_old_numbers_and_programs_keep_theirs(tmp_path):
    store = tmp_path / "store"
    run = kubecast_up(HERE / "lifecycle.yaml", store, tmp_path)
    up, base = run.proc, run.base
    url = f"rtmp://127.0.0.1:{run.rtmp}/live/desk/any"
    live = f"{base}/live/desk/video/index.m3u8"
    program = f"{base}/desk-show/video/index.m3u8"
    try:
        up.wait_for_line(r"Status page:", timeout=90)
        started = time.monotonic()
        with Proc(rtmp_publisher(url, 8), name="publisher") as first:
            assert first.popen.wait(60) == 0, first.output()
        wait_until(lambda: media_playlist(live).segments or None, timeout=30, interval=0.5, what="segments")
        # The packager lists the last segment a moment after the publisher ends.
        wait_until(
            lambda: len(media_playlist(program).segments) >= 6 or None, timeout=30, interval=0.5, what="recorded"
        )
        time.sleep(2)
        before = media_playlist(program)
        old = {segment: fetch(segment) for segment, _ in before.segments}
        old_numbers = [number(segment) for segment, _ in media_playlist(live).segments]
        [epoch0] = epochs(store)

        done = subprocess.run(
            [sys.executable, "-m", "kubecast.cli", "channel", "reset", "desk", "--store", str(store)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0 and "fresh timeline" in done.stdout, done.stdout + done.stderr
        token = json.loads(Store(str(store)).get_sync(layout.control_key("desk")) or b"{}")["reset"]

        # Timestamps that continue the first contribution's, as a publisher that kept its clock
        # while it reconnected sends them: without the reset they would join the old epoch.
        offset_s = round(time.monotonic() - started, 3)
        second = rtmp_publisher(url, 20)
        at = second.index("flv") - 1  # before the output's "-f flv"
        second[at:at] = ["-output_ts_offset", str(offset_s)]
        with Proc(second, name="publisher after the reset"):
            new = wait_until(
                lambda: (
                    [n for n in (number(s) for s, _ in media_playlist(live).segments) if n > max(old_numbers)][3:]
                    or None
                ),
                timeout=60,
                interval=0.5,
                what="segments of the new contribution",
            )
        latest = epochs(store)
        assert [e.epoch for e in latest] == [0, 1], "one new epoch: a fresh timeline"
        epoch1 = latest[1]
        assert epoch1.reset == token and epoch0.reset is None, "made under the reset token"
        assert epoch1.first_segment > max(old_numbers), "numbering continues upward"
        # The contribution's first timestamp, mapped with the old epoch, lands within the join
        # tolerance of where the new epoch put it: only the reset kept it off the old timeline.
        mapped = int(offset_s * 1000) + epoch0.offset_ms
        assert abs(mapped - epoch1.first_segment * D_MS) < TOLERANCE_MS - 2000, (mapped, epoch1)
        assert epoch1.offset_ms != epoch0.offset_ms, "a new mapping of the contribution's clock"
        assert min(new) > max(old_numbers), "no URL is reused"
        assert media_playlist(live).discontinuities >= 1

        after = media_playlist(program)
        kept = [segment for segment, _ in after.segments if segment in old]
        assert kept == [segment for segment, _ in before.segments], "the program keeps every segment it had"
        assert all(fetch(segment) == data for segment, data in old.items()), "byte for byte"
        assert after.discontinuities >= 1 and len(after.segments) > len(before.segments)
        print(f"reset: epoch 0 ended at {max(old_numbers)}, epoch 1 starts at {epoch1.first_segment}")
    finally:
        up.stop(timeout=30)

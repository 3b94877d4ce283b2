"""A hung encode thread, inside an encoder that otherwise keeps answering, under ``kubecast up``.

The drill hook (``KUBECAST_DRILL_HANG_FILE``, kubecast/liveness.py) hangs encoder A's ``v360``
encode thread for good at a seeded random moment of a dual-push stream that hls.js plays in
headless Chromium: the process keeps its ports and its metrics, its other threads run on, and
only its heartbeat tells.  The supervisor must read the 503 of its /livez, kill it and restart it
within the bound (15 s of liveness limit, a 2 s poll, slack for two busy cores), encoder A must
publish again, and meanwhile encoder B must carry the channel: no stall longer than a segment,
no player error, every segment number, no discontinuity.
"""

from __future__ import annotations

import re
import time

import pytest
from drill import Player, seeded
from helpers import free_port, kubecast, wait_until
from test_failover import KEY, MANIFEST, SEGMENT_SECONDS, check_dash, check_hls, check_timeline, publish

from kubecast.liveness import DRILL_HANG_ENV, STALE_AFTER

pytestmark = [pytest.mark.e2e, pytest.mark.failover]

PUBLISH_SECONDS = 56
KILLED_WITHIN = STALE_AFTER + 2 + 3  # the limit, a poll, slack for two busy cores
REJOINED_WITHIN = KILLED_WITHIN + 12  # backoff, start-up, and A's first whole segment


def test_a_hung_encode_thread_is_restarted_while_the_channel_plays_on(tmp_path):
    _, rng = seeded("hung-encode-thread")
    manifest = tmp_path / "channel.yaml"
    manifest.write_text(MANIFEST.format(mode="DualPush", segment=SEGMENT_SECONDS, key=KEY))
    drill = tmp_path / "hang"
    store = tmp_path / "store"
    rtmp, rtmp_secondary, http = free_port(), free_port(), free_port()
    up = kubecast(
        "up",
        "-f",
        str(manifest),
        "--store",
        str(store),
        "--rtmp-port",
        str(rtmp),
        "--rtmp-secondary-port",
        str(rtmp_secondary),
        "--http-port",
        str(http),
        "--status-interval",
        "2",
        env={DRILL_HANG_ENV: str(drill)},
        cwd=str(tmp_path),
    )
    base = f"http://127.0.0.1:{http}"
    publisher = player = None

    def timeline() -> dict:
        import json

        return json.loads((store / "channels" / "cam1" / "timeline.json").read_text())

    def last_from(instance: str) -> int:
        return timeline()["encoders"].get(instance, {}).get("lastSegment") or -1

    try:
        up.wait_for_line("Status page:", timeout=90)
        started = time.monotonic()
        publisher = publish(
            [f"rtmp://127.0.0.1:{port}/live/cam1/{KEY}" for port in (rtmp, rtmp_secondary)], seconds=PUBLISH_SECONDS
        )
        wait_until(
            lambda: min((len(t["segments"]) for t in timeline()["tracks"]), default=0) >= 3 and last_from("A") >= 0,
            timeout=40,
            interval=0.2,
            what="three segments of every rendition, some from A",
        )
        player = Player(f"{base}/preview/cam1/")
        player.wait_playing()
        time.sleep(max(0.0, started + rng.uniform(12, 16) - time.monotonic()))
        drill.write_text("encoder cam1/A: encode v360\n")
        hung_at = time.monotonic()
        time.sleep(2)
        drill.unlink()  # only the running encoder A hangs, not the one the supervisor starts next
        up.wait_for_line(
            r"encoder cam1/A is hung \(/livez answered 503: hung: .*encode v360: no beat for", timeout=KILLED_WITHIN
        )
        killed_after = time.monotonic() - hung_at
        assert killed_after < KILLED_WITHIN, f"killed {killed_after:.1f} s after the hang"
        assert not re.search(r"encoder cam1/B is hung", up.output(last=100000)), "B was left alone"
        before = last_from("A")
        wait_until(
            lambda: last_from("A") > before,
            timeout=REJOINED_WITHIN - (time.monotonic() - hung_at),
            interval=0.2,
            what="encoder A publishing again",
        )
        rejoined_after = time.monotonic() - hung_at
        assert time.monotonic() - started < PUBLISH_SECONDS - 8, "restarted too late to prove anything"
        time.sleep(max(0.0, started + PUBLISH_SECONDS - 4 - time.monotonic()))
        stall, errors, position = player.longest_stall(), player.errors(), player.position()
        print(
            f"hung encode thread: killed {killed_after:.1f} s and publishing again {rejoined_after:.1f} s after the "
            f"hang; longest player stall {stall:.2f} s, position {position:.1f} s, player errors {errors}",
            flush=True,
        )
        player.close()
        player = None
        wait_until(lambda: not publisher.alive(), timeout=30, interval=0.5, what="the publisher to finish")
        wait_until(lambda: timeline()["state"] == "waiting", timeout=30, interval=0.5, what="the channel to go idle")
        check_timeline(timeline(), 0)
        check_hls(base, 0)
        check_dash(base)
        assert errors == [], f"the player reported errors: {errors}"
        assert stall <= SEGMENT_SECONDS, f"the player stalled for {stall:.2f} s"
        assert position > PUBLISH_SECONDS - 30, f"the player got stuck at {position:.1f} s"
    finally:
        if player:
            player.close()
        if publisher:
            publisher.stop()
        up.stop(timeout=30)

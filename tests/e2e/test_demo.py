"""`kubecast demo`: the README's first command gives a live, playable stream within a minute."""

from __future__ import annotations

import time

import pytest
from helpers import kubecast, wait_until
from media_checks import fetch, media_playlist, multivariant

pytestmark = pytest.mark.e2e


def test_demo_goes_live_within_a_minute(tmp_path):
    started = time.monotonic()
    demo = kubecast(
        "demo",
        "--rtmp-port",
        "0",
        "--rtmp-secondary-port",
        "0",
        "--http-port",
        "0",
        "--size",
        "640x360",
        "--status-interval",
        "1",
        cwd=str(tmp_path),
    )
    try:
        player = demo.wait_for_line(r"Player \(preview\): (http://\S+)", timeout=60).group(1)
        base = player.split("/preview/")[0]
        page = fetch(player).decode()
        assert "hls" in page.lower()
        wait_until(
            lambda: len(media_playlist(f"{base}/live/demo/video_240p/index.m3u8").segments) >= 2,
            timeout=60,
            interval=0.5,
            what="demo segments",
        )
        assert time.monotonic() - started < 90  # a minute on a laptop; CI shares 2 cores with other tests
        variants, media = multivariant(f"{base}/live/demo/index.m3u8")
        assert {v.attributes["RESOLUTION"] for v in variants} == {"1280x720", "854x480", "426x240"}
        assert media, "the demo has sound"
        demo.wait_for_line(r"\[demo\] live at \d+ kbit/s", timeout=30)
        thumbnail = wait_until(lambda: fetch(f"{base}/preview/demo/thumbnail.jpg"), timeout=30, what="a thumbnail")
        assert thumbnail[:2] == b"\xff\xd8"
        assert "streamKey" not in demo.output(last=100000)
    finally:
        code = demo.stop(timeout=40)
    assert code == 0, demo.output()
    assert not list((tmp_path / ".kubecast").glob("demo-*")), "the demo cleans up its run folder"

"""Slate on input loss, end to end on one machine: ffmpeg publishes over RTMP, stops (the
contribution is lost for longer than ``spec.slate.after``), and publishes again; hls.js in
Chromium plays the channel throughout without a stall longer than a segment, the slate segments
decode (PyAV) to the card and to silence, and the picture returns after the slate."""

from __future__ import annotations

import io
import re
import struct
from pathlib import Path

import av
import pytest
from drill import Player
from helpers import COPIED_AAC, Proc, kubecast_up, rtmp_publisher, wait_until
from media_checks import media_playlist

from kubecast.encoder.card import card_frame, luma_rows

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent
SEGMENT_SECONDS = 1.0


def newest(playlist_url: str) -> int:
    return max(int(url.rsplit("/", 1)[1].split(".")[0]) for url, _ in media_playlist(playlist_url).segments)


def luma_difference(frame: av.VideoFrame, card: av.VideoFrame) -> float:
    pairs = zip(b"".join(luma_rows(frame)), b"".join(luma_rows(card)))
    return sum(abs(a - b) for a, b in pairs) / (frame.width * frame.height)


def decoded(folder: Path, number: int) -> av.container.InputContainer:
    init = next(folder.glob("init-*.mp4")).read_bytes()
    return av.open(io.BytesIO(init + (folder / f"{number}.m4s").read_bytes()), format="mp4")


def loudest(frame: av.AudioFrame) -> float:
    return max(abs(x) for x in struct.unpack(f"{frame.samples}f", bytes(frame.planes[0])[: 4 * frame.samples]))


def test_the_player_plays_through_the_slate_and_back_to_the_picture(tmp_path):
    store = tmp_path / "store"
    run = kubecast_up(HERE / "slate.yaml", store, tmp_path)
    up, base = run.proc, run.base
    url = f"rtmp://127.0.0.1:{run.rtmp}/live/studio/any"
    live = f"{base}/live/studio/v240/index.m3u8"
    player = first = second = None
    try:
        up.wait_for_line(r"Status page:", timeout=90)
        first = Proc(rtmp_publisher(url, 9, COPIED_AAC), name="publisher")
        wait_until(lambda: len(media_playlist(live).segments) >= 3, timeout=60, interval=0.5, what="3 segments")
        player = Player(f"{base}/preview/studio/")
        player.wait_playing()
        assert first.popen.wait(30) == 0
        print(f"stall before the loss {player.longest_stall():.2f} at {player.position():.1f}", flush=True)
        started = up.wait_for_line(r"slate from segment (\d+)", timeout=30)
        slate_first = int(started.group(1))
        # Six seconds of slate, then the contribution returns.
        wait_until(
            lambda: (
                max(int(u.rsplit("/", 1)[1].split(".")[0]) for u, _ in media_playlist(live).segments) >= slate_first + 5
            ),
            timeout=30,
            interval=0.5,
            what="six slate segments listed",
        )
        print(f"stall in the slate {player.longest_stall():.2f} at {player.position():.1f}", flush=True)
        second = Proc(rtmp_publisher(url, 8, COPIED_AAC), name="publisher")
        ended = int(up.wait_for_line(r"slate ended before segment (\d+)", timeout=30).group(1))
        wait_until(lambda: newest(live) >= ended + 3, timeout=30, interval=0.5, what="the picture listed")
        around = media_playlist(live).text  # the playlist across the return, for a failure's message
        wait_until(lambda: player.position() > ended * SEGMENT_SECONDS + 3, timeout=40, what="played past the slate")
        stall, errors = player.longest_stall(), player.errors()
        print(f"stall after {stall:.2f} at {player.position():.1f}; slate {slate_first}..{ended}", flush=True)
        assert stall <= SEGMENT_SECONDS, (f"the player stalled {stall:.2f} s across the slate", errors, around)
        assert not errors, errors

        folder = store / "channels/studio/encoders/A/v240"
        assert len(list(folder.glob("init-*.mp4"))) == 1, "the slate shares the contribution's init segment"
        card = card_frame(320, 240, "studio")
        before = next(decoded(folder, slate_first - 1).decode(video=0))
        assert luma_difference(before, card) > 20, "the contribution's picture is not the card"
        pictures = list(decoded(folder, slate_first + 1).decode(video=0))
        assert len(pictures) == 30 and all(luma_difference(p, card) < 6 for p in pictures), "the slate is the card"
        audio = store / "channels/studio/encoders/A/audio"
        assert len(list(audio.glob("init-*.mp4"))) == 1, "copied sound, silence, copied sound: one init segment"
        sound = list(decoded(audio, slate_first + 1).decode(audio=0))
        assert sound and all(loudest(f) < 1e-3 for f in sound), "the slate's audio is silence"
        back = next(decoded(folder, ended + 1).decode(video=0))
        assert luma_difference(back, card) > 20, "the picture is back"
        assert max(loudest(f) for f in decoded(audio, ended + 1).decode(audio=0)) > 0.05, "the tone is back"
        log = up.output(last=2000)
        assert not re.search(r"Traceback", log), log
        assert log.count("the contribution's AAC is copied") == 2, "both publishes' sound copied, not re-encoded"
    finally:
        if player is not None:
            player.close()
        for process in (second, first):
            if process is not None:
                process.stop()
        up.stop()

"""Slate on input loss: the pure rules, and a pair of real encoder processes (A and B on one store)
fed the same contribution, cut off, and fed again."""

from __future__ import annotations

import io
import json
import re
import struct
from fractions import Fraction
from pathlib import Path

import av
import pytest
from helpers import flv_contribution, make_contribution_flv, wait_until
from test_encoder_process import send, start_encoder

from kubecast.api import load_text
from kubecast.api.components import encoder_config
from kubecast.encoder.card import card_frame, luma_rows
from kubecast.encoder.slate import (
    SlateStart,
    first_frame_at,
    rate_of,
    silent_tracks,
    slate_end,
    slate_start,
    slate_wanted,
)
from kubecast.media.mp4 import parse_media_segment
from kubecast.media.tracks import TrackInfo

D = 1000


def test_a_slate_follows_the_newest_segment_of_the_channel():
    assert slate_start(last_number=9, now_media_ms=11_500, segment_duration_ms=D) == SlateStart(10, False)
    # The contribution ran ahead of the clock (a file sent faster than real time): still right after it.
    assert slate_start(last_number=20, now_media_ms=11_500, segment_duration_ms=D) == SlateStart(21, False)
    # Asked long after the loss: at the segment under way, after a gap.
    assert slate_start(last_number=3, now_media_ms=11_500, segment_duration_ms=D) == SlateStart(11, True)
    assert slate_start(last_number=None, now_media_ms=11_500, segment_duration_ms=D) == SlateStart(11, False)


def test_a_slate_ends_at_the_segment_under_way():
    assert slate_end(first=10, now_media_ms=14_200, segment_duration_ms=D) == 14
    assert slate_end(first=10, now_media_ms=9_000, segment_duration_ms=D) == 10  # nothing made yet: nothing kept


@pytest.mark.parametrize(
    ("after_ms", "lost_ms", "on_air", "other_connected", "wanted"),
    [
        (2000, 2500, True, False, True),
        (2000, 10**9, True, False, True),  # without an idle timeout, as long as the loss lasts
        (2000, 1500, True, False, False),  # not lost for long enough
        (None, 60_000, True, False, False),  # no slate configured
        (2000, 2500, False, False, False),  # nothing on air to carry on
        (2000, 2500, True, True, False),  # the other encoder has the contribution: failover, not a slate
        (0, 0, True, False, True),
    ],
)
def test_when_the_slate_runs(after_ms, lost_ms, on_air, other_connected, wanted):
    assert slate_wanted(after_ms=after_ms, lost_ms=lost_ms, on_air=on_air, other_connected=other_connected) is wanted


def test_the_slate_ends_after_the_idle_timeout():
    def wanted(lost_ms: float) -> bool:
        return slate_wanted(after_ms=2000, lost_ms=lost_ms, on_air=True, other_connected=False, limit_ms=60_000)

    assert wanted(2000) and wanted(61_999) and not wanted(62_000)


def test_the_slate_takes_the_frame_rate_of_the_tracks():
    def video(rate: str | None) -> TrackInfo:
        return TrackInfo(id="v", kind="video", codecs="avc1", bandwidth=1, timescale=90000, init="i", frame_rate=rate)

    assert rate_of([video("30")]) == 30
    assert rate_of([video("29.970")]) == Fraction(30000, 1001)
    assert rate_of([video(None)]) is None
    assert rate_of([]) is None


def test_the_slate_fills_every_language_with_silence_in_its_language():
    def audio(track_id: str, language: str | None) -> TrackInfo:
        return TrackInfo(
            id=track_id, kind="audio", codecs="mp4a", bandwidth=1, timescale=48000, init="i", language=language
        )

    assert silent_tracks([]) == {"audio": None}, "an encoder that never had a contribution: the one audio track"
    tracks = [audio("audio", "eng"), audio("audio-1", "spa")]
    assert silent_tracks(tracks) == {"audio": "eng", "audio-1": "spa"}


def test_silence_starts_on_the_contributions_audio_grid():
    assert first_frame_at(96_000, 0) == 96_256  # 94 frames of 1024 from 0
    assert first_frame_at(96_000, 48_000) == 96_128
    assert first_frame_at(2048, 1024) == 2048


CHANNEL = """
apiVersion: kubecast.io/v1alpha1
kind: Channel
metadata: {name: t1}
spec:
  segmentDuration: 1
  slate: {after: PT1S}
  encoding:
    preset: Custom
    x264Preset: ultrafast
    renditions:
    - {name: v240, width: 320, height: 240, bitrate: 500000}
    - {name: v120, width: 160, height: 120, bitrate: 200000, profile: Baseline}
"""


def progress(tmp_path: Path, instance: str) -> dict:
    return json.loads((tmp_path / f"store/channels/t1/encoders/{instance}/progress.json").read_text())


def folder(tmp_path: Path, instance: str, track: str) -> Path:
    return tmp_path / f"store/channels/t1/encoders/{instance}/{track}"


def segment(tmp_path: Path, instance: str, track: str, number: int) -> bytes:
    return (folder(tmp_path, instance, track) / f"{number}.m4s").read_bytes()


def only_init(tmp_path: Path, instance: str, track: str) -> bytes:
    inits = list(folder(tmp_path, instance, track).glob("init-*.mp4"))
    assert len(inits) == 1, f"{instance}/{track}: the slate must share the contribution's init segment: {inits}"
    return inits[0].read_bytes()


def mean_luma_difference(frame: av.VideoFrame, card: av.VideoFrame) -> float:
    pairs = zip(b"".join(luma_rows(frame)), b"".join(luma_rows(card)))
    return sum(abs(a - b) for a, b in pairs) / (frame.width * frame.height)


def test_a_pair_of_encoders_shows_the_same_slate_and_returns_to_the_picture(tmp_path):
    source = flv_contribution(make_contribution_flv(tmp_path / "in.flv", seconds=5))
    (tmp_path / "encoder.json").write_text(encoder_config(load_text(CHANNEL).channels["t1"]).to_json())
    a, port_a = start_encoder(tmp_path, "A")
    b, port_b = start_encoder(tmp_path, "B")
    with a, b:
        send(port_a, source)
        send(port_b, source)

        def numbers(instance: str, track: str) -> list[int]:
            return [s[0] for s in progress(tmp_path, instance)["segments"].get(track, [])]

        wait_until(
            lambda: all(progress(tmp_path, i)["message"].startswith("slate") for i in "AB"),
            timeout=60,
            what="both encoders on the slate",
        )
        contribution_last = max(numbers("A", "v240"))
        wait_until(
            lambda: all(max(numbers(i, t)) >= contribution_last + 3 for i in "AB" for t in ("v240", "v120", "audio")),
            timeout=30,
            what="three slate segments from both",
        )
        send(port_a, source)
        send(port_b, source)
        wait_until(
            lambda: all(not progress(tmp_path, i)["message"] for i in "AB"), timeout=30, what="slate ended on both"
        )
        wait_until(
            lambda: all(progress(tmp_path, i)["state"] == "waiting" for i in "AB"),
            timeout=60,
            what="second contribution encoded",
        )
    records = {i: {t: progress(tmp_path, i)["segments"][t] for t in ("v240", "v120", "audio")} for i in "AB"}
    log_a = a.output(last=400)
    first_slate = contribution_last + 1
    assert f"slate from segment {first_slate} " in log_a
    for track in ("v240", "v120", "audio"):
        rows = {i: {r[0]: r for r in records[i][track]} for i in "AB"}
        # The same slate segments on both: same numbers, same times and durations.
        slate_a = {n: r[1:3] for n, r in rows["A"].items() if n >= first_slate}
        slate_b = {n: r[1:3] for n, r in rows["B"].items() if n >= first_slate}
        common = sorted(set(slate_a) & set(slate_b))
        assert len(common) >= 3 and all(slate_a[n] == slate_b[n] for n in common), track
        # No gap and no discontinuity from the contribution into the slate (where the contribution
        # returns, a new epoch starts: the audio's frame grid may move there).
        ordered = [rows["A"][n] for n in sorted(rows["A"])]
        joins = [(r, nxt) for r, nxt in zip(ordered, ordered[1:])]
        gaps = [nxt[0] for r, nxt in joins if r[1] + r[2] != nxt[1] or nxt[4]]
        assert len(gaps) <= 1 and all(n > first_slate + 2 for n in gaps), (track, gaps)
        init = only_init(tmp_path, "A", track)
        assert init == only_init(tmp_path, "B", track)
        # A's contribution segment, B's slate segment, A's next slate segment: one decodable stream.
        mixed = [
            segment(tmp_path, "A", track, first_slate - 1),
            segment(tmp_path, "B", track, first_slate),
            segment(tmp_path, "A", track, first_slate + 1),
        ]
        times = [parse_media_segment(s)[0] for s in mixed]
        assert times == [rows["A"][first_slate - 1][1], slate_a[first_slate][0], slate_a[first_slate + 1][0]]
        container = av.open(io.BytesIO(init + b"".join(mixed)), format="mp4")
        if track == "audio":
            frames = list(container.decode(audio=0))
            slate_start_seconds = slate_a[first_slate][0] / 48000
            silent = [f for f in frames if f.time is not None and f.time >= slate_start_seconds + 0.05]
            assert silent and all(
                max(abs(x) for x in struct.unpack(f"{f.samples}f", bytes(f.planes[0])[: 4 * f.samples])) < 1e-3
                for f in silent
            ), "the slate's audio is silence"
            assert sum(f.samples for f in frames) >= 48000 * 2.9
        else:
            frames = list(container.decode(video=0))
            assert len(frames) == 90, "three whole segments at 30 fps"
            width, height = frames[0].width, frames[0].height
            card = card_frame(320, 240, "t1").reformat(width=width, height=height, format="yuv420p")
            assert mean_luma_difference(frames[0], card) > 20, "the contribution's picture is not the card"
            assert all(mean_luma_difference(f, card) < 6 for f in frames[30:]), "the slate is the card"
            # The contribution's picture again after the slate.
            ended = re.search(r"slate ended before segment (\d+)", log_a)
            assert ended, log_a
            # (a connection that joined the other's new epoch starts at its first whole segment)
            resumed = min(n for n in rows["A"] if n >= int(ended.group(1)))
            back = av.open(io.BytesIO(init + segment(tmp_path, "A", track, resumed)), format="mp4")
            assert mean_luma_difference(next(back.decode(video=0)), card) > 20

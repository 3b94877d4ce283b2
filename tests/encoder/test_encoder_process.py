"""The encoder process fed a real contribution (Debian ffmpeg's FLV) through its port."""

from __future__ import annotations

import io
import json
import socket

import av
import pytest

from helpers import kubecast, make_contribution_flv, wait_until
from kubecast.media.contribution import Hello
from kubecast.media.mp4 import parse_media_segment

CHANNEL = """
apiVersion: kubecast.io/v1alpha1
kind: Channel
metadata: {name: t1}
spec:
  encoding:
    preset: %s
    x264Preset: ultrafast
    renditions: %s
"""
LADDER = "[{name: v240, width: 320, height: 240, bitrate: 500000}, {name: v120, width: 160, height: 120, bitrate: 200000, profile: Baseline}]"


@pytest.fixture(scope="module")
def source_flv(tmp_path_factory):
    return make_contribution_flv(tmp_path_factory.mktemp("src") / "in.flv", seconds=7)


def run_encoder(tmp_path, manifest: str):
    (tmp_path / "ch.yaml").write_text(manifest)
    process = kubecast("encoder", "--manifests", str(tmp_path / "ch.yaml"), "--channel", "t1", "--contribution", "127.0.0.1:0", "--store", str(tmp_path / "store"))
    port = int(process.wait_for_line(r"listening on 127\.0\.0\.1:(\d+)", timeout=30).group(1))
    return process, port


def send(port: int, payload: bytes, channel: str = "t1") -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(Hello(channel=channel, protocol="RTMP", session="test").encode() + payload)


def progress(tmp_path):
    return json.loads((tmp_path / "store/channels/t1/encoders/A/progress.json").read_text())


def progress_when(tmp_path, condition):
    """The progress record once ``condition(record)`` holds, else None (for wait_until)."""
    record = progress(tmp_path)
    return record if condition(record) else None


def track_bytes(tmp_path, record, track):
    folder = tmp_path / "store/channels/t1/encoders/A" / track["id"]
    return (folder / track["init"]).read_bytes(), [(folder / f"{s[0]}.m4s").read_bytes() for s in record["segments"][track["id"]]]


def test_ladder_segments_are_aligned_continuous_and_decodable(tmp_path, source_flv):
    process, port = run_encoder(tmp_path, CHANNEL % ("Custom", LADDER))
    with process:
        send(port, source_flv)
        record = wait_until(lambda: progress_when(tmp_path, lambda p: p["state"] == "waiting" and len(p["segments"].get("v120", [])) == 4), timeout=60, what="all segments")
    assert {t["id"] for t in record["tracks"]} == {"v240", "v120", "audio"}
    for track in record["tracks"]:
        init, segments = track_bytes(tmp_path, record, track)
        times = [parse_media_segment(s)[0] for s in segments]
        durations = [sum(x.duration for x in parse_media_segment(s)[1]) for s in segments]
        assert all(t + d == nxt for t, d, nxt in zip(times, durations, times[1:])), "continuous tfdt"
        container = av.open(io.BytesIO(init + b"".join(segments)), format="mp4")
        if track["kind"] == "video":
            assert times == [n * 180000 for n in range(4)]
            frames = [(f.pts, f.key_frame) for f in container.decode(video=0)]
            assert len(frames) == 210
            assert [pts for pts, key in frames if key] == times
            assert track["codecs"].startswith("avc1.") and track["frameRate"] == "30"
        else:
            assert sum(f.samples for f in container.decode(audio=0)) > 48000 * 6.5
    assert (tmp_path / "store/channels/t1/encoders/A/thumbnail.jpg").read_bytes()[:2] == b"\xff\xd8"


def test_passthrough_and_reconnect_continue_the_numbering(tmp_path, source_flv):
    process, port = run_encoder(tmp_path, CHANNEL % ("None", "[]"))
    with process:
        send(port, source_flv)
        first = wait_until(lambda: progress_when(tmp_path, lambda p: p["state"] == "waiting" and p["segments"].get("video")), timeout=30, what="first contribution")
        last = first["segments"]["video"][-1][0]
        send(port, source_flv)
        record = wait_until(lambda: progress_when(tmp_path, lambda p: p["state"] == "waiting" and p["segments"]["video"][-1][0] > last + 2), timeout=30, what="second contribution")
    numbers = [s[0] for s in record["segments"]["video"]]
    assert numbers == sorted(set(numbers))
    resumed = [s for s in record["segments"]["video"] if s[0] > last]
    assert resumed[0][4] is True and not any(s[4] for s in resumed[1:]), "one discontinuity, at the reconnect"
    video = next(t for t in record["tracks"] if t["id"] == "video")
    assert (video["width"], video["height"]) == (320, 240)
    init, segments = track_bytes(tmp_path, record, video)
    frames = list(av.open(io.BytesIO(init + b"".join(segments[: len(first["segments"]["video"])])), format="mp4").decode(video=0))
    assert len(frames) == 210, "pass-through keeps every frame of the contribution"


def test_bad_contributions_are_refused_and_the_encoder_carries_on(tmp_path, source_flv):
    process, port = run_encoder(tmp_path, CHANNEL % ("Custom", LADDER))
    with process:
        send(port, b"this is not FLV at all")
        wait_until(lambda: progress(tmp_path)["state"] == "error", timeout=20, what="error state")
        assert "FLV" in progress(tmp_path)["message"]
        send(port, source_flv[:13] + bytes([9, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0x1C, 1, 0, 0, 0, 0, 0, 0, 16]))  # codec id 12 (HEVC)
        wait_until(lambda: "not H.264" in progress(tmp_path)["message"], timeout=20, what="codec refusal")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
        send(port, source_flv)
        wait_until(lambda: len(progress(tmp_path)["segments"].get("v120", [])) >= 3, timeout=60, what="a good contribution after the bad ones")
        assert process.alive()
    assert "Traceback" not in process.output(last=10000)

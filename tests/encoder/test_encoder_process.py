"""The encoder process fed a real contribution through its port: Debian ffmpeg's FLV turned into the
internal frame records, as the RTMP ingest hands a publish over."""

from __future__ import annotations

import dataclasses
import io
import json
import random
import socket

import av
import pytest
from helpers import contribution_bytes, flv_contribution, kubecast, make_contribution_flv, wait_until

from kubecast.api import PRESETS, load_text
from kubecast.api.components import encoder_config
from kubecast.media.contribution import Frame, Hello, Kind, RecordReader
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
LADDER = (
    "[{name: v240, width: 320, height: 240, bitrate: 500000},"
    " {name: v120, width: 160, height: 120, bitrate: 200000, profile: Baseline}]"
)


@pytest.fixture(scope="module")
def source_flv(tmp_path_factory):
    return flv_contribution(make_contribution_flv(tmp_path_factory.mktemp("src") / "in.flv", seconds=7))


def run_encoder(tmp_path, manifest: str):
    """The encoder of the Channel in ``manifest``, with the encoder.json the operator and local mode build for it."""
    (tmp_path / "encoder.json").write_text(encoder_config(load_text(manifest).channels["t1"]).to_json())
    return start_encoder(tmp_path)


def start_encoder(tmp_path, instance: str | None = None):
    """``kubecast encoder`` with ``tmp_path``'s encoder.json and store (as encoder ``instance`` of a
    redundant pair, if given), and the port it took for contributions."""
    process = kubecast(
        "encoder",
        "--config",
        str(tmp_path / "encoder.json"),
        *(["--instance", instance] if instance else []),
        "--contribution",
        "127.0.0.1:0",
        "--store",
        str(tmp_path / "store"),
    )
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
    return (folder / track["init"]).read_bytes(), [
        (folder / f"{s[0]}.m4s").read_bytes() for s in record["segments"][track["id"]]
    ]


def test_ladder_segments_are_aligned_continuous_and_decodable(tmp_path, source_flv):
    process, port = run_encoder(tmp_path, CHANNEL % ("Custom", LADDER))
    with process:
        send(port, source_flv)
        record = wait_until(
            lambda: progress_when(
                tmp_path, lambda p: p["state"] == "waiting" and len(p["segments"].get("v120", [])) == 4
            ),
            timeout=60,
            what="all segments",
        )
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
            # Constant frame rate on the grid: every picture lasts one 30 fps slot.  The
            # contribution's first picture presents 67 ms (two B-frame delays) after its first
            # decode time, where the epoch starts: the two slots before it repeat it.
            assert [pts for pts, _ in frames] == [n * 3000 for n in range(210 + 2)]
            assert {x.duration for s in segments for x in parse_media_segment(s)[1]} == {3000}
            assert [pts for pts, key in frames if key] == times
            assert track["codecs"].startswith("avc1.") and track["frameRate"] == "30"
        else:
            assert sum(f.samples for f in container.decode(audio=0)) > 48000 * 6.5
    assert (tmp_path / "store/channels/t1/encoders/A/thumbnail.jpg").read_bytes()[:2] == b"\xff\xd8"


def jittered(contribution: bytes, *, milliseconds: int, seed: int) -> bytes:
    """The same contribution with every video timestamp moved by up to ``milliseconds`` either way,
    as an encoder with a jittering clock sends it."""
    reader = RecordReader()
    reader.feed(contribution)
    shake = random.Random(seed)
    records = []
    for record in reader.records():
        if isinstance(record, Frame) and record.kind == Kind.VIDEO and record.decode_time > milliseconds:
            record = dataclasses.replace(
                record, decode_time=record.decode_time + shake.randint(-milliseconds, milliseconds)
            )
        records.append(record)
    return contribution_bytes(records, end=False)


def test_a_jittered_contribution_is_encoded_at_a_constant_frame_rate(tmp_path, source_flv):
    process, port = run_encoder(tmp_path, CHANNEL % ("Custom", LADDER))
    with process:
        send(port, jittered(source_flv, milliseconds=5, seed=5))
        record = wait_until(
            lambda: progress_when(
                tmp_path, lambda p: p["state"] == "waiting" and len(p["segments"].get("v120", [])) == 4
            ),
            timeout=60,
            what="all segments",
        )
    for track in (t for t in record["tracks"] if t["kind"] == "video"):
        init, segments = track_bytes(tmp_path, record, track)
        samples = [x for s in segments for x in parse_media_segment(s)[1]]
        assert {x.duration for x in samples} == {3000}, "every picture lasts one 30 fps slot"
        assert [parse_media_segment(s)[0] for s in segments] == [n * 180000 for n in range(4)]
        frames = [f.pts for f in av.open(io.BytesIO(init + b"".join(segments)), format="mp4").decode(video=0)]
        assert frames == [n * 3000 for n in range(len(frames))]
        assert abs(len(frames) - 212) <= 1, "each picture in its own slot: none lost to the jitter"


def test_passthrough_and_reconnect_continue_the_numbering(tmp_path, source_flv):
    process, port = run_encoder(tmp_path, CHANNEL % ("None", "[]"))
    with process:
        send(port, source_flv)
        first = wait_until(
            lambda: progress_when(tmp_path, lambda p: p["state"] == "waiting" and p["segments"].get("video")),
            timeout=30,
            what="first contribution",
        )
        last = first["segments"]["video"][-1][0]
        send(port, source_flv)
        record = wait_until(
            lambda: progress_when(
                tmp_path, lambda p: p["state"] == "waiting" and p["segments"]["video"][-1][0] > last + 2
            ),
            timeout=30,
            what="second contribution",
        )
    numbers = [s[0] for s in record["segments"]["video"]]
    assert numbers == sorted(set(numbers))
    resumed = [s for s in record["segments"]["video"] if s[0] > last]
    assert resumed[0][4] is True and not any(s[4] for s in resumed[1:]), "one discontinuity, at the reconnect"
    video = next(t for t in record["tracks"] if t["id"] == "video")
    assert (video["width"], video["height"]) == (320, 240)
    init, segments = track_bytes(tmp_path, record, video)
    frames = list(
        av.open(io.BytesIO(init + b"".join(segments[: len(first["segments"]["video"])])), format="mp4").decode(video=0)
    )
    assert len(frames) == 210, "pass-through keeps every frame of the contribution"


def test_bad_contributions_are_refused_and_the_encoder_carries_on(tmp_path, source_flv):
    process, port = run_encoder(tmp_path, CHANNEL % ("Custom", LADDER))
    with process:
        send(port, b"this is not a contribution at all")
        wait_until(lambda: progress(tmp_path)["state"] == "error", timeout=20, what="error state")
        assert "unknown record type" in progress(tmp_path)["message"]
        send(port, bytes([2, 7]) + bytes(40))  # a frame of a track kind that does not exist
        wait_until(lambda: "unknown track kind 7" in progress(tmp_path)["message"], timeout=20, what="malformed record")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
        send(port, source_flv)
        wait_until(
            lambda: len(progress(tmp_path)["segments"].get("v120", [])) >= 3,
            timeout=60,
            what="a good contribution after the bad ones",
        )
        assert process.alive()
    assert "Traceback" not in process.output(last=10000)


@pytest.mark.e2e
@pytest.mark.parametrize("preset", ["Default720p", "Default1080p"])
def test_the_default_ladders_are_encoded_end_to_end(tmp_path_factory, preset):
    tmp_path = tmp_path_factory.mktemp(preset)
    source = flv_contribution(make_contribution_flv(tmp_path / "in.flv", seconds=3))
    manifest = CHANNEL.replace("    x264Preset: ultrafast\n", "").replace("    renditions: %s\n", "") % preset
    process, port = run_encoder(tmp_path, manifest)
    ladder = PRESETS[preset]
    with process:
        send(port, source)
        record = wait_until(
            lambda: progress_when(
                tmp_path,
                lambda p: p["state"] == "waiting" and all(len(p["segments"].get(r.name, [])) == 2 for r in ladder),
            ),
            timeout=120,
            what=f"every rendition of {preset}",
        )
    videos = [t for t in record["tracks"] if t["kind"] == "video"]
    assert sorted((t["id"], t["width"], t["height"]) for t in videos) == sorted(
        (r.name, r.width, r.height) for r in ladder
    )
    for track in videos:
        init, segments = track_bytes(tmp_path, record, track)
        assert [parse_media_segment(s)[0] for s in segments] == [0, 180000]
        assert {x.duration for s in segments for x in parse_media_segment(s)[1]} == {3000}
        stream = av.open(io.BytesIO(init + b"".join(segments)), format="mp4").streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (track["width"], track["height"])

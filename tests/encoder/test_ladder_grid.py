"""The ladder in-process: a contribution with holes and surplus pictures still comes out at a
constant frame rate, and the repeats and drops are counted in the metrics."""

from __future__ import annotations

import subprocess

from helpers import flv_records
from prometheus_client import REGISTRY

from kubecast.api import Rendition
from kubecast.encoder.ladder import LadderVideo
from kubecast.encoder.segmenter import epoch_end
from kubecast.encoder.timing import ConnectionClock, Placement
from kubecast.media.contribution import CodecConfig, Kind
from kubecast.media.mp4 import parse_media_segment


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def encode(flv: bytes) -> tuple[list, list]:
    tracks, segments = [], []
    records = flv_records(flv)
    first_ms = next(r.decode_time for r in records if r.kind == Kind.VIDEO and not isinstance(r, CodecConfig))
    clock = ConnectionClock(Placement(epoch=0, offset_ms=10_000 - first_ms, first_segment=5, joined=False))
    ladder = LadderVideo(
        renditions=[Rendition(name="v", width=160, height=90, bitrate=100_000)],
        x264_preset="ultrafast",
        clock=clock,
        segment_duration_ms=2000,
        publish_track=lambda info, init: tracks.append(info),
        publish_segment=lambda track, segment: segments.append(segment),
    )
    for record in records:
        if record.kind == Kind.VIDEO:
            if isinstance(record, CodecConfig):
                ladder.configure(record.data)
            else:
                ladder.push(record)
    ladder.drain()
    ladder.finish(epoch_end(ladder.pending_ends()))
    assert ladder.failed() is None
    return tracks, segments


def make_flv(tmp_path, video_filter: str) -> bytes:
    path = tmp_path / "in.flv"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=160x90:rate=25",
            "-t",
            "5",
            "-vf",
            video_filter,
            "-fps_mode",
            "passthrough",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-bf",
            "0",
            "-f",
            "flv",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path.read_bytes()


def test_holes_are_filled_and_surplus_pictures_dropped_on_the_grid(tmp_path):
    # 25 fps with pictures 30-32 missing (a hole of three slots), and the 67th picture left
    # stamped 10 ms after the one before it: two pictures for one slot (one dropped), and its
    # own slot left empty (one more repeat).
    flv = make_flv(tmp_path, "select='not(between(n,30,32))',setpts='if(eq(N,67),PREV_OUTPTS+0.01/TB,PTS)'")
    duplicated, dropped = (
        metric("kubecast_encoder_frames_duplicated_total"),
        metric("kubecast_encoder_frames_dropped_total"),
    )
    tracks, segments = encode(flv)
    assert tracks[0].timescale == 90000 and tracks[0].frame_rate == "25"
    samples = [s for segment in segments for s in parse_media_segment(segment.data)[1]]
    assert {s.duration for s in samples} == {3600}
    assert [segment.number for segment in segments] == [5, 6, 7]
    assert [segment.start for segment in segments] == [5 * 180000, 6 * 180000, 7 * 180000]
    assert metric("kubecast_encoder_frames_duplicated_total") - duplicated == 3 + 1
    assert metric("kubecast_encoder_frames_dropped_total") - dropped == 1
    assert len(samples) == 125, "five seconds of 25 fps slots, every one filled"

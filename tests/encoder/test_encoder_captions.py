"""Closed captions through the encoder in-process: every caption byte pair of the contribution
comes out of every rendition of the ladder exactly once, also across repeated and dropped
pictures, pass-through keeps them and both say which channel they carry; malformed caption
data costs a metric and a log line, never a segment."""

from __future__ import annotations

import gc
import subprocess
import tempfile
from pathlib import Path

import av
import pytest
from captioned import captioned_ts
from helpers import flv_records
from prometheus_client import REGISTRY

from kubecast.api import Rendition
from kubecast.encoder.captions import PictureCaptions
from kubecast.encoder.ladder import LadderVideo
from kubecast.encoder.passthrough import VideoPassthrough
from kubecast.encoder.segmenter import epoch_end
from kubecast.encoder.timing import ConnectionClock, Placement
from kubecast.media.captions import channels_of, valid_triplets
from kubecast.media.contribution import CodecConfig, Frame, Kind

RENDITIONS = [
    Rendition(name="v90", width=160, height=90, bitrate=100_000),
    Rendition(name="v72", width=128, height=72, bitrate=80_000),
]


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture(scope="module")
def captioned(tmp_path_factory):
    return captioned_ts(tmp_path_factory.mktemp("captions"), seconds=7, size=(160, 90))


def to_flv(source: Path, folder: Path, video: list[str]) -> bytes:
    path = folder / "in.flv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(source), *video, "-an", "-f", "flv", str(path)],
        check=True,
        timeout=60,
    )
    return path.read_bytes()


def triplets_per_picture(path: Path) -> list[bytes]:
    """What FFmpeg's decoder reads: each picture's valid caption triplets, in presentation order."""
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            found = frame.side_data.get(av.sidedata.sidedata.Type.A53_CC)
            out.append(valid_triplets(bytes(found)) if found is not None else b"")
    return out


def clock(records: list) -> ConnectionClock:
    first_ms = next(r.decode_time for r in records if isinstance(r, Frame))
    return ConnectionClock(Placement(epoch=0, offset_ms=10_000 - first_ms, first_segment=5, joined=False))


def run(records: list, video) -> None:
    for record in records:
        if record.kind != Kind.VIDEO:
            continue
        if isinstance(record, CodecConfig):
            video.configure(record.data)
        else:
            video.push(record)


def encode(records: list) -> tuple[dict, dict]:
    tracks, segments = {}, {}
    ladder = LadderVideo(
        renditions=RENDITIONS,
        x264_preset="ultrafast",
        clock=clock(records),
        segment_duration_ms=2000,
        publish_track=lambda info, init: tracks.setdefault(info.id, []).append((info, init)),
        publish_segment=lambda track, segment: segments.setdefault(track, []).append(segment),
        publish_cue=lambda cue: None,
    )
    run(records, ladder)
    ladder.drain()
    ladder.finish(epoch_end(ladder.pending_ends()))
    assert ladder.failed() is None
    return tracks, segments


def pass_through(records: list) -> tuple[list, list]:
    """The pass-through video track of ``records``: what it described (info, init) and its segments."""
    tracks, segments = [], []
    video = VideoPassthrough(
        clock=clock(records),
        segment_duration_ms=2000,
        bandwidth_hint=0,
        publish_track=lambda info, init: tracks.append((info, init)),
        publish_segment=lambda track, segment: segments.append(segment),
    )
    run(records, video)
    video.finish(epoch_end([video.segmenter.pending]))
    return tracks, segments


def stored(init: bytes, segments: list) -> Path:
    path = Path(tempfile.mkdtemp()) / "track.mp4"
    path.write_bytes(init + b"".join(segment.data for segment in segments))
    return path


@pytest.mark.parametrize(
    "video_filter",
    [
        None,
        # pictures 40-42 missing (three repeats), the 70th stamped 10 ms after the one before (two
        # pictures for one slot: one dropped, its captions carried to the next)
        "select='not(between(n,40,42))',setpts='if(eq(N,70),PREV_OUTPTS+0.01/TB,PTS)'",
    ],
)
def test_every_caption_pair_comes_out_of_every_rendition_once(captioned, tmp_path, video_filter):
    # ffmpeg's libx264 keeps the captions of the pictures it encodes (its A/53 writer is on by default)
    video = ["-c:v", "libx264", "-preset", "ultrafast", "-bf", "0"]
    if video_filter:
        video = ["-vf", video_filter, "-fps_mode", "passthrough", *video]
    flv = to_flv(captioned, tmp_path, video)
    (tmp_path / "source.flv").write_bytes(flv)
    source = b"".join(triplets_per_picture(tmp_path / "source.flv"))
    assert channels_of(source) == {"CC1"} and len(source) >= 3 * 30
    duplicated, dropped = (
        metric("kubecast_encoder_frames_duplicated_total"),
        metric("kubecast_encoder_frames_dropped_total"),
    )
    tracks, segments = encode(flv_records(flv))
    if video_filter:
        assert metric("kubecast_encoder_frames_duplicated_total") - duplicated >= 3
        assert metric("kubecast_encoder_frames_dropped_total") - dropped >= 1
    for rendition in RENDITIONS:
        info, init = tracks[rendition.name][-1]
        assert info.captions == ["CC1"], "the track says it carries CC1"
        assert tracks[rendition.name][0][1] == init, "described again with the same init segment"
        out = triplets_per_picture(stored(init, segments[rendition.name]))
        assert b"".join(out) == source, rendition.name


def test_pass_through_keeps_the_captions_and_says_so(captioned, tmp_path):
    flv = to_flv(captioned, tmp_path, ["-c:v", "copy"])
    records = flv_records(flv)
    tracks, segments = pass_through(records)
    info, init = tracks[-1]
    assert info.captions == ["CC1"]
    assert b"".join(triplets_per_picture(stored(init, segments))) == b"".join(triplets_per_picture(captioned))


def corrupt(records: list, every: int) -> list:
    """Every ``every``-th picture's A/53 SEI claims 31 triplets it does not have."""
    out = []
    for index, record in enumerate(records):
        if isinstance(record, Frame) and record.kind == Kind.VIDEO and index % every == 0 and b"GA94" in record.data:
            data = bytearray(record.data)
            data[data.index(b"GA94") + 5] = 0x40 | 31
            record = Frame(**{**{f: getattr(record, f) for f in Frame.__slots__}, "data": bytes(data)})
        out.append(record)
    return out


def test_malformed_caption_data_costs_a_metric_never_a_segment(captioned, tmp_path, caplog):
    flv = to_flv(captioned, tmp_path, ["-c:v", "copy"])
    records = corrupt(flv_records(flv), every=3)
    errors = metric("kubecast_encoder_caption_errors_total", reason="malformed")
    tracks, segments = pass_through(records)
    assert metric("kubecast_encoder_caption_errors_total", reason="malformed") - errors >= 50
    assert "caption data of pass-through track video dropped: A/53 caption data of 31 triplets cut short" in caplog.text
    assert len(caplog.records) <= 2, "one log line per 10 s"
    assert [s.number for s in segments] == [5, 6, 7, 8] and tracks[-1][0].captions == ["CC1"]
    # live encoding: FFmpeg's decoder skips the broken SEI, every picture is still encoded
    ladder_tracks, ladder_segments = encode(records)
    for rendition in RENDITIONS:
        assert [s.number for s in ladder_segments[rendition.name]] == [5, 6, 7, 8]
        with av.open(str(stored(ladder_tracks[rendition.name][-1][1], ladder_segments[rendition.name]))) as container:
            assert len(list(container.decode(video=0))) == 7 * 30


def test_reading_a_pictures_captions_lets_it_go_without_waiting_for_the_garbage_collector():
    # A picture kept in a reference cycle holds its buffer from the decoder's pool until a collection:
    # the pool then grew to hundreds of pictures (README, soak).
    def pictures() -> int:
        return sum(isinstance(o, av.VideoFrame) for o in gc.get_objects())

    gc.disable()
    try:
        before = pictures()
        frame = av.VideoFrame(64, 64, "yuv420p")
        PictureCaptions().arrive(frame)
        del frame
        assert pictures() == before
    finally:
        gc.enable()

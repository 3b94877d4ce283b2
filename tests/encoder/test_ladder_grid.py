"""The ladder in-process: a contribution with holes and surplus pictures still comes out at a
constant frame rate, and the repeats and drops are counted in the metrics."""

from __future__ import annotations

import subprocess

from helpers import flv_records, idr_samples
from prometheus_client import REGISTRY

from kubecast.api import Rendition
from kubecast.encoder.ladder import LadderVideo
from kubecast.encoder.segmenter import epoch_end
from kubecast.encoder.timing import ConnectionClock, Placement
from kubecast.media.contribution import CodecConfig, Cue, Kind
from kubecast.media.mp4 import parse_media_segment


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def encode(
    flv: bytes, *, renditions: int = 1, cues: tuple[tuple[int, Cue], ...] = (), segment: int | None = None
) -> tuple[list, list]:
    """``cues``: (channel media time in 90 kHz, cue), handed to the ladder before the pictures
    (``segment``: each at that segment's start)."""
    tracks, segments, placed = [], [], []
    records = flv_records(flv)
    first_ms = next(r.decode_time for r in records if r.kind == Kind.VIDEO and not isinstance(r, CodecConfig))
    clock = ConnectionClock(Placement(epoch=0, offset_ms=10_000 - first_ms, first_segment=5, joined=False))
    ladder = LadderVideo(
        renditions=[
            Rendition(name=f"v{n}", width=160 - 32 * n, height=90 - 18 * n, bitrate=100_000) for n in range(renditions)
        ],
        x264_preset="ultrafast",
        clock=clock,
        segment_duration_ms=2000,
        publish_track=lambda info, init: tracks.append(info),
        publish_segment=lambda track, segment: segments.append((track, segment)),
        publish_cue=placed.append,
    )
    for time, cue in cues:
        ladder.cue(cue, time, segment=segment)
    for record in records:
        if record.kind == Kind.VIDEO:
            if isinstance(record, CodecConfig):
                ladder.configure(record.data)
            else:
                ladder.push(record)
    ladder.drain()
    ladder.finish(epoch_end(ladder.pending_ends()))
    assert ladder.failed() is None
    if cues:
        return placed, segments
    return tracks, [segment for _, segment in segments]


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


def test_a_splice_gets_an_idr_in_every_rendition_and_the_segments_stay_on_the_grid(tmp_path):
    flv = make_flv(tmp_path, "null")
    splice = Cue(90_000, 0, True, 30 * 90_000, 11, b"section")
    # Channel media time 12.52 s: slot 313 at 25 fps, 13 pictures into segment 6 ([12 s, 14 s)).
    placed, segments = encode(flv, renditions=2, cues=((int(12.52 * 90_000), splice),))
    assert [(c.event_id, c.out, c.time, c.timescale, c.duration) for c in placed] == [
        (11, True, 313 * 3600, 90_000, 30 * 90_000)
    ], "listed once, at the exact time of the frame that got the IDR"
    for track in ("v0", "v1"):
        ours = [segment for name, segment in segments if name == track]
        assert [segment.number for segment in ours] == [5, 6, 7]
        assert [segment.start for segment in ours] == [5 * 180000, 6 * 180000, 7 * 180000], "boundaries on n*D"
        keyframes = {(segment.number, index) for segment in ours for index in idr_samples(segment.data)}
        assert keyframes == {(5, 0), (6, 0), (6, 13), (7, 0)}, f"{track}: IDRs at the boundaries and the splice"


def test_a_splice_asked_for_a_segment_start_goes_on_its_first_slot(tmp_path):
    """A manual cue: on the segment's first slot (a key frame already) whatever time it states."""
    flv = make_flv(tmp_path, "null")
    splice = Cue(90_000, 0, True, 30 * 90_000, 12, b"section")
    placed, segments = encode(flv, cues=((int(11.9 * 90_000), splice),), segment=6)
    assert [(c.event_id, c.time) for c in placed] == [(12, 300 * 3600)], "slot 300: 12 s, where segment 6 starts"
    keyframes = {(segment.number, index) for _, segment in segments for index in idr_samples(segment.data)}
    assert keyframes == {(5, 0), (6, 0), (7, 0)}, "no key frame of its own: the boundary's"

"""CMAF samples -> MPEG-TS segments, read back by FFmpeg (PyAV) and by our own demuxer."""

from __future__ import annotations

import io
import subprocess

import av
import pytest
from helpers import lavfi_source

from kubecast.media.fmp4 import BoxStream, parse_fragment, parse_init
from kubecast.media.mpegts import TsDemuxer
from kubecast.media.tsmux import PACKET, TsSample, mux_segment


@pytest.fixture(scope="module")
def fragments(tmp_path_factory):
    """Two-second fragments of H.264 (with B-frames) + AAC, as ffmpeg writes fragmented MP4."""
    path = tmp_path_factory.mktemp("fmp4") / "source.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            *lavfi_source(size="320x240", frequency=None),
            "-t",
            "6",
            "-c:v",
            "libx264",
            "-g",
            "60",
            "-bf",
            "2",
            "-c:a",
            "aac",
            "-movflags",
            "frag_keyframe+empty_moov+default_base_moof",
            "-frag_duration",
            "2000000",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    boxes = BoxStream().feed(path.read_bytes())
    tracks = {t.track_id: t for t in parse_init(next(box for kind, box in boxes if kind == b"moov"))}
    video = next(t for t in tracks.values() if t.kind == "video")
    audio = next(t for t in tracks.values() if t.kind == "audio")
    samples = {video.track_id: [], audio.track_id: []}
    for (kind, moof), (_, mdat) in zip(boxes, boxes[1:]):
        if kind == b"moof":
            for track_id, found in parse_fragment(moof, mdat).items():
                samples[track_id] += [TsSample(s.decode_time, s.composition_offset, s.keyframe, s.data) for s in found]
    return video, audio, samples[video.track_id], samples[audio.track_id]


def segments(fragments, seconds: int = 2):
    video, audio, video_samples, audio_samples = fragments
    result = []
    for start in range(0, 6, seconds):
        vs = [
            s for s in video_samples if start * video.timescale <= s.decode_time < (start + seconds) * video.timescale
        ]
        aus = [
            s for s in audio_samples if start * audio.timescale <= s.decode_time < (start + seconds) * audio.timescale
        ]
        result.append(
            mux_segment(
                avcc=video.codec_config,
                video_timescale=video.timescale,
                video=vs,
                asc=audio.codec_config,
                audio_timescale=audio.timescale,
                audio=aus,
            )
        )
    return result


def test_each_segment_decodes_on_its_own_with_every_frame_and_continuous_times(fragments):
    video, audio, video_samples, audio_samples = fragments
    decoded_video, decoded_audio, pts = 0, 0, []
    for data in segments(fragments):
        assert len(data) % PACKET == 0 and data[0] == 0x47
        with av.open(io.BytesIO(data), format="mpegts") as container:
            for frame in container.decode(video=0):
                decoded_video += 1
                pts.append(frame.pts)
        with av.open(io.BytesIO(data), format="mpegts") as container:
            decoded_audio += sum(1 for _ in container.decode(audio=0))
    assert decoded_video == len(video_samples) == 180
    assert decoded_audio >= len(audio_samples) - 3  # the AAC decoder may hold back its priming frames
    steps = {b - a for a, b in zip(sorted(pts), sorted(pts)[1:])}
    assert steps == {3000}, "presentation times 1/30 s apart, across segment boundaries"


def test_our_demuxer_reads_each_segment_back_without_damage(fragments):
    video_frames = 0
    for data in segments(fragments):
        demuxer = TsDemuxer()  # a segment is a transport stream of its own, as HLS players read it
        frames = demuxer.feed(data) + demuxer.flush()
        video_frames += sum(f.kind == "video" for f in frames)
        assert demuxer.stats.continuity_errors == demuxer.stats.sync_losses == demuxer.stats.malformed_pes == 0
        assert frames[0].kind == "video" or any(f.kind == "video" and f.random_access for f in frames[:3])
    assert video_frames == 180

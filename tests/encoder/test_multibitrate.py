"""Multi-bitrate pass-through in the encoder process: three renditions of one contribution in,
three renditions out, bit for bit; misaligned key frames withhold a rendition and say why."""

from __future__ import annotations

import hashlib
import io

import av
import pytest
from helpers import flv_video_payloads, interleave_renditions, make_multibitrate_flvs, segment_payloads, wait_until
from test_encoder_process import CHANNEL, progress_when, run_encoder, send, track_bytes

SECONDS = 8


def digest(payloads: list[bytes]) -> str:
    return hashlib.sha256(b"".join(payloads)).hexdigest()


@pytest.fixture(scope="module")
def aligned(tmp_path_factory):
    return make_multibitrate_flvs(tmp_path_factory.mktemp("aligned"), seconds=SECONDS)


def test_three_renditions_pass_through_unchanged(tmp_path, aligned):
    process, port = run_encoder(tmp_path, CHANNEL % ("None", "[]"))
    with process:
        send(port, interleave_renditions(aligned))
        record = wait_until(
            lambda: progress_when(tmp_path, lambda p: p["state"] == "waiting" and len(p["segments"]) == 4),
            timeout=60,
            what="three video renditions and audio",
        )
    assert record["ingest"]["renditions"] == 3 and record["ingest"]["keyframesAligned"] is True
    tracks = {t["id"]: t for t in record["tracks"]}
    assert [(tracks[t]["width"], tracks[t]["height"]) for t in ("video", "video1", "video2")] == [
        (640, 360),
        (480, 270),
        (320, 180),
    ]
    starts = [[(s[0], s[1]) for s in record["segments"][t]] for t in ("video", "video1", "video2")]
    assert starts[0] == starts[1] == starts[2], "segment n starts at the same time in every rendition"
    for index, track in enumerate(("video", "video1", "video2")):
        init, segments = track_bytes(tmp_path, record, tracks[track])
        stored = segment_payloads(segments)
        source = flv_video_payloads(aligned[index])
        assert len(stored) >= len(source) - 30, f"{track}: at most the last second is cut off"
        assert digest(stored) == digest(source[: len(stored)]), f"{track} is the contribution's bitstream, unchanged"
        frames = list(av.open(io.BytesIO(init + b"".join(segments)), format="mp4").decode(video=0))
        assert frames and frames[0].width == tracks[track]["width"]


def test_misaligned_rendition_is_withheld_and_reported(tmp_path):
    flvs = make_multibitrate_flvs(tmp_path, seconds=SECONDS, gops=(30, 30, 45))
    process, port = run_encoder(tmp_path, CHANNEL % ("None", "[]"))
    with process:
        send(port, interleave_renditions(flvs))
        record = wait_until(
            lambda: progress_when(tmp_path, lambda p: p["state"] == "waiting" and "video1" in p["segments"]),
            timeout=60,
            what="the aligned renditions",
        )
    assert record["ingest"]["keyframesAligned"] is False
    assert "video2" in record["ingest"]["alignmentMessage"] and "not published" in record["ingest"]["alignmentMessage"]
    assert not record["segments"].get("video2"), "a misaligned rendition publishes no segment"
    assert len(record["segments"]["video1"]) == SECONDS // 2, "the aligned renditions are published whole"

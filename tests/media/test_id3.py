"""ID3 timed metadata: tags as ffmpeg writes them checked, damaged ones refused with a reason;
written into TS segments as Apple specifies and read back by FFmpeg (PyAV) and by our demuxer."""

from __future__ import annotations

import io

import av
import pytest
from helpers import ffmpeg_id3_tag
from test_tsmux import fragments, segments  # noqa: F401  (the module's fixture, reused)

from kubecast.media.contribution import Metadata, RecordError, RecordReader, encode_record
from kubecast.media.id3 import MAX_TAGS, Id3Error, split_tags
from kubecast.media.mpegts import TsDemuxer
from kubecast.media.tsmux import TsTag, mux_segment


@pytest.fixture(scope="module")
def tag() -> bytes:
    return ffmpeg_id3_tag("kubecast timed metadata")


def syncsafe(n: int) -> bytes:
    return bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])


def test_ffmpegs_tags_are_whole_alone_together_and_with_stuffing(tag):
    assert split_tags(tag) == [tag]
    assert split_tags(tag + tag + b"\x00" * 7) == [tag, tag]
    v3 = b"ID3\x03\x00\x00" + syncsafe(14) + b"TIT2" + (4).to_bytes(4, "big") + b"\x00\x00\x03abc"
    assert split_tags(v3) == [v3], "ID3v2.3: frame sizes are plain integers"


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda t: t[:7], "truncated"),  # the header cut
        (lambda t: t[:-5], "truncated"),  # the body shorter than the header says
        (lambda t: t[:6] + syncsafe(len(t) + 100) + t[10:], "truncated"),  # a size beyond the bytes
        (lambda t: t[:6] + b"\x7f\xff\x7f\x7f" + t[10:], "size"),  # not syncsafe
        (lambda t: t[:6] + b"\x7f\x7f\x7f\x7f" + t[10:], "truncated"),  # 256 MB claimed
        (lambda t: t[:14] + b"\x7f\x7f\x7f\x7f" + t[18:], "frame"),  # a frame larger than the tag
        (lambda t: t[:10] + b"ti\x00\x01" + t[14:], "frame"),  # a frame id no frame has
        (lambda t: t + b"junk after the tag", "header"),  # bytes after the tag that are no tag
        (lambda t: b"ID3\x02\x00" + t[5:], "version"),  # ID3v2.2
        (lambda t: b"", "empty"),
        (lambda t: t + b"\x00" * MAX_TAGS, "size"),  # over the bound
    ],
)
def test_damaged_tags_are_refused_with_a_reason(tag, damage, reason):
    with pytest.raises(Id3Error) as refused:
        split_tags(damage(tag))
    assert refused.value.reason == reason


def test_timed_metadata_crosses_the_hand_over_whole_and_bounded(tag):
    item = Metadata(90_000, 123_456, tag)
    reader = RecordReader()
    encoded = encode_record(item)
    for at in range(0, len(encoded), 5):  # in pieces
        reader.feed(encoded[at : at + 5])
    assert list(reader.records()) == [item]
    oversized = bytearray(encode_record(Metadata(90_000, 0, b"x" * (MAX_TAGS + 1))))
    reader = RecordReader()
    reader.feed(bytes(oversized))
    with pytest.raises(RecordError):
        list(reader.records())


def test_a_ts_segment_carries_its_tags_as_apple_and_ffmpeg_read_them(fragments, tag):  # noqa: F811
    video, audio, video_samples, audio_samples = fragments
    first = [s for s in video_samples if s.decode_time < 2 * video.timescale]
    times = [45_000, 135_000]  # 0.5 s and 1.5 s, on the segment's 90 kHz clock
    segment = mux_segment(
        avcc=video.codec_config,
        video_timescale=video.timescale,
        video=first,
        id3=[TsTag(time, tag) for time in times],
    )
    with av.open(io.BytesIO(segment), format="mpegts") as container:
        data = next(s for s in container.streams if s.type == "data")
        assert data.id != 0 and container.streams.video
        packets = [p for p in container.demux(data) if p.size]
    assert [bytes(p) for p in packets] == [tag, tag]
    assert [p.pts for p in packets] == times
    demuxer = TsDemuxer()
    frames = demuxer.feed(segment) + demuxer.flush()
    assert demuxer.streams.get(0x102) == "id3"
    assert [(f.pts, f.data) for f in frames if f.kind == "id3"] == [(time, tag) for time in times]
    assert len([f for f in frames if f.kind == "video"]) == len(first)


def test_segments_without_tags_have_no_metadata_stream(fragments):  # noqa: F811
    segment = segments(fragments)[0]
    with av.open(io.BytesIO(segment), format="mpegts") as container:
        assert not [s for s in container.streams if s.type == "data"]

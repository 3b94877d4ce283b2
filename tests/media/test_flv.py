import math
import struct

import av
import pytest
from flvfile import FLV_HEADER, FlvReader, FlvTag, TagType, audio_tag_body, video_tag_body

from kubecast.media.flv import AudioPacket, FlvError, parse_audio, parse_audio_tracks, parse_video


def test_tags_round_trip_byte_by_byte():
    tags = [
        FlvTag(TagType.SCRIPT, 0, b"\x02\x00\x0aonMetaData"),
        FlvTag(
            TagType.VIDEO,
            0x01020304,
            video_tag_body(keyframe=True, sequence_header=False, composition_offset=-66, payload=b"nal"),
        ),
        FlvTag(TagType.AUDIO, 23, audio_tag_body(sequence_header=True, payload=b"\x11\x90")),
    ]
    stream = FLV_HEADER + b"".join(tag.encode() for tag in tags)
    reader, seen = FlvReader(), []
    for byte in stream:  # arrival in the smallest pieces must not matter
        reader.feed(bytes([byte]))
        seen.extend(reader.tags())
    assert seen == tags
    video = parse_video(seen[1].data)
    assert (video.keyframe, video.is_sequence_header, video.composition_offset, video.payload) == (
        True,
        False,
        -66,
        b"nal",
    )
    audio = parse_audio(seen[2].data)
    assert audio.is_sequence_header and audio.payload == b"\x11\x90"


def test_contribution_file_parses(parsed_contribution):
    config, video, audio = parsed_contribution
    assert config["avcc"][0] == 1 and len(config["asc"]) >= 2
    assert len(video) == 180 and video[0][1].keyframe
    assert len(audio) > 200


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        (b"FLX\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00", "FLV header"),
        (FLV_HEADER + b"\x07" + b"\x00" * 14, "unknown FLV tag type"),
        (FLV_HEADER + b"\x09\xff\xff\xff" + b"\x00" * 11, "exceeds the limit"),
        (b"FLV\x01\x05\xff\xff\xff\xff", "implausible"),
    ],
)
def test_bad_streams_are_refused(stream, message):
    reader = FlvReader()
    reader.feed(stream)
    with pytest.raises(FlvError, match=message):
        list(reader.tags())


def test_truncated_tag_bodies():
    with pytest.raises(FlvError):
        parse_video(b"")
    with pytest.raises(FlvError):
        parse_video(b"\x17\x01")
    with pytest.raises(FlvError):
        parse_audio(b"\xaf")


# -- Enhanced RTMP (v2) audio ----------------------------------------------------------------


def test_ffmpeg_8_sends_each_further_audio_track_as_an_enhanced_rtmp_multitrack_track(tmp_path):
    """FFmpeg 8's FLV muxer (the one PyAV bundles; Debian's ffmpeg 5.1 refuses a second audio
    stream in FLV): the first AAC stream as legacy tags, the second as multitrack track 1."""
    path = tmp_path / "two.flv"
    with av.open(str(path), "w", format="flv") as output:
        streams = [output.add_stream("aac", rate=48000, layout="stereo") for _ in range(2)]
        for stream, frequency in zip(streams, (440, 1000)):
            for pts in range(0, 20 * 1024, 1024):
                for packet in stream.encode(tone(frequency, pts)):
                    output.mux(packet)
            for packet in stream.encode(None):
                output.mux(packet)
        configs = [bytes(s.codec_context.extradata or b"") for s in streams]
    reader = FlvReader()
    reader.feed(path.read_bytes())
    packets = [p for tag in reader.tags() if tag.type == TagType.AUDIO for p in parse_audio_tracks(tag.data)]
    headers = {p.track: (p.fourcc, p.payload) for p in packets if p.is_sequence_header}
    assert headers == {0: (None, configs[0]), 1: (b"mp4a", configs[1])}
    frames = [sum(1 for p in packets if p.track == track and not p.is_sequence_header) for track in (0, 1)]
    assert frames[0] == frames[1] >= 20


def tone(frequency: int, pts: int) -> av.AudioFrame:
    samples = [math.sin(2 * math.pi * frequency * (pts + i) / 48000) for i in range(1024)]
    frame = av.AudioFrame(format="fltp", layout="stereo", samples=1024)
    for plane in frame.planes:
        plane.update(struct.pack("<1024f", *samples))
    frame.sample_rate, frame.pts = 48000, pts
    return frame


def track(track_id: int, data: bytes, fourcc: bytes = b"") -> bytes:
    return fourcc + bytes([track_id]) + len(data).to_bytes(3, "big") + data


def test_enhanced_rtmp_audio_tags_of_every_multitrack_shape():
    # a single-track Enhanced RTMP tag (no track id): a sequence start
    assert parse_audio_tracks(b"\x90mp4a\x11\x90") == [AudioPacket(9, True, b"\x11\x90", 0, b"mp4a")]
    # one track: its id, no size
    assert parse_audio_tracks(b"\x95\x01mp4a\x02raw") == [AudioPacket(9, False, b"raw", 2, b"mp4a")]
    # many tracks of one codec, each with its size
    many = b"\x95\x11mp4a" + track(1, b"abc") + track(2, b"de")
    assert [(p.track, p.payload) for p in parse_audio_tracks(many)] == [(1, b"abc"), (2, b"de")]
    # many tracks, each with its own codec
    mixed = b"\x95\x21" + track(1, b"abc", b"mp4a") + track(2, b"de", b"Opus")
    assert [(p.track, p.fourcc) for p in parse_audio_tracks(mixed)] == [(1, b"mp4a"), (2, b"Opus")]
    # nothing the encoder uses: a multichannel configuration, a sequence end
    assert parse_audio_tracks(b"\x95\x04mp4a\x01\x01\x02\x00\x00\x00\x03") == []
    assert parse_audio_tracks(b"\x92mp4a") == []
    # a legacy AAC tag is what it always was
    assert parse_audio_tracks(b"\xaf\x01raw") == [AudioPacket(10, False, b"raw")]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\x95", "truncated multitrack"),
        (b"\x95\x01mp4a", "truncated multitrack"),
        (b"\x95\x11mp4a\x01\x00\x00", "truncated multitrack"),
        (b"\x95\x11mp4a" + b"\x01\x00\x00\x09ab", "runs past its tag"),
        (b"\x95\x31mp4a\x01", "unknown audio multitrack type 3"),
        (b"\x90mp", "truncated Enhanced RTMP audio tag"),
        (b"\x97\x00\x00", "ModEx"),
        (b"", "empty audio tag"),
    ],
)
def test_malformed_enhanced_rtmp_audio_tags_are_refused(body, message):
    with pytest.raises(FlvError, match=message):
        parse_audio_tracks(body)

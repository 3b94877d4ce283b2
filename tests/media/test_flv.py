import pytest
from flvfile import FLV_HEADER, FlvReader, FlvTag, TagType, audio_tag_body, video_tag_body

from kubecast.media.flv import FlvError, parse_audio, parse_video


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

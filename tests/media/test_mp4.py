import io

import av
import pytest

from kubecast.media.mp4 import (
    Mp4Error,
    Sample,
    aac_codec_string,
    avc_codec_string,
    find_box,
    init_segment_audio,
    init_segment_video,
    iter_boxes,
    media_segment,
    parse_media_segment,
)


def video_segments(parsed):
    """Cut the contribution at its key frames, as the pass-through path does."""
    config, video, _ = parsed
    groups, current = [], []
    for timestamp, packet in video:
        if packet.keyframe and current:
            groups.append(current)
            current = []
        current.append((timestamp, packet))
    groups.append(current)
    segments = []
    for number, group in enumerate(groups):
        samples, data = [], b""
        for index, (timestamp, packet) in enumerate(group):
            following = (
                group[index + 1][0]
                if index + 1 < len(group)
                else (groups[number + 1][0][0] if number + 1 < len(groups) else timestamp + 33)
            )
            samples.append(
                Sample(
                    (following - timestamp) * 90, len(packet.payload), packet.composition_offset * 90, packet.keyframe
                )
            )
            data += packet.payload
        segments.append(
            (
                group[0][0] * 90,
                samples,
                media_segment(
                    sequence_number=number + 1, base_decode_time=group[0][0] * 90, samples=samples, data=data
                ),
            )
        )
    return segments


def test_video_init_and_segments_decode_with_ffmpeg(parsed_contribution):
    config, video, _ = parsed_contribution
    init = init_segment_video(width=320, height=240, timescale=90000, avcc=config["avcc"])
    segments = video_segments(parsed_contribution)
    container = av.open(io.BytesIO(init + b"".join(s for _, _, s in segments)), format="mp4")
    stream = container.streams.video[0]
    assert (stream.codec_context.width, stream.codec_context.height) == (320, 240)
    frames = list(container.decode(stream))
    assert len(frames) == len(video)
    assert sum(frame.key_frame for frame in frames) == len(segments)


def test_parse_round_trip(parsed_contribution):
    for base, samples, data in video_segments(parsed_contribution):
        assert parse_media_segment(data) == (base, samples)


def test_negative_composition_offsets_survive(parsed_contribution):
    data = media_segment(
        sequence_number=1,
        base_decode_time=180000,
        samples=[Sample(3000, 3, -6000, True), Sample(3000, 2, 3000, False)],
        data=b"abcde",
    )
    base, samples = parse_media_segment(data)
    assert base == 180000 and [s.composition_offset for s in samples] == [-6000, 3000]
    assert [s.keyframe for s in samples] == [True, False]


def test_audio_init_and_segment_decode(parsed_contribution):
    config, _, audio = parsed_contribution
    init = init_segment_audio(sample_rate=48000, channels=1, timescale=48000, asc=config["asc"])
    segment = media_segment(
        sequence_number=1,
        base_decode_time=0,
        samples=[Sample(1024, len(p.payload)) for _, p in audio],
        data=b"".join(p.payload for _, p in audio),
    )
    container = av.open(io.BytesIO(init + segment), format="mp4")
    decoded = sum(frame.samples for frame in container.decode(audio=0))
    assert decoded == 1024 * len(audio)


def test_codec_strings(parsed_contribution):
    config, _, _ = parsed_contribution
    assert avc_codec_string(config["avcc"]) == "avc1." + config["avcc"][1:4].hex()
    assert aac_codec_string(config["asc"]) == "mp4a.40.2"
    assert aac_codec_string(bytes([0xF8, 0x20])) == "mp4a.40.33"  # escape: object type 32 + 1
    with pytest.raises(Mp4Error):
        avc_codec_string(b"\x00\x01")


def test_truncated_and_lying_boxes_are_refused():
    data = media_segment(sequence_number=1, base_decode_time=0, samples=[Sample(1, 4)], data=b"abcd")
    with pytest.raises(Mp4Error, match="truncated|claims"):
        parse_media_segment(data[:-10])
    with pytest.raises(Mp4Error, match="claims"):
        list(iter_boxes(b"\x00\x00\x10\x00moof" + b"\x00" * 8))
    with pytest.raises(Mp4Error, match="truncated box header"):
        list(iter_boxes(b"\x00\x00\x00"))
    with pytest.raises(Mp4Error, match="no moof"):
        find_box(b"\x00\x00\x00\x08free", [b"moof"])
    with pytest.raises(ValueError, match="add up"):
        media_segment(sequence_number=1, base_decode_time=0, samples=[Sample(1, 5)], data=b"abcd")

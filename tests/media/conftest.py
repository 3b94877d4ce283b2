import pytest
from flvfile import FlvReader, TagType
from helpers import make_contribution_flv

from kubecast.media.flv import parse_audio, parse_video


@pytest.fixture(scope="session")
def contribution_flv(tmp_path_factory) -> bytes:
    """Six seconds of H.264 (with B-frames, a key frame every second) + AAC, as an encoder sends it."""
    return make_contribution_flv(tmp_path_factory.mktemp("flv") / "source.flv", seconds=6)


@pytest.fixture(scope="session")
def parsed_contribution(contribution_flv):
    reader = FlvReader()
    reader.feed(contribution_flv)
    video, audio, config = [], [], {}
    for tag in reader.tags():
        if tag.type == TagType.VIDEO:
            packet = parse_video(tag.data)
            if packet.is_sequence_header:
                config["avcc"] = packet.payload
            elif not packet.end_of_sequence:
                video.append((tag.timestamp, packet))
        elif tag.type == TagType.AUDIO:
            packet = parse_audio(tag.data)
            if packet.is_sequence_header:
                config["asc"] = packet.payload
            else:
                audio.append((tag.timestamp, packet))
    return config, video, audio

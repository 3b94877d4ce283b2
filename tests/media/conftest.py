import subprocess

import pytest

from kubecast.media.flv import FlvReader, TagType, parse_audio, parse_video


@pytest.fixture(scope="session")
def contribution_flv(tmp_path_factory) -> bytes:
    """Six seconds of H.264 (with B-frames, a key frame every second) + AAC, as an encoder sends it."""
    path = tmp_path_factory.mktemp("flv") / "source.flv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-f", "lavfi", "-i",
         "sine=frequency=1000:sample_rate=48000", "-t", "6", "-c:v", "libx264", "-g", "30", "-bf", "2", "-c:a", "aac", "-f", "flv", str(path)],
        check=True, timeout=60,
    )
    return path.read_bytes()


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

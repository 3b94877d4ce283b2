import pytest
from timeline_fixtures import ladder_timeline


@pytest.fixture
def timeline():
    return ladder_timeline()


@pytest.fixture(scope="session")
def tracks(tmp_path_factory):
    """Four seconds of real H.264 + AAC as stored CMAF (the protected-delivery tests' channel)."""
    from cmaf_content import make_cmaf_tracks

    return make_cmaf_tracks(tmp_path_factory.mktemp("cmaf"), seconds=4)


@pytest.fixture(scope="session")
def clear_frames(tracks, tmp_path_factory):
    """ffmpeg's frame hashes of the clear copy, per kind: what decryption must give back."""
    import asyncio

    from protected_media import framemd5

    folder = tmp_path_factory.mktemp("clear")
    frames = {}
    for track in tracks:
        path = folder / f"{track.info.id}.mp4"
        path.write_bytes(track.init + b"".join(track.segments[n] for n in sorted(track.segments)))
        frames[track.info.kind] = asyncio.run(framemd5(str(path)))
    assert len(frames["video"]) >= 110 and len(frames["audio"]) >= 150, "four seconds of 30 fps video and 48 kHz AAC"
    return frames

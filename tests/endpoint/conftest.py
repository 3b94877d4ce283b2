from datetime import datetime, timezone

import pytest

from kubecast.media.timeline import Timeline, TimelineTrack
from kubecast.media.tracks import TrackInfo

AST = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def make_timeline(*, state="live", discontinuity_at=None, numbers=range(10, 16)) -> Timeline:
    def rows(timescale, duration, size):
        return [[n, n * duration, duration, size, "A", n == discontinuity_at] for n in numbers]

    video = [
        TimelineTrack(
            info=TrackInfo(
                id=f"v{h}",
                kind="video",
                codecs=f"avc1.6400{h // 10:02x}",
                bandwidth=b,
                timescale=90000,
                init="init-aa.mp4",
                width=w,
                height=h,
                frame_rate="30",
            ),
            init_source="A",
            segments=rows(90000, 180000, b // 4),
            average_bandwidth=b // 2,
            peak_bandwidth=b // 2,
        )
        for w, h, b in ((1280, 720, 3_000_000), (640, 360, 800_000))
    ]
    audio = TimelineTrack(
        info=TrackInfo(
            id="audio",
            kind="audio",
            codecs="mp4a.40.2",
            bandwidth=128_000,
            timescale=48000,
            init="init-bb.mp4",
            sample_rate=48000,
            channels=2,
        ),
        init_source="A",
        segments=rows(48000, 96000, 32_000),
    )
    return Timeline(
        channel="news",
        state=state,
        updated=AST,
        availability_start_time=AST,
        segment_duration_ms=2000,
        window_ms=60000,
        tracks=[video[1], audio, video[0]],
        generation=3,
    )


@pytest.fixture
def timeline():
    return make_timeline()


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

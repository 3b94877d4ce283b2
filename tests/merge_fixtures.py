"""Encoders' progress records and a merge call, as the merge tests and the packager's recording and
retention tests build them (a module of its own: a test module cannot be imported from another
directory's tests unless both happen to be collected in one run)."""

from datetime import datetime, timedelta, timezone

from kubecast.media.merge import merge
from kubecast.media.tracks import SegmentRecord, TrackInfo
from kubecast.storage import EncoderProgress, IngestInfo

AST = datetime(2026, 1, 1, tzinfo=timezone.utc)
D = 180000  # 2 s at 90 kHz


def video(init="init-a.mp4"):
    return TrackInfo(
        id="v",
        kind="video",
        codecs="avc1.64001f",
        bandwidth=1_000_000,
        timescale=90000,
        init=init,
        width=1280,
        height=720,
        frame_rate="30",
    )


def progress(instance, numbers, *, init="init-a.mp4", state="live", now=None, sizes=None, discontinuity=()):
    return EncoderProgress(
        channel="c",
        instance=instance,
        session="s",
        state=state,
        updated=now or AST + timedelta(seconds=30),
        availability_start_time=AST,
        segment_duration_ms=2000,
        tracks=[video(init)],
        segments={
            "v": [SegmentRecord(n, n * D, D, (sizes or {}).get(n, 250_000), n in discontinuity) for n in numbers]
        },
        ingest=IngestInfo(connected=state == "live", bitrate=4e6),
    )


def run(timeline, now=None, **progresses):
    return merge(
        timeline,
        progresses,
        now=now or AST + timedelta(seconds=30),
        channel="c",
        segment_duration_ms=2000,
        window_ms=60_000,
    )


def numbers(timeline):
    return [(row.number, row.source) for row in timeline.tracks[0].segments]

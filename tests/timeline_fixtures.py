"""Stored timelines as the endpoint, operator, status and fuzz tests build them (a module of its
own, like merge_fixtures: a test module cannot be imported from another directory's tests)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Literal

from kubecast.media.timeline import Timeline, TimelineTrack
from kubecast.media.tracks import TrackInfo
from kubecast.storage import ProgramRecord, Store, layout

AST = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


LEVELS = {720: "1f", 360: "1e"}  # H.264 High profile at level 3.1 and 3.0


def video_track(height: int = 720, *, id: str | None = None, bandwidth: int = 3_000_000) -> TrackInfo:
    return TrackInfo(
        id=id or f"v{height}",
        kind="video",
        codecs=f"avc1.6400{LEVELS[height]}",
        bandwidth=bandwidth,
        timescale=90000,
        init="init-aa.mp4",
        width=height * 16 // 9,
        height=height,
        frame_rate="30",
    )


AUDIO = TrackInfo(
    id="audio",
    kind="audio",
    codecs="mp4a.40.2",
    bandwidth=128_000,
    timescale=48000,
    init="init-bb.mp4",
    sample_rate=48000,
    channels=2,
)


def rows(numbers: Iterable[int], duration: int, size: int = 1000, *, discontinuity_at: int | None = None) -> list:
    """Segment rows ``[number, start, duration, size, source, discontinuity]`` from encoder A."""
    return [[n, n * duration, duration, size, "A", n == discontinuity_at] for n in numbers]


def one_track_timeline(
    numbers: Iterable[int],
    *,
    state: str = "live",
    channel: str = "news",
    video_id: str = "v720",
    window_ms: int = 60000,
) -> Timeline:
    """A channel (or a program's recording) with one 720p video track of 2 s segments."""
    track = TimelineTrack(info=video_track(id=video_id), init_source="A", segments=rows(numbers, 180000))
    return Timeline(
        channel=channel,
        state=state,
        updated=AST,
        availability_start_time=AST,
        segment_duration_ms=2000,
        window_ms=window_ms,
        tracks=[track],
    )


def ladder_timeline(
    *, state: str = "live", discontinuity_at: int | None = None, numbers: Iterable[int] = range(10, 16)
) -> Timeline:
    """720p and 360p video and stereo AAC, listed out of order (360p, audio, 720p) as a merge may leave them."""
    numbers = list(numbers)
    video = [
        TimelineTrack(
            info=video_track(height, bandwidth=bandwidth),
            init_source="A",
            segments=rows(numbers, 180000, bandwidth // 4, discontinuity_at=discontinuity_at),
            average_bandwidth=bandwidth // 2,
            peak_bandwidth=bandwidth // 2,
        )
        for height, bandwidth in ((720, 3_000_000), (360, 800_000))
    ]
    audio = TimelineTrack(
        info=AUDIO, init_source="A", segments=rows(numbers, 96000, 32_000, discontinuity_at=discontinuity_at)
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


async def store_program(
    store: Store,
    timeline: Timeline,
    *,
    name: str = "evening",
    channel: str = "news",
    locator: str = "evening-news",
    manifest_name: str = "show",
    state: Literal["Running", "Stopped"] = "Stopped",
) -> None:
    """A Program as the endpoint finds it: its record under its locator, and ``timeline``, what the
    packager recorded of it."""
    record = ProgramRecord(
        name=name,
        channel=channel,
        locator=locator,
        manifest_name=manifest_name,
        archive_window_seconds=3600,
        state=state,
    )
    await store.put(layout.locator_key(locator), record.to_json())
    await store.put(layout.program_timeline_key(channel, name), timeline.to_json())

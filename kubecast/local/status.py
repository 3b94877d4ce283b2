"""One-line summaries of channel and program state (the supervisor's progress line and ``kubecast status``)."""

from __future__ import annotations

from datetime import datetime, timezone

from kubecast.api.urls import program_urls
from kubecast.media.recording import recording_of
from kubecast.media.timeline import Timeline
from kubecast.storage import ProgramRecord


def summarize(channel: str, timeline: Timeline | None, *, now: datetime | None = None) -> str:
    if timeline is None:
        return f"[{channel}] starting: no timeline yet"
    now = now or datetime.now(timezone.utc)
    video = [track for track in timeline.tracks if track.info.kind == "video"]
    published = max((len(track.segments) for track in timeline.tracks), default=0)
    latest = max((track.segments[-1].number for track in timeline.tracks if track.segments), default=None)
    bitrate = max((health.ingest_bitrate for health in timeline.encoders.values()), default=0.0)
    speed = max((health.speed for health in timeline.encoders.values()), default=0.0)
    if timeline.state != "live":
        return f"[{channel}] {timeline.state}: waiting for contribution ({published} segments in window)"
    return (
        f"[{channel}] live at {bitrate / 1000:.0f} kbit/s in, {len(video)} video renditions, "
        f"encoding at {speed:.2f}x real time, segment #{latest} published, {published} in window"
    )


def summarize_program(record: ProgramRecord, timeline: Timeline | None, *, base: str = "") -> list[str]:
    """A program's state and recorded range, then its playback URL per format (under ``base``,
    the endpoint's address; relative paths without one, since the store does not know it)."""
    recording = recording_of(timeline, program_stopped=record.state == "Stopped")
    lines = [f"  program {record.name} (/{record.locator}/, {record.state.lower()}): {recording.describe()}"]
    for form, url in program_urls(base, locator=record.locator, manifest=record.manifest_name).items():
        lines.append(f"    {form + ':':<15}{url}")
    return lines

"""One-line summaries of channel state (the supervisor's progress line and ``kubecast status``)."""

from __future__ import annotations

from datetime import datetime, timezone

from kubecast.media.timeline import Timeline


def summarize(channel: str, timeline: Timeline | None, *, now: datetime | None = None) -> str:
    if timeline is None:
        return f"[{channel}] starting: no timeline yet"
    now = now or datetime.now(timezone.utc)
    video = [track for track in timeline.tracks if track.info.kind == "video"]
    published = max((len(track.segments) for track in timeline.tracks), default=0)
    latest = max((track.segments[-1][0] for track in timeline.tracks if track.segments), default=None)
    bitrate = max((health.ingest_bitrate for health in timeline.encoders.values()), default=0.0)
    speed = max((health.speed for health in timeline.encoders.values()), default=0.0)
    if timeline.state != "live":
        return f"[{channel}] {timeline.state}: waiting for contribution ({published} segments in window)"
    return (
        f"[{channel}] live at {bitrate / 1000:.0f} kbit/s in, {len(video)} video renditions, "
        f"encoding at {speed:.2f}x real time, segment #{latest} published, {published} in window"
    )

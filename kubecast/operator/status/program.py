"""A Program's status: its playback URLs and its recording."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubecast.api import Channel, Program, StreamingEndpoint
from kubecast.api.urls import program_urls
from kubecast.media.recording import recording_of
from kubecast.media.timeline import Timeline

from .common import conditions, endpoint_base


def aggregate_program(
    program: Program,
    *,
    generation: int | None,
    channel: Channel | None,
    endpoints: list[StreamingEndpoint],
    namespace: str,
    previous: dict[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    problem = None
    if channel is None:
        problem = ("ChannelNotFound", f"Channel {program.spec.channel_name!r} does not exist in this namespace")
    elif program.spec.archive_window_seconds < 2 * channel.spec.segment_duration:
        problem = (
            "WindowTooShort",
            f"archiveWindow holds fewer than two {channel.spec.segment_duration:g}-second segments",
        )
    urls = []
    if problem is None:
        for endpoint in endpoints:
            forms = program_urls(
                endpoint_base(endpoint, namespace),
                locator=program.spec.locator or program.name,
                manifest=program.spec.manifest_name,
            )
            urls += [{"endpoint": endpoint.name, "format": name, "url": url} for name, url in forms.items()]
    if problem:
        entries = [
            ("Ready", False, problem[0], problem[1]),
            ("Reconciling", False, problem[0], ""),
            ("Stalled", True, problem[0], problem[1]),
        ]
    else:
        entries = [
            (
                "Ready",
                bool(urls),
                "Published" if urls else "NoStreamingEndpoint",
                "" if urls else "no StreamingEndpoint serves it yet",
            ),
            ("Reconciling", False, "Reconciled", ""),
            ("Stalled", False, "Reconciled", ""),
        ]
    return {
        "observedGeneration": generation,
        "conditions": conditions((previous or {}).get("conditions"), generation, now, *entries),
        "playbackUrls": urls,
    }


def aggregate_recording(timeline: Timeline | None, *, program_stopped: bool) -> dict[str, Any]:
    """The media half of a Program's status, from its recorded timeline (None: none yet).
    Merged next to what aggregate_program writes."""
    return {"recording": recording_of(timeline, program_stopped=program_stopped).to_wire()}

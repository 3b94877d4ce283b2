"""A Channel's status: the reconcile side (``aggregate_channel``) and the stream report's
(``stream_report``), with the ingest and preview URLs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubecast.api import Channel, StreamingEndpoint
from kubecast.api.urls import ingest_urls
from kubecast.media.timeline import Timeline

from ..builders import INSTANCES, RTMP_PORT
from ..rollout import DeploymentState, not_rolled_out
from .common import (
    DATA_PLANE_CONDITIONS,
    STORAGE_SECRET_MISSING,
    channel_conditions,
    conditions,
    contained,
    endpoint_base,
    replace_conditions,
    timestamp,
)
from .phase import channel_phase, still_running, stopped_entries

# A misaligned contribution is news for whoever runs the publisher: an event.  Differing init
# segments are kubecast's own matter and may be expected while a new ladder rolls (A runs the
# new spec before B): a condition only.
WARN_WHEN_FALSE = ("KeyframesAligned",)


def service_address(service: dict[str, Any] | None, fallback_host: str | None) -> tuple[str | None, dict[str, int]]:
    """Where publishers reach an ingest Service: (host, port name -> port)."""
    host = None
    ingress = ((service or {}).get("status") or {}).get("loadBalancer", {}).get("ingress") or []
    if ingress:
        host = ingress[0].get("hostname") or ingress[0].get("ip")
    spec = (service or {}).get("spec") or {}
    ports = {p.get("name"): p.get("port") for p in spec.get("ports", [])}
    if host is None and spec.get("type") == "NodePort" and fallback_host:
        node_ports = {p.get("name"): p.get("nodePort") for p in spec.get("ports", []) if p.get("nodePort")}
        if node_ports:
            host, ports = fallback_host, node_ports
    if host is None and service:
        host = f"{service['metadata']['name']}.{service['metadata'].get('namespace', 'default')}.svc"
    return host, ports


def ingest_url(
    service: dict[str, Any] | None, channel: str, fallback_host: str | None, *, tls_only: bool = False
) -> str | None:
    """The RTMP URL OBS is given (rtmps:// for a channel that takes TLS only)."""
    host, ports = service_address(service, fallback_host)
    if host is None:
        return None
    if tls_only and "rtmps" in ports:
        return f"rtmps://{host}:{ports['rtmps']}/live/{channel}"
    return f"rtmp://{host}:{ports.get('rtmp', RTMP_PORT)}/live/{channel}"


def protocol_urls(channel: Channel, service: dict[str, Any] | None, fallback_host: str | None) -> dict[str, str]:
    host, ports = service_address(service, fallback_host)
    if host is None:
        return {}
    return ingest_urls(
        channel,
        host=host,
        rtmp=ports.get("rtmp"),
        http=ports.get("http-ingest"),
        srt=ports.get("srt"),
        udp=ports.get("mpegts"),
        rtmps=ports.get("rtmps"),
        https=ports.get("https-ingest"),
    )


def preview_url(channel: Channel, endpoints: list[StreamingEndpoint], namespace: str) -> str | None:
    """The Channel's preview page on the namespace's first StreamingEndpoint (by name); None without one."""
    first = min(endpoints, key=lambda endpoint: endpoint.name, default=None)
    return f"{endpoint_base(first, namespace)}/preview/{channel.name}/" if first else None


def _ready_pods(state: DeploymentState | None) -> int:
    return state.ready if state is not None else 0


def _serving(state: DeploymentState | None) -> bool:
    return state is not None and state.serving


def aggregate_channel(
    channel: Channel,
    *,
    generation: int | None,
    deployments: Mapping[str, DeploymentState | None],
    services: dict[str, dict[str, Any] | None],
    secret_error: str | None,
    previous: dict[str, Any] | None,
    now: datetime,
    ingest_domain: str | None = None,
    data_plane: list[dict[str, Any]] | None = None,
    preview: str | None = None,
    wanted: Mapping[str, str] | None = None,
    storage_error: str | None = None,
) -> dict[str, Any]:
    """The reconcile side of a Channel's status; the data-plane conditions are carried over
    (``channel_conditions``).  ``preview``: its preview URL (``preview_url``).  ``wanted``: the
    spec hash built for each Deployment (``rollout.wanted_hashes``): ``Reconciling`` stays true
    until every one has rolled it out, though both encoders may be live (and Ready true) meanwhile.
    ``storage_error``: the object storage credentials Secret is missing (``storage_secret_problem``)."""
    name = channel.name
    encoders = {i: _serving(deployments.get(f"{name}-encoder-{i.lower()}")) for i in INSTANCES}
    packager = _serving(deployments.get(f"{name}-packager"))
    pending = not_rolled_out(wanted or {}, deployments)
    live_encoders = sum(encoders.values())
    previous_conditions = (previous or {}).get("conditions")
    if secret_error:
        entries = [
            ("Ready", False, "SecretMissing", secret_error),
            ("Reconciling", False, "SecretMissing", ""),
            ("Stalled", True, "SecretMissing", secret_error),
        ]
    elif storage_error:
        entries = [
            ("Ready", False, STORAGE_SECRET_MISSING, storage_error),
            ("Reconciling", False, STORAGE_SECRET_MISSING, ""),
            ("Stalled", True, STORAGE_SECRET_MISSING, storage_error),
        ]
    elif channel.spec.stopped:
        entries = stopped_entries(name, still_running(name, deployments))
    elif live_encoders and packager:
        redundant = live_encoders == len(INSTANCES)
        if not redundant:
            reconciling: tuple[str, bool | None, str, str] = ("Reconciling", True, "EncoderStarting", "")
        elif pending:
            reconciling = ("Reconciling", True, "RollingOut", f"not yet running the current spec: {', '.join(pending)}")
        else:
            reconciling = ("Reconciling", False, "Reconciled", "")
        entries = [
            (
                "Ready",
                True,
                "Redundant" if redundant else "Degraded",
                "both encoders and the packager are ready"
                if redundant
                else f"only {live_encoders} of {len(INSTANCES)} encoders is ready",
            ),
            reconciling,
            ("Stalled", False, "Reconciled", ""),
        ]
    else:
        waiting = [f"encoder {i}" for i, ok in encoders.items() if not ok] + ([] if packager else ["packager"])
        entries = [
            ("Ready", False, "Starting", "waiting for " + ", ".join(waiting)),
            ("Reconciling", True, "Starting", ""),
            ("Stalled", False, "Starting", ""),
        ]
    tls_only = not channel.spec.ingest.accepts_plaintext  # the URL for OBS is then the rtmps:// one
    phase = channel_phase(
        stopped=channel.spec.stopped, running=still_running(name, deployments), ready=entries[0][1] is True
    )
    return {
        "observedGeneration": generation,
        "phase": phase,
        "conditions": channel_conditions(
            conditions(previous_conditions, generation, now, *entries), previous_conditions, data_plane
        ),
        "ingest": {
            "primary": ingest_url(services.get(f"{name}-ingest-a"), name, ingest_domain, tls_only=tls_only),
            "secondary": ingest_url(services.get(f"{name}-ingest-b"), name, ingest_domain, tls_only=tls_only),
            "primaryUrls": protocol_urls(channel, services.get(f"{name}-ingest-a"), ingest_domain),
            "secondaryUrls": protocol_urls(channel, services.get(f"{name}-ingest-b"), ingest_domain),
        },
        "encoders": {
            i: {"ready": ok, "replicas": _ready_pods(deployments.get(f"{name}-encoder-{i.lower()}"))}
            for i, ok in encoders.items()
        },
        "previewUrl": preview,
    }


def aggregate_stream(timeline: Timeline) -> dict[str, Any]:
    """The media half of a Channel's status, from its timeline: ``stream`` and, per encoder,
    whether it is live, its ingest path carries the contribution, its newest segment and how
    many segments the packager took from it.  Merged next to what aggregate_channel writes."""
    encoders = {
        instance: {
            "live": health.state == "live",
            "ingestConnected": health.ingest_connected,
            "lastSegment": health.last_segment,
            "segmentsTaken": health.segments_taken,
        }
        for instance, health in sorted(timeline.encoders.items())
    }
    stream = {
        "state": timeline.state,
        "activeEncoder": timeline.active_source,
        "failovers": timeline.failovers,
        "lastFailoverTime": timestamp(timeline.last_failover) if timeline.last_failover else None,
        "updated": timestamp(timeline.updated),
    }
    return {"stream": stream, "encoders": encoders}


_AS_BOOL: dict[object, bool] = {"True": True, "False": False}  # a condition's status; None: Unknown or absent


def data_plane_conditions(
    timeline: Timeline, *, previous: list[dict[str, Any]] | None, generation: int | None, now: datetime
) -> list[dict[str, Any]]:
    """The packager's data-plane conditions (``DATA_PLANE_CONDITIONS``, those it has set) as the
    Channel's metav1.Conditions: this generation, and a lastTransitionTime that moves only when
    the status differs from ``previous``.  Reason and message are the packager's (the message
    names the misaligned rendition)."""
    reported = {c.get("type"): c for c in timeline.conditions}
    entries = [
        (
            type_,
            _AS_BOOL.get(reported[type_].get("status")),
            reported[type_].get("reason") or "Unknown",
            str(reported[type_].get("message") or "")[:32768],
        )
        for type_ in DATA_PLANE_CONDITIONS
        if type_ in reported
    ]
    return conditions(previous, generation, now, *entries)


@dataclass
class StreamReport:
    status: dict[str, Any]  # to merge into the Channel's status; empty when it already says all of it
    data_plane: list[dict[str, Any]]  # the data-plane conditions derived now: the next report's reference
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (reason, message) of Warning events


def stream_report(
    timeline: Timeline,
    *,
    status: dict[str, Any] | None,
    reported: list[dict[str, Any]] | None,
    generation: int | None,
    now: datetime,
) -> StreamReport:
    """What report_stream makes of a timeline.  ``status``: the Channel's status;
    ``reported``: the data-plane conditions the previous report derived (None after an operator
    restart: the status then stands in, so a restart repeats no old event).  ``reported`` rather
    than the status is the reference because a writer may have sent a list built from a status
    older than the previous report's patch: this report then puts the conditions back, same
    lastTransitionTime, no second event."""
    status = status or {}
    current = status.get("conditions") or []
    before = reported if reported is not None else [c for c in current if c.get("type") in DATA_PLANE_CONDITIONS]
    data_plane = data_plane_conditions(timeline, previous=before, generation=generation, now=now)
    media = aggregate_stream(timeline)
    merged = replace_conditions(current, DATA_PLANE_CONDITIONS, data_plane)
    if merged != current:
        # Only then: the steady report of every tick (new segment numbers) carries no list,
        # so it cannot put back a Ready older than the reconcile side's newest.
        media["conditions"] = merged
    warnings = []
    if message := failover_message(status, media):
        warnings.append(("Failover", message))
    was = {c["type"]: c["status"] for c in before}
    warnings += [
        (c["reason"], c["message"] or c["reason"])
        for c in data_plane
        if c["type"] in WARN_WHEN_FALSE and c["status"] == "False" and was.get(c["type"]) != "False"
    ]
    return StreamReport(status={} if contained(media, status) else media, data_plane=data_plane, warnings=warnings)


def failover_message(previous: dict[str, Any] | None, current: dict[str, Any]) -> str | None:
    """The event text when the stream failed over since the last report (none on the first one:
    an operator restart must not repeat old failovers)."""
    before = ((previous or {}).get("stream") or {}).get("failovers")
    stream = current["stream"]
    if before is None or stream["failovers"] <= before:
        return None
    count = stream["failovers"] - before
    return (
        f"segments now come from encoder {stream['activeEncoder']}"
        f" ({count} failover{'s' if count > 1 else ''} since the last report, {stream['failovers']} in all)"
    )

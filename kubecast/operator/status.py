"""Pure aggregators: what the children report -> the resource's status and conditions.

Conditions follow kstatus: ``Reconciling`` while the children have not caught up with the
spec, ``Stalled`` when they cannot without a change by the user (a missing Secret), and
``Ready`` as the summary.  ``lastTransitionTime`` only moves when a status changes.

A Channel's conditions have two writers: the reconcile side (``aggregate_channel``: Ready,
Reconciling, Stalled, from the children) and the stream report (``stream_report``: the data-plane
conditions, from the packager's timeline).  A merge patch replaces a list whole, so each
writer sends the full list: its own types freshly computed, the other writer's carried over
(``channel_conditions``).  The stream report sends a list only when its own part changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubecast.api import Channel, Program, StreamingEndpoint
from kubecast.api.common import SecretKeyRef
from kubecast.api.urls import ingest_urls, program_urls
from kubecast.media.recording import recording_of
from kubecast.media.timeline import Timeline

from .builders import INSTANCES, RTMP_PORT
from .builders.endpoint import endpoint_selector_text
from .rollout import DeploymentState, not_rolled_out


def _time(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def conditions(
    previous: list[dict[str, Any]] | None,
    generation: int | None,
    now: datetime,
    *entries: tuple[str, bool | None, str, str],
) -> list[dict[str, Any]]:
    old = {c["type"]: c for c in previous or []}
    out = []
    for type_, status, reason, message in entries:
        value = "Unknown" if status is None else ("True" if status else "False")
        before = old.get(type_)
        moved = before is None or before.get("status") != value
        out.append(
            {
                "type": type_,
                "status": value,
                "reason": reason,
                "message": message,
                "lastTransitionTime": _time(now) if moved or before is None else before["lastTransitionTime"],
                "observedGeneration": generation,
            }
        )
    return out


CHANNEL_CONDITIONS = ("Ready", "Reconciling", "Stalled")
# The packager's conditions a Channel shows.  Not its Ready (segments flowing: a different
# question from the Channel's Ready, and the same type) nor IngestConnected (already
# status.encoders.*.ingestConnected, and it flips with every reconnect of the publisher).
DATA_PLANE_CONDITIONS = ("KeyframesAligned", "InitSegmentsConsistent")
# A misaligned contribution is news for whoever runs the publisher: an event.  Differing init
# segments are kubecast's own matter and may be expected while a new ladder rolls (A runs the
# new spec before B): a condition only.
WARN_WHEN_FALSE = ("KeyframesAligned",)
_ORDER = CHANNEL_CONDITIONS + DATA_PLANE_CONDITIONS


def replace_conditions(
    current: list[dict[str, Any]] | None, types: Iterable[str], replacements: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``current`` with the conditions of ``types`` taken from ``replacements`` only (one absent
    there is dropped) and every other kept as it is, in one fixed order: two writers that agree
    on the conditions send the same list, which ``contained`` compares."""
    types = set(types)
    merged = [c for c in current or [] if c.get("type") not in types] + list(replacements)
    return sorted(
        merged, key=lambda c: (_ORDER.index(c["type"]) if c.get("type") in _ORDER else len(_ORDER), c.get("type", ""))
    )


def channel_conditions(
    own: list[dict[str, Any]], previous: list[dict[str, Any]] | None, data_plane: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """A Channel's full conditions list from the reconcile side: ``own`` (Ready, Reconciling,
    Stalled) and the data-plane conditions carried over, ``data_plane`` when the caller knows
    newer ones than ``previous`` holds (what the stream report last derived), else those in
    ``previous``; any other type in ``previous`` is kept too."""
    carried = previous if data_plane is None else replace_conditions(previous, DATA_PLANE_CONDITIONS, data_plane)
    return replace_conditions(carried, CHANNEL_CONDITIONS, own)


def initial_conditions(generation: int | None, now: datetime) -> list[dict[str, Any]]:
    """Written on first sight, before anything is known."""
    return conditions(
        None,
        generation,
        now,
        ("Ready", None, "Pending", "reconciliation has not run yet"),
        ("Reconciling", True, "Pending", "reconciliation has not run yet"),
        ("Stalled", False, "Pending", ""),
    )


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


def secret_problems(
    references: list[tuple[str, SecretKeyRef, str]], secrets: dict[str, dict[str, Any] | None]
) -> str | None:
    """The ``SecretMissing`` message for a Channel's Secret references (``builders.secret_references``;
    ``secrets``: name -> the Secret, None when it does not exist), naming each missing Secret or
    key and what it is for, never a value; None when every one is there."""
    problems = []
    for purpose, ref, _ in references:
        secret = secrets.get(ref.name)
        if secret is None:
            problems.append(f"Secret {ref.name} ({purpose}) does not exist")
        elif ref.key not in (secret.get("data") or {}) and ref.key not in (secret.get("stringData") or {}):
            problems.append(f"Secret {ref.name} ({purpose}) has no key {ref.key}")
    return "; ".join(problems) or None


STORAGE_SECRET_MISSING = "StorageSecretMissing"
# The reasons that stop a Channel until a Secret exists: its pods would wait in
# ContainerCreating (a volume) or CreateContainerConfigError (envFrom) with nothing saying why.
WAITING_FOR_SECRET = ("SecretMissing", STORAGE_SECRET_MISSING)


def storage_secret_problem(name: str | None, namespace: str, secret: dict[str, Any] | None) -> str | None:
    """The ``StorageSecretMissing`` message when the object storage credentials Secret (the chart's
    ``store.credentialsSecret``, every component's ``envFrom``) is configured and absent from the
    namespace; None when none is configured or it exists."""
    if name is None or secret is not None:
        return None
    return (
        f"Secret {name} (object storage credentials) does not exist in namespace {namespace}:"
        f" the encoder and packager pods take their storage credentials from it"
    )


def waiting_for_secret(status: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Stalled" and c.get("reason") in WAITING_FOR_SECRET for c in status.get("conditions", [])
    )


def endpoint_base(endpoint: StreamingEndpoint, namespace: str) -> str:
    """Where a StreamingEndpoint serves: its first custom host name, else its Service's name."""
    return f"http://{endpoint.spec.host_names[0] if endpoint.spec.host_names else f'{endpoint.name}.{namespace}.svc'}"


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
    return {
        "observedGeneration": generation,
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


def aggregate_endpoint(
    endpoint: StreamingEndpoint,
    *,
    generation: int | None,
    deployment: dict[str, Any] | None,
    namespace: str,
    previous: dict[str, Any] | None,
    now: datetime,
    secret_error: str | None = None,
) -> dict[str, Any]:
    ready_replicas = (deployment or {}).get("readyReplicas") or 0
    replicas = (deployment or {}).get("replicas")
    ready = ready_replicas >= 1
    entries = [
        ("Ready", ready, "ReplicasReady" if ready else "NoReadyReplica", f"{ready_replicas} replica(s) ready"),
        ("Reconciling", not ready, "Reconciled" if ready else "Starting", ""),
        ("Stalled", False, "Reconciled" if ready else "Starting", ""),
    ]
    if secret_error:
        entries = [
            ("Ready", False, "SecretMissing", secret_error),
            ("Reconciling", False, "SecretMissing", ""),
            ("Stalled", True, "SecretMissing", secret_error),
        ]
    return {
        "observedGeneration": generation,
        "conditions": conditions((previous or {}).get("conditions"), generation, now, *entries),
        "hostName": endpoint_base(endpoint, namespace).removeprefix("http://"),
        "replicas": replicas,
        "readyReplicas": ready_replicas,
        "selector": endpoint_selector_text(endpoint.name),
    }


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
        "lastFailoverTime": _time(timeline.last_failover) if timeline.last_failover else None,
        "updated": _time(timeline.updated),
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


def aggregate_recording(timeline: Timeline | None, *, program_stopped: bool) -> dict[str, Any]:
    """The media half of a Program's status, from its recorded timeline (None: none yet).
    Merged next to what aggregate_program writes."""
    return {"recording": recording_of(timeline, program_stopped=program_stopped).to_wire()}


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


def contained(new: dict[str, Any], previous: dict[str, Any]) -> bool:
    """Whether ``previous`` already holds everything in ``new`` (a merge patch would change nothing)."""
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(previous.get(key), dict):
            if not contained(value, previous[key]):
                return False
        elif previous.get(key) != value:
            return False
    return True


# What a live stream or recording moves on every report, though nothing else changed: the
# newest segment numbers, the timeline's time, a recording's end.  A status write for these alone
# is made at most every PROGRESS_SECONDS (the reports' other news goes out at once), so that a
# steady stream costs one write per 10 minutes, not one per report.
PROGRESS_SECONDS = 600.0
PROGRESS_FIELDS = {"stream": ("updated",), "recording": ("end", "durationSeconds", "segments")}
ENCODER_PROGRESS_FIELDS = ("lastSegment", "segmentsTaken")


def without_progress(status: dict[str, Any]) -> dict[str, Any]:
    """``status`` (a report's part of it) less its progress fields (``PROGRESS_FIELDS``)."""
    out = {
        key: (
            {k: v for k, v in value.items() if k not in PROGRESS_FIELDS.get(key, ())}
            if isinstance(value, dict)
            else value
        )
        for key, value in status.items()
    }
    if isinstance(out.get("encoders"), dict):
        out["encoders"] = {
            name: {k: v for k, v in (encoder or {}).items() if k not in ENCODER_PROGRESS_FIELDS}
            for name, encoder in out["encoders"].items()
        }
    return out


def progress_only(new: dict[str, Any], previous: dict[str, Any]) -> bool:
    """Whether writing ``new`` over ``previous`` would change progress fields alone."""
    return contained(without_progress(new), previous)

"""A Channel's lifecycle in its status: ``status.phase`` with the Azure Media Services names,
and the reconcile conditions of a stopped channel.

The phase is a fact for people (``kubectl get channels`` shows it); tools read the conditions,
which say the same: a stopped channel is ``Ready=False`` with reason ``Stopped`` (asked for,
not broken: the Argo CD health check reports it as Suspended), ``Reconciling=True`` while its
pods are still going away (phase Stopping) and ``False`` once none is left (phase Stopped).
A channel with ``spec.idleTimeout`` that has had no contribution for that long is stopped by the
operator (``idle_stop``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from kubecast.api import Channel, stopped_refusal
from kubecast.media.idle import idle_seconds
from kubecast.media.timeline import Timeline

from ..builders import INSTANCES
from ..rollout import DeploymentState

Phase = Literal["Starting", "Running", "Stopping", "Stopped"]
Entry = tuple[str, bool | None, str, str]  # a condition: type, status, reason, message

STOPPED = "Stopped"  # the Ready reason of a stopped channel (the health check reads it)


def channel_parts(name: str) -> dict[str, str]:
    """Deployment name -> what it is, for people."""
    parts = {f"{name}-encoder-{instance.lower()}": f"encoder {instance}" for instance in INSTANCES}
    return {**parts, f"{name}-packager": "packager"}


def still_running(name: str, deployments: Mapping[str, DeploymentState | None]) -> list[str]:
    """The parts of channel ``name`` that still have pods (a Deployment not yet scaled down, or
    whose controller has not acted on the zero yet)."""
    running = []
    for deployment, part in channel_parts(name).items():
        state = deployments.get(deployment)
        if state is not None and (
            state.replicas > 0 or state.ready > 0 or state.observed_generation < state.generation
        ):
            running.append(part)
    return running


def stopped_entries(name: str, running: list[str]) -> list[Entry]:
    """The conditions of stopped channel ``name``.  Its Ready message says why a publisher is
    refused in the words the ingest uses locally (``stopped_refusal``): on a cluster the going pods'
    ingest says it for a while (``kubecast.ingest.control``), then no ingest pod is left to say it,
    a publisher's connection is simply refused, and this is where to look."""
    refusal = stopped_refusal(name)
    if running:
        return [
            ("Ready", False, STOPPED, f"{refusal} (stopping: " + ", ".join(running) + " still running)"),
            ("Reconciling", True, "Stopping", ""),
            ("Stalled", False, STOPPED, ""),
        ]
    return [
        ("Ready", False, STOPPED, f"{refusal} (spec.state Stopped: no ingest pod runs, connections are refused)"),
        ("Reconciling", False, STOPPED, ""),
        ("Stalled", False, STOPPED, ""),
    ]


def channel_phase(*, stopped: bool, running: list[str], ready: bool) -> Phase:
    if stopped:
        return "Stopping" if running else "Stopped"
    return "Running" if ready else "Starting"


IDLE_TIMEOUT = "IdleTimeout"  # the Event's reason


def idle_stop(channel: Channel, *, status: Mapping[str, Any], timeline: Timeline | None, now: datetime) -> str | None:
    """Why a running channel with ``spec.idleTimeout`` must be stopped now (the Event's message),
    or None.  It has been running since its Ready condition turned True (a channel that never
    got ready is not idle, it is starting)."""
    timeout = channel.spec.idle_timeout_seconds
    if timeout is None or channel.spec.stopped:
        return None
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready is None or ready.get("status") != "True" or not ready.get("lastTransitionTime"):
        return None
    since = datetime.fromisoformat(str(ready["lastTransitionTime"]).replace("Z", "+00:00"))
    idle = idle_seconds(timeline, running_since=since, now=now)
    if idle < timeout:
        return None
    return f"no contribution for {idle:.0f} s (spec.idleTimeout {channel.spec.idle_timeout}): stopping the channel"

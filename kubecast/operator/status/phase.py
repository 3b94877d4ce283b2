"""A Channel's lifecycle in its status: ``status.phase`` with the Azure Media Services names,
and the reconcile conditions of a stopped channel.

The phase is a fact for people (``kubectl get channels`` shows it); tools read the conditions,
which say the same: a stopped channel is ``Ready=False`` with reason ``Stopped`` (asked for,
not broken: the Argo CD health check reports it as Suspended), ``Reconciling=True`` while its
pods are still going away (phase Stopping) and ``False`` once none is left (phase Stopped).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

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


def stopped_entries(running: list[str]) -> list[Entry]:
    if running:
        return [
            ("Ready", False, STOPPED, "stopping: " + ", ".join(running) + " still running"),
            ("Reconciling", True, "Stopping", ""),
            ("Stalled", False, STOPPED, ""),
        ]
    return [
        ("Ready", False, STOPPED, "the channel is stopped (spec.state): its publishers are refused"),
        ("Reconciling", False, STOPPED, ""),
        ("Stalled", False, STOPPED, ""),
    ]


def channel_phase(*, stopped: bool, running: list[str], ready: bool) -> Phase:
    if stopped:
        return "Stopping" if running else "Stopped"
    return "Running" if ready else "Starting"

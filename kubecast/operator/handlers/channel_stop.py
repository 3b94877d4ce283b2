"""A stopped Channel stops its running Programs, as ``kubecast up`` does locally: each gets
``spec.state: Stopped`` (with a ``Normal`` Event, reason ``ChannelStopped``), so that it plays on
demand from its start to its end and never records again, as a Program stopped by hand does.

Order matters: the packager freezes a recording (``kubecast.storage.programs.record``) when it
reads the Program's record as Stopped, and a Deployment scaled to zero leaves no packager to read
it.  So the records go to the store here, before the reconcile writes the zero replicas, and the
packager records the programs once more as it shuts down.  The Program's spec is patched too:
the Program's own reconcile republishes its record from the spec, and must not undo the stop.

Only when the channel stops (its phase is not Stopped yet): a Program created for a channel
already stopped is left to record when the channel starts.  A GitOps tool that syncs a
Program's ``state`` from Git would start it again: the README says what to do then.

The channel's own state goes into its control record in the store the same way, before the
replicas change (``record_state``): the ingest of an encoder pod reads it when the pod is told to
stop, and if the channel is stopped it refuses publishers with the reason for a while, as the local
ingest does (``kubecast.ingest.control``).  A started channel's record says Running again before
its pods are back, so that their next stop is not taken for the channel's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast

import kopf
from pydantic import ValidationError

from kubecast.api import API_VERSION, Program, ProgramState
from kubecast.api.loader import ManifestError

from ..store_io import publish_program, request_state
from .common import api, parse_as

CHANNEL_STOPPED = "ChannelStopped"  # the Event's reason


def running_programs(channel: str, programs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The bodies among ``programs`` (a namespace's) that record ``channel`` now.  Pure."""
    return [
        body
        for body in programs
        if (body.get("spec") or {}).get("channelName") == channel
        and (body.get("spec") or {}).get("state", ProgramState.RUNNING.value) == ProgramState.RUNNING.value
        and not (body.get("metadata") or {}).get("deletionTimestamp")
    ]


def stopped_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """``body`` with ``spec.state: Stopped``.  Pure."""
    return {**body, "spec": {**(body.get("spec") or {}), "state": ProgramState.STOPPED.value}}


async def stop_programs(channel: str, namespace: str, logger: kopf.Logger) -> list[str]:
    """Stop the Programs that record ``channel``: their records Stopped in the store first (the
    packager must read them before it goes), then their specs.  Returns their names.  A Program
    that cannot be parsed is skipped (it was never published); storage trouble is logged by
    ``publish_program`` (the packager then freezes the recording when the channel starts)."""
    stopped = []
    for body in running_programs(channel, await api().list(API_VERSION, "Program", namespace)):
        name = body["metadata"]["name"]
        try:
            program = parse_as(Program, stopped_body(body))
        except (ManifestError, ValidationError):
            continue
        await publish_program(program, namespace, logger)
        patched = await api().patch(API_VERSION, "Program", namespace, name, {"spec": {"state": "Stopped"}})
        if patched is None:
            continue  # deleted meanwhile
        message = f"stopped with its channel {channel}: it plays on demand from its start to its end"
        # kopf.event reads only the body's apiVersion, kind and metadata, which the patch's answer has
        kopf.event(cast(kopf.Body, patched), type="Normal", reason=CHANNEL_STOPPED, message=message)
        logger.info("program %s %s", name, message)
        stopped.append(name)
    return stopped


def state_to_record(*, stopped: bool, phase: str | None) -> Literal["Running", "Stopped"] | None:
    """The state the control record must say before this reconcile applies the replicas, or None
    when it cannot say otherwise (a channel that never stopped has no Stopped to undo).  Pure."""
    if stopped:
        return None if phase == "Stopped" else "Stopped"
    return "Running" if phase in ("Stopped", "Stopping") else None


async def record_state(channel: str, namespace: str, *, stopped: bool, phase: str | None, logger: kopf.Logger) -> None:
    """The channel's state in its control record, before its Deployments are scaled.  Storage trouble
    costs only the reason: the going pods then close their ports without it, as before."""
    state = state_to_record(stopped=stopped, phase=phase)
    if state is None:
        return
    try:
        if await request_state(namespace, channel, state):
            logger.info("control record of %s: %s", channel, state)
    except Exception as error:  # noqa: BLE001 - see above
        logger.warning("cannot record %s as %s in the store: %s", channel, state, error)

"""A Program's reconcile (published to the store, its URLs in the status) and its recording report."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
from pydantic import ValidationError

from kubecast.api import Channel, Program, ProgramState, StreamingEndpoint
from kubecast.api.loader import ManifestError
from kubecast.storage import layout

from ..metrics import observed
from ..periodic import every
from ..status import aggregate_program, aggregate_recording, contained
from ..store_io import publish_program, stored_timeline
from .common import (
    GROUP_VERSION,
    STREAM_STATUS_INTERVAL,
    announce_transition,
    api,
    now,
    one_slot,
    parse_as,
    patch_invalid,
    progress_may_wait,
    valid_resources,
)

# How often a Program is refreshed (its Channel and the namespace's endpoints read again, its
# record in the store checked).  A module value read at each wait, so that a test can shorten it.
REFRESH_SECONDS = 30.0


@kopf.on.resume(*GROUP_VERSION, "programs", id="reconcile")
@kopf.on.create(*GROUP_VERSION, "programs", id="reconcile")
@kopf.on.update(*GROUP_VERSION, "programs", id="reconcile", field="spec")
@every(*GROUP_VERSION, "programs", id="refresh", interval=lambda memo: REFRESH_SECONDS, initial_delay=5)
@one_slot
@observed("Program")
async def reconcile_program(
    body: kopf.Body,
    meta: kopf.Meta,
    status: kopf.Status,
    namespace: str,
    patch: kopf.Patch,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    generation = meta.get("generation")
    try:
        program = parse_as(Program, body)
    except (ManifestError, ValidationError) as error:
        patch_invalid(patch, status, generation, error)
        return
    await publish_program(program, namespace, logger)
    channel_body = await api().get("kubecast.io/v1alpha1", "Channel", namespace, program.spec.channel_name)
    channel = None
    if channel_body is not None:
        try:
            channel = parse_as(Channel, channel_body)
        except (ManifestError, ValidationError):
            channel = None
    endpoints = await valid_resources(namespace, StreamingEndpoint)
    previous = dict(status or {})
    new_status = aggregate_program(
        program,
        generation=generation,
        channel=channel,
        endpoints=endpoints,
        namespace=namespace,
        previous=previous,
        now=now(),
    )
    if contained(new_status, previous):
        return  # a refresh that finds nothing new writes nothing
    announce_transition(body, status, new_status, logger)
    patch.status.update(new_status)


@every(*GROUP_VERSION, "programs", id="recording", interval=STREAM_STATUS_INTERVAL)
async def report_recording(
    body: kopf.Body,
    namespace: str,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """``status.recording`` (state and recorded range) comes from the timeline the channel's
    packager records for the program, as ``report_stream`` does for a Channel."""
    try:
        program = parse_as(Program, body)
    except (ManifestError, ValidationError):
        return  # reconcile_program reports an invalid spec
    key = layout.program_timeline_key(program.spec.channel_name, program.name)
    try:
        timeline = await asyncio.wait_for(stored_timeline(namespace, key), 10)
    except Exception as error:  # noqa: BLE001 - storage trouble must not stop the other programs' reports
        logger.warning("cannot read the recording of program %s/%s: %s", namespace, program.name, error)
        return
    recording = aggregate_recording(timeline, program_stopped=program.spec.state is ProgramState.STOPPED)
    previous = dict(status or {})
    if not contained(recording, previous) and not progress_may_wait(memo, recording, previous):
        patch.status.update(recording)

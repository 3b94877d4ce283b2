"""A Channel's reconcile (children applied, status aggregated), its first sight, and the stream
report that brings the data-plane side of its status from the packager's timeline."""

from __future__ import annotations

import time
from typing import Any

import kopf
from pydantic import ValidationError

from kubecast.api import API_VERSION, Channel, ChannelState, StreamingEndpoint
from kubecast.api.loader import ManifestError
from kubecast.media.timeline import Timeline
from kubecast.storage import layout

from .. import lifecycle
from ..metrics import observed
from ..periodic import every
from ..refresh import FULL_APPLY_SECONDS, ChildKey, child_key, fingerprint, needs_apply
from ..rollout import DeploymentState, newer, second_may_roll
from ..settings import OperatorSettings
from ..status import (
    aggregate_channel,
    channel_conditions,
    contained,
    initial_conditions,
    preview_url,
    stream_report,
    waiting_for_secret,
)
from ..status.phase import IDLE_TIMEOUT, idle_stop
from ..store_io import stored_timeline
from . import channel_stop
from .channel_events import status_from_indexes
from .channel_state import (
    DATA_PLANE_MEMO,
    SECOND_HELD,
    build_for,
    encoder_names,
    indexed_states,
    write_channel_status,
)
from .common import (
    APPLIED_MEMO,
    FULL_APPLY_MEMO,
    GROUP_VERSION,
    LAST_STATUS_MEMO,
    STREAM_STATUS_INTERVAL,
    api,
    invalid_status,
    newest_status,
    now,
    one_slot,
    parse_as,
    progress_may_wait,
    secret_error_of,
    status_lock,
    storage_error_of,
    valid_resources,
)

# A full re-apply of every child is a safety net for drift, not the way readiness travels:
# that goes through the Deployment events below, so the resync can be slow and cheap.
RESYNC_SECONDS = 120
SECRET_RECHECK_SECONDS = 10


@kopf.on.resume(*GROUP_VERSION, "channels", id="reconcile")
@kopf.on.create(*GROUP_VERSION, "channels", id="reconcile")
@kopf.on.update(*GROUP_VERSION, "channels", id="reconcile", field="spec")
async def handle_channel(**kwargs: Any) -> None:
    """kopf's one change handler of a Channel (one, so that kopf records it in one patch of the
    Channel, not one per handler): a Channel seen for the first time gets its conditions as
    Unknown before it waits for a reconcile slot (held back a moment like any progress, so a
    reconcile that follows at once replaces it), then the reconcile."""
    memo: kopf.Memo = kwargs["memo"]
    body, status, logger = kwargs["body"], kwargs["status"], kwargs["logger"]
    async with status_lock(memo):
        seen = newest_status(memo, status).get("conditions") or []
        if not any(c.get("type") == "Ready" for c in seen):
            generation = kwargs["meta"].get("generation")
            initial = channel_conditions(initial_conditions(generation, now()), seen, memo.get(DATA_PLANE_MEMO))
            await write_channel_status(memo, body, status, {"conditions": initial}, logger)
    await reconcile_channel(**kwargs)


def _refresh_interval(memo: kopf.Memo) -> float:
    """A Channel waiting for a Secret looks again soon (the operator may only get Secrets by name,
    not watch them), any other every RESYNC_SECONDS."""
    return SECRET_RECHECK_SECONDS if waiting_for_secret(memo.get(LAST_STATUS_MEMO) or {}) else RESYNC_SECONDS


@every(*GROUP_VERSION, "channels", id="refresh", interval=_refresh_interval, initial_delay=_refresh_interval)
@one_slot
@observed("Channel")
async def reconcile_channel(
    body: kopf.Body,
    meta: kopf.Meta,
    status: kopf.Status,
    namespace: str,
    uid: str,
    patch: kopf.Patch,
    memo: kopf.Memo,
    channel_deployments: kopf.Index[Any, Any],
    channel_services: kopf.Index[Any, Any],
    channel_programs: kopf.Index[Any, Any],
    logger: kopf.Logger,
    periodic: bool = False,
    **_: Any,
) -> None:
    generation = meta.get("generation")
    try:
        parsed, children = build_for(memo, body, uid, namespace)
    except (ManifestError, ValidationError) as error:
        async with status_lock(memo):
            invalid = invalid_status(newest_status(memo, status), generation, error, memo.get(DATA_PLANE_MEMO))
            await write_channel_status(memo, body, status, invalid, logger)
        return
    channel = parsed.channel
    # The whole reconcile holds the Channel's status lock: a Deployment event meanwhile (each
    # apply makes one) waits and then finds its news in the status this reconcile writes, rather
    # than writing a status of its own for each (each write is also a watch event kopf processes:
    # bench/operator_scale.py counts the status writes per Channel).
    async with status_lock(memo):
        if channel.spec.stopped and newest_status(memo, status).get("phase") != "Stopped":
            await channel_stop.stop_programs(channel.name, namespace, logger)  # before the zero replicas
        secret_error = await secret_error_of(namespace, channel)
        storage_error = await storage_error_of(namespace)
        applied_states: dict[str, DeploymentState] = {}
        services: dict[str, dict[str, Any] | None] = {}
        wanted: dict[str, str] = {}
        key = (namespace, channel.name)
        if secret_error is None and storage_error is None:
            phase = newest_status(memo, status).get("phase")
            await channel_stop.record_state(
                channel.name, namespace, stopped=channel.spec.stopped, phase=phase, logger=logger
            )
            wanted = parsed.wanted
            first, second = encoder_names(channel.name)
            held = not second_may_roll(
                wanted[first], wanted[second], *indexed_states(channel_deployments, key, first, second)
            )
            if held:
                logger.info("encoder B keeps its spec until encoder A runs the new one and is ready")
            applied_before: dict[ChildKey, str] = memo.setdefault(APPLIED_MEMO, {})
            last_full = memo.get(FULL_APPLY_MEMO)
            full = not periodic or last_full is None or time.monotonic() - last_full >= FULL_APPLY_SECONDS
            watched_services = dict(channel_services.get(key, []))
            watched = {("Deployment", name) for name, _ in channel_deployments.get(key, [])}
            watched |= {("Service", name) for name in watched_services}
            for child in children:
                name = child["metadata"]["name"]
                if held and name == second and child["kind"] in SECOND_HELD:
                    continue
                if not needs_apply(child, applied=applied_before, watched=watched, full=full):
                    if child["kind"] == "Service":
                        services[name] = watched_services[name]
                    continue  # a Deployment's state comes from the index below
                applied = await api().apply(child)
                applied_before[child_key(child)] = fingerprint(child)
                if child["kind"] == "Deployment":
                    applied_states[name] = DeploymentState.of(applied)
                elif child["kind"] == "Service":
                    services[name] = applied
            if full:
                memo[FULL_APPLY_MEMO] = time.monotonic()
            if not periodic:  # a spec change (or a restart) is what can leave a child unwanted
                await lifecycle.prune("Channel", channel.name, namespace, uid, children, logger)
        await lifecycle.release_orphans(namespace, channel.name, channel_programs, logger)
        preview = preview_url(channel, await valid_resources(namespace, StreamingEndpoint), namespace)
        # A Deployment that changed while the children were being applied has told the index
        # (its event) after the apply answered: the newer of the two, or this write would put back
        # an older view and nothing would correct it before the next resync.  One held back (B)
        # is only in the index.
        indexed = dict(channel_deployments.get(key, []))
        deployments = {name: newer(applied_states.get(name), indexed.get(name)) for name in {*applied_states, *indexed}}
        previous = newest_status(memo, status)
        new_status = aggregate_channel(
            channel,
            generation=generation,
            deployments=deployments,
            services=services,
            secret_error=secret_error,
            previous=previous,
            now=now(),
            ingest_domain=OperatorSettings.from_environment().ingest_domain,
            data_plane=memo.get(DATA_PLANE_MEMO),
            preview=preview,
            wanted=wanted,
            storage_error=storage_error,
        )
        if contained(new_status, previous):
            return  # a refresh that finds nothing new writes nothing
        await write_channel_status(memo, body, status, new_status, logger)


async def stop_when_idle(
    body: kopf.Body, namespace: str, status: kopf.Status, timeline: Timeline | None, logger: kopf.Logger
) -> None:
    """spec.idleTimeout: a channel without a contribution for that long is stopped, with an Event.
    The spec is patched at once (a daemon's kopf patch would wait for the daemon to end)."""
    try:
        channel = parse_as(Channel, body)
    except (ManifestError, ValidationError):
        return  # the reconcile says what is wrong with it
    message = idle_stop(channel, status=dict(status or {}), timeline=timeline, now=now())
    if message is None:
        return
    stop = {"spec": {"state": ChannelState.STOPPED.value}}
    if await api().patch(API_VERSION, "Channel", namespace, channel.name, stop) is not None:
        kopf.event(body, type="Normal", reason=IDLE_TIMEOUT, message=message)
        logger.info("%s", message)


@every(*GROUP_VERSION, "channels", id="stream", interval=STREAM_STATUS_INTERVAL)
async def report_stream(
    body: kopf.Body,
    meta: kopf.Meta,
    name: str,
    namespace: str,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    channel_bodies: kopf.Index[Any, Any],
    channel_deployments: kopf.Index[Any, Any],
    channel_services: kopf.Index[Any, Any],
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """The media side of the status (live encoders, failovers, the data-plane conditions such as
    KeyframesAligned) comes from the timeline the packager writes; a failover or a misaligned
    contribution since the last report becomes a Warning event."""
    try:
        timeline = await stored_timeline(namespace, layout.timeline_key(name))
    except Exception as error:  # noqa: BLE001 - storage trouble must not stop the other channels' reports
        logger.warning("cannot read the timeline of %s/%s: %s", namespace, name, error)
        return
    await stop_when_idle(body, namespace, status, timeline, logger)
    if timeline is None:
        return  # no contribution yet
    at, known = now(), memo.get(DATA_PLANE_MEMO)
    report = stream_report(
        timeline, status=dict(status or {}), reported=known, generation=meta.get("generation"), now=at
    )
    if "conditions" in report.status and dict(status or {}).get("observedGeneration") is None:
        # The Channel's own handlers have not written their conditions yet: the next report
        # sends these, and their events (memo is left as it was so that it sees the change).
        report.status.pop("conditions")
        report.warnings.clear()
    elif "conditions" in report.status:
        # The whole list goes out (rarely: the data-plane part changed), computed as the
        # Deployment events compute it, from the indexes and the memo just updated.
        report.status.pop("conditions")
        memo[DATA_PLANE_MEMO] = report.data_plane
        await status_from_indexes((namespace, name), channel_bodies, channel_deployments, channel_services, logger)
    else:
        memo[DATA_PLANE_MEMO] = report.data_plane
    for reason, message in report.warnings:
        kopf.event(body, type="Warning", reason=reason, message=message)
        logger.warning("%s", message)
    if report.status and progress_may_wait(memo, report.status, dict(status or {})):
        return
    if report.status:
        patch.status.update(report.status)

"""kopf handlers: thin.  They parse the resource, call the pure builders and aggregators, apply
the children and patch the status; all decisions live in builders/ and status.py, and the
store's reads and writes in store_io.py.

Handlers kopf calls directly take ``namespace: str``: every kind here is namespaced, so kopf passes a
str, though its handler protocols allow None (hence the ``type: ignore[arg-type]`` on them)."""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar, cast

import kopf
from pydantic import ValidationError

from kubecast.api import Channel, Program, ProgramState, StreamingEndpoint
from kubecast.api.loader import ManifestError, parse_document
from kubecast.storage import layout

from .api import KubeApi
from .builders import INSTANCES, build_channel_children, build_endpoint_children, secret_references
from .builders.access import endpoint_secret_references
from .metrics import observed
from .periodic import every
from .refresh import FULL_APPLY_SECONDS, ChildKey, child_key, fingerprint, needs_apply
from .rollout import DeploymentState, newer, second_may_roll, wanted_hashes
from .settings import OperatorSettings
from .status import (
    PROGRESS_SECONDS,
    WAITING_FOR_SECRET,
    aggregate_channel,
    aggregate_endpoint,
    aggregate_program,
    aggregate_recording,
    channel_conditions,
    conditions,
    contained,
    initial_conditions,
    preview_url,
    progress_only,
    secret_problems,
    storage_secret_problem,
    stream_report,
    waiting_for_secret,
)
from .store_io import publish_program, stored_timeline

GROUP_VERSION = ("kubecast.io", "v1alpha1")
CHANNEL_LABEL = "kubecast.io/channel"
# A full re-apply of every child is a safety net for drift, not the way readiness travels:
# that goes through the Deployment events below, so the resync can be slow and cheap.
RESYNC_SECONDS = 120
SECRET_RECHECK_SECONDS = 10
CLIENT: dict[str, KubeApi] = {}
# In a Channel's kopf memo (in memory, per object, forgotten with it): the data-plane conditions
# report_stream last derived.  The other writers of status.conditions carry these rather than
# the ones in the status they were handed, which lags: kopf updates a Channel's body and
# indexes only between that Channel's handlers, so not during a reconcile (seconds of applies).
DATA_PLANE_MEMO = "dataPlaneConditions"
# Also in the memo: the lock every writer of a Channel's conditions holds while it computes and
# sends the whole list, and the status it last sent.  The list goes out whole (a merge patch
# replaces it), so a list computed before another writer's newer one and sent after it would
# drop that writer's part.  Under the lock, each write is computed from the newest parts and
# sent at once, not left in kopf's patch to be applied after the handler returns.
STATUS_LOCK_MEMO = "statusLock"
LAST_STATUS_MEMO = "lastStatus"
# Also in the memo: the fingerprint of each child as last applied, and when every child was last
# applied: a refresh applies only what changed or went away (refresh.py).
APPLIED_MEMO = "appliedChildren"
FULL_APPLY_MEMO = "fullApplyAt"
PROGRESS_MEMO = "progressWrittenAt"  # when a report last wrote its progress fields


def api() -> KubeApi:
    return CLIENT["api"]


def now() -> datetime:
    return datetime.now(timezone.utc)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # kopf's own bookkeeping goes into annotations under our prefix, never into status.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="kubecast.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="kubecast.io", key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING
    # The chart installs the CRDs before the operator starts: kopf finds them by discovery and
    # need not watch CustomResourceDefinitions (nor be allowed to).
    settings.scanning.disabled = True


@kopf.on.login()
def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo | None:
    info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(settings=settings)
    if info is not None:  # kopf logs in again after a 401: the client then uses the new credentials
        CLIENT["api"] = KubeApi.from_connection_info(info)
    return info


@kopf.on.cleanup()
async def close_client(**_: Any) -> None:
    if "api" in CLIENT:
        await CLIENT["api"].close()


def parse(body: Mapping[str, Any]) -> Channel | Program | StreamingEndpoint:
    document = {key: body.get(key) for key in ("apiVersion", "kind", "spec") if body.get(key) is not None}
    document["metadata"] = {"name": body["metadata"]["name"], "namespace": body["metadata"].get("namespace", "default")}
    return parse_document(document, f"{body['kind']} {body['metadata']['name']}")


Resource = TypeVar("Resource", Channel, Program, StreamingEndpoint)


def parse_as(model: type[Resource], body: Mapping[str, Any]) -> Resource:
    """``parse`` of a body whose kind the handler knows (the one it watches)."""
    resource = parse(body)
    if not isinstance(resource, model):
        raise ManifestError(f"{body['kind']} {body['metadata']['name']}: not a {model.__name__}")
    return resource


def _invalid_status(
    status: Mapping[str, Any] | None,
    generation: int | None,
    error: Exception,
    data_plane: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    message = str(error).split(": ", 1)[-1]
    previous = dict(status or {}).get("conditions")
    # A Channel's data-plane conditions still describe its running stream: kept, not dropped.
    return {
        "observedGeneration": generation,
        "conditions": channel_conditions(
            conditions(
                previous,
                generation,
                now(),
                ("Ready", False, "InvalidSpec", message),
                ("Reconciling", False, "InvalidSpec", ""),
                ("Stalled", True, "InvalidSpec", message),
            ),
            previous,
            data_plane,
        ),
    }


def _invalid(patch: kopf.Patch, status: Mapping[str, Any] | None, generation: int | None, error: Exception) -> None:
    patch.status.update(_invalid_status(status, generation, error))


@kopf.on.create(*GROUP_VERSION, "streamingendpoints", id="observe")
@kopf.on.create(*GROUP_VERSION, "programs", id="observe")
async def observe(meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch, **_: Any) -> None:
    patch.status["conditions"] = channel_conditions(
        initial_conditions(meta.get("generation"), now()), dict(status or {}).get("conditions")
    )


@kopf.on.create(*GROUP_VERSION, "channels", id="observe")  # type: ignore[arg-type]
async def observe_channel(
    meta: kopf.Meta, status: kopf.Status, name: str, namespace: str, memo: kopf.Memo, **_: Any
) -> None:
    # report_stream starts with the object, so a Channel whose timeline exists may have its
    # data-plane conditions before this first sight: kept.
    async with _status_lock(memo):
        previous = _newest_status(memo, status)
        initial = channel_conditions(
            initial_conditions(meta.get("generation"), now()), previous.get("conditions"), memo.get(DATA_PLANE_MEMO)
        )
        await _write_channel_status(memo, namespace, name, {"conditions": initial})


async def _resources(namespace: str, model: type[Resource]) -> list[Resource]:
    """The namespace's valid resources of a kind (an invalid one has its own InvalidSpec)."""
    kind = model.__name__
    parsed = []
    for item in await api().list("kubecast.io/v1alpha1", kind, namespace):
        try:
            parsed.append(parse_as(model, {**item, "kind": kind, "apiVersion": "kubecast.io/v1alpha1"}))
        except (ManifestError, ValidationError):
            continue
    return parsed


async def _storage_error(namespace: str) -> str | None:
    name = OperatorSettings.from_environment().store_credentials_secret
    return storage_secret_problem(name, namespace, await api().get("v1", "Secret", namespace, name) if name else None)


async def _secret_error(namespace: str, channel: Channel | StreamingEndpoint) -> str | None:
    references = secret_references(channel) if isinstance(channel, Channel) else endpoint_secret_references(channel)
    secrets: dict[str, dict[str, Any] | None] = {}
    for _, ref, _ in references:
        if ref.name not in secrets:
            secrets[ref.name] = await api().get("v1", "Secret", namespace, ref.name)
    return secret_problems(references, secrets)


def _refresh_interval(memo: kopf.Memo) -> float:
    """A Channel waiting for a Secret looks again soon (the operator may only get Secrets by name,
    not watch them), any other every RESYNC_SECONDS."""
    return SECRET_RECHECK_SECONDS if waiting_for_secret(memo.get(LAST_STATUS_MEMO) or {}) else RESYNC_SECONDS


@kopf.on.resume(*GROUP_VERSION, "channels", id="reconcile")
@kopf.on.create(*GROUP_VERSION, "channels", id="reconcile")
@kopf.on.update(*GROUP_VERSION, "channels", id="reconcile", field="spec")
@every(*GROUP_VERSION, "channels", id="refresh", interval=_refresh_interval, initial_delay=_refresh_interval)
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
        channel = parse_as(Channel, body)
    except (ManifestError, ValidationError) as error:
        async with _status_lock(memo):
            invalid = _invalid_status(_newest_status(memo, status), generation, error, memo.get(DATA_PLANE_MEMO))
            await _write_channel_status(memo, namespace, body["metadata"]["name"], invalid)
        return
    secret_error = await _secret_error(namespace, channel)
    storage_error = await _storage_error(namespace)
    applied_states: dict[str, DeploymentState] = {}
    services: dict[str, dict[str, Any] | None] = {}
    wanted: dict[str, str] = {}
    key = (namespace, channel.name)
    if secret_error is None and storage_error is None:
        children = _built(channel, uid, namespace)
        wanted = wanted_hashes(children)
        first, second = _encoder_names(channel.name)
        held = not second_may_roll(wanted[first], wanted[second], *_states(channel_deployments, key, first, second))
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
    preview = preview_url(channel, await _resources(namespace, StreamingEndpoint), namespace)
    async with _status_lock(memo):
        # A Deployment that changed while the children were being applied has told the index
        # (its event) after the apply answered: the newer of the two, or this write would put back
        # an older view and nothing would correct it before the next resync.  One held back (B)
        # is only in the index.
        indexed = dict(channel_deployments.get(key, []))
        deployments = {name: newer(applied_states.get(name), indexed.get(name)) for name in {*applied_states, *indexed}}
        previous = _newest_status(memo, status)
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
        _announce_transition(body, previous, new_status, logger)
        await _write_channel_status(memo, namespace, channel.name, new_status)


# What encoder B keeps while A rolls a new spec: its pod template and the ConfigMap its pod
# reads the Channel from at start (a restart of B meanwhile must not pick up the new spec).
SECOND_HELD = ("Deployment", "ConfigMap")


def _encoder_names(channel: str) -> tuple[str, str]:
    first, second = (f"{channel}-encoder-{i.lower()}" for i in INSTANCES)
    return first, second


def _built(channel: Channel, uid: str, namespace: str) -> list[dict[str, Any]]:
    return build_channel_children(channel, uid=uid, namespace=namespace, settings=OperatorSettings.from_environment())


def _states(index: kopf.Index[Any, Any], key: tuple[str, str], *names: str) -> list[DeploymentState | None]:
    indexed = dict(index.get(key, []))
    return [indexed.get(name) for name in names]


def _status_lock(memo: kopf.Memo) -> asyncio.Lock:
    lock = memo.get(STATUS_LOCK_MEMO)
    if lock is None:
        lock = memo[STATUS_LOCK_MEMO] = asyncio.Lock()
    return lock


def _newest_status(memo: kopf.Memo, handed: Mapping[str, Any] | None) -> dict[str, Any]:
    """The status this operator last wrote, else the one kopf handed over (which lags: kopf
    refreshes a Channel's body only between its handlers)."""
    return copy.deepcopy(memo.get(LAST_STATUS_MEMO) or dict(handed or {}))


async def _write_channel_status(memo: kopf.Memo, namespace: str, name: str, new_status: dict[str, Any]) -> None:
    await api().patch_status("kubecast.io/v1alpha1", "Channel", namespace, name, new_status)
    memo[LAST_STATUS_MEMO] = {**(memo.get(LAST_STATUS_MEMO) or {}), **copy.deepcopy(new_status)}


STREAM_STATUS_INTERVAL = float(os.environ.get("KUBECAST_STREAM_STATUS_INTERVAL", "30"))


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
        await _status_from_indexes((namespace, name), channel_bodies, channel_deployments, channel_services, logger)
    else:
        memo[DATA_PLANE_MEMO] = report.data_plane
    for reason, message in report.warnings:
        kopf.event(body, type="Warning", reason=reason, message=message)
        logger.warning("%s", message)
    if report.status and _progress_may_wait(memo, report.status, dict(status or {})):
        return
    if report.status:
        patch.status.update(report.status)


def _progress_may_wait(memo: kopf.Memo, new: dict[str, Any], previous: dict[str, Any]) -> bool:
    """Whether a periodic report that moves only progress fields waits (status.PROGRESS_SECONDS);
    when it does not, its write is noted as the latest."""
    last = memo.get(PROGRESS_MEMO)
    if progress_only(new, previous) and last is not None and time.monotonic() - last < PROGRESS_SECONDS:
        return True
    memo[PROGRESS_MEMO] = time.monotonic()
    return False


# The indexes and event handlers here are coroutines, though they never wait: kopf runs a plain
# function in a thread, and that hand-off for each event was the operator's largest cost at 1000
# Channels (bench/operator_scale.py).
@kopf.index(*GROUP_VERSION, "channels")  # type: ignore[arg-type]
async def channel_bodies(
    body: kopf.Body, name: str, namespace: str, memo: kopf.Memo, **_: Any
) -> dict[tuple[str, str], Any]:
    # "memo" is the Channel's kopf memo itself, not a copy: the Deployment handlers read the
    # newest data-plane conditions from it, however far this copy of the status lags.
    return {
        (namespace, name): {
            "apiVersion": body.get("apiVersion"),
            "kind": body.get("kind"),
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": body.get("metadata", {}).get("uid"),
                "generation": body.get("metadata", {}).get("generation"),
            },
            "spec": copy.deepcopy(dict(body.get("spec") or {})),
            "status": copy.deepcopy(dict(body.get("status") or {})),
            "memo": memo,
        }
    }


@kopf.index("apps", "v1", "deployments", labels={CHANNEL_LABEL: kopf.PRESENT})  # type: ignore[arg-type]
async def channel_deployments(
    name: str, namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], Any]:
    return {(namespace, labels[CHANNEL_LABEL]): (name, DeploymentState.of(body))}


@kopf.index("v1", "services", labels={CHANNEL_LABEL: kopf.PRESENT})  # type: ignore[arg-type]
async def channel_services(
    name: str, namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], Any]:
    return {
        (namespace, labels[CHANNEL_LABEL]): (
            name,
            {
                "metadata": {"name": name, "namespace": namespace},
                "spec": copy.deepcopy(dict(body.get("spec") or {})),
                "status": copy.deepcopy(dict(body.get("status") or {})),
            },
        )
    }


@kopf.on.event("apps", "v1", "deployments", labels={CHANNEL_LABEL: kopf.PRESENT})  # type: ignore[arg-type]
async def channel_child_changed(
    labels: kopf.Labels,
    namespace: str,
    channel_bodies: kopf.Index[Any, Any],
    channel_deployments: kopf.Index[Any, Any],
    channel_services: kopf.Index[Any, Any],
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """Readiness travels up as it happens: an encoder or packager that becomes ready (or goes
    away) updates its Channel's status from the operator's in-memory indexes, without a request
    other than the status patch itself — which is what keeps 1000 channels cheap.  Encoder A
    having rolled out a new spec is also what starts encoder B's rollout."""
    key = (namespace, labels[CHANNEL_LABEL])
    await _status_from_indexes(key, channel_bodies, channel_deployments, channel_services, logger)
    await _roll_second(key, channel_bodies, channel_deployments, logger)


async def _roll_second(
    key: tuple[str, str],
    channel_bodies: kopf.Index[Any, Any],
    channel_deployments: kopf.Index[Any, Any],
    logger: kopf.Logger,
) -> None:
    """Give encoder B the new spec as soon as A runs it and is ready (B's ConfigMap, then its
    Deployment).  Nothing when B already has it, so B's own events end here."""
    body = next(iter(channel_bodies.get(key, [])), None)
    if body is None or _blocked(_newest_status(body["memo"], body.get("status"))):
        return
    try:
        channel = parse_as(Channel, body)
    except (ManifestError, ValidationError):
        return
    children = _built(channel, body["metadata"]["uid"], key[0])
    wanted = wanted_hashes(children)
    first, second = _encoder_names(channel.name)
    first_state, second_state = _states(channel_deployments, key, first, second)
    if second_state is None or second_state.spec_hash == wanted[second]:
        return  # not made yet (the reconcile makes it), or already on the new spec
    if not second_may_roll(wanted[first], wanted[second], first_state, second_state):
        return
    logger.info("encoder A runs the new spec and is ready: rolling encoder B")
    for child in children:
        if child["metadata"]["name"] == second and child["kind"] in SECOND_HELD:
            await api().apply(child)


def _blocked(status: dict[str, Any]) -> bool:
    """A missing Secret or an invalid spec: only a reconcile, which re-reads them, may go on."""
    return any(c.get("reason") in (*WAITING_FOR_SECRET, "InvalidSpec") for c in status.get("conditions", []))


async def _status_from_indexes(
    key: tuple[str, str],
    channel_bodies: kopf.Index[Any, Any],
    channel_deployments: kopf.Index[Any, Any],
    channel_services: kopf.Index[Any, Any],
    logger: kopf.Logger,
) -> None:
    """The Channel's status from the indexes and its memo: the one computation both the
    Deployment events and the stream reports write conditions with, so neither puts back an
    older view of the other's part."""
    namespace = key[0]
    body = next(iter(channel_bodies.get(key, [])), None)
    if body is None:
        return
    memo = body["memo"]
    try:
        channel = parse(body)
    except (ManifestError, ValidationError):
        return
    async with _status_lock(memo):
        previous = _newest_status(memo, body.get("status"))
        if _blocked(previous):
            return  # only a reconcile, which re-reads the Secret and spec, may clear those
        wanted = wanted_hashes(_built(channel, body["metadata"]["uid"], namespace))
        new_status = aggregate_channel(
            channel,
            generation=body["metadata"]["generation"],
            deployments=dict(channel_deployments.get(key, [])),
            services=dict(channel_services.get(key, [])),
            secret_error=None,
            previous=previous,
            now=now(),
            ingest_domain=OperatorSettings.from_environment().ingest_domain,
            data_plane=memo.get(DATA_PLANE_MEMO),
            preview=previous.get("previewUrl"),  # the reconcile's, which lists the endpoints
            wanted=wanted,
        )
        if contained(new_status, previous):
            return
        _announce_transition(body, previous, new_status, logger)
        await _write_channel_status(memo, namespace, channel.name, new_status)


def _announce_transition(
    body: Mapping[str, Any], old_status: Mapping[str, Any] | None, new_status: dict[str, Any], logger: kopf.Logger
) -> None:
    before = {c["type"]: c["status"] for c in (old_status or {}).get("conditions", [])}.get("Ready")
    ready = next(c for c in new_status["conditions"] if c["type"] == "Ready")
    if before != ready["status"]:
        # kopf.event reads only the body's apiVersion, kind and metadata, which an index's plain dict has too
        kopf.event(
            cast(kopf.Body, body),
            type="Normal" if ready["status"] == "True" else "Warning",
            reason=ready["reason"],
            message=ready["message"] or ready["reason"],
        )
        logger.info("Ready is now %s (%s)", ready["status"], ready["reason"])


@kopf.on.resume(*GROUP_VERSION, "streamingendpoints", id="reconcile")
@kopf.on.create(*GROUP_VERSION, "streamingendpoints", id="reconcile")
@kopf.on.update(*GROUP_VERSION, "streamingendpoints", id="reconcile", field="spec")
@every(*GROUP_VERSION, "streamingendpoints", id="refresh", interval=30, initial_delay=10)
@observed("StreamingEndpoint")
async def reconcile_endpoint(
    body: kopf.Body,
    meta: kopf.Meta,
    status: kopf.Status,
    namespace: str,
    uid: str,
    patch: kopf.Patch,
    logger: kopf.Logger,
    periodic: bool = False,
    **_: Any,
) -> None:
    generation = meta.get("generation")
    try:
        endpoint = parse_as(StreamingEndpoint, body)
    except (ManifestError, ValidationError) as error:
        _invalid(patch, status, generation, error)
        return
    deployment = None
    secret_error = await _secret_error(namespace, endpoint)
    # The namespace's Channels: their preview allow-lists are enforced here (a change reaches
    # the endpoint with this refresh).
    channels = await _resources(namespace, Channel)
    if secret_error is None:
        children = build_endpoint_children(
            endpoint, uid=uid, namespace=namespace, settings=OperatorSettings.from_environment(), channels=channels
        )
        for child in children:
            applied = await api().apply(child)
            if child["kind"] == "Deployment":
                deployment = applied.get("status")
        if not periodic:
            await lifecycle.prune("StreamingEndpoint", endpoint.name, namespace, uid, children, logger)
    new_status = aggregate_endpoint(
        endpoint,
        generation=generation,
        deployment=deployment,
        namespace=namespace,
        previous=dict(status or {}),
        now=now(),
        secret_error=secret_error,
    )
    _announce_transition(body, status, new_status, logger)
    patch.status.update(new_status)


@kopf.on.resume(*GROUP_VERSION, "programs", id="reconcile")
@kopf.on.create(*GROUP_VERSION, "programs", id="reconcile")
@kopf.on.update(*GROUP_VERSION, "programs", id="reconcile", field="spec")
@every(*GROUP_VERSION, "programs", id="refresh", interval=30, initial_delay=5)
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
        _invalid(patch, status, generation, error)
        return
    await publish_program(program, namespace, logger)
    channel_body = await api().get("kubecast.io/v1alpha1", "Channel", namespace, program.spec.channel_name)
    channel = None
    if channel_body is not None:
        try:
            channel = parse_as(Channel, channel_body)
        except (ManifestError, ValidationError):
            channel = None
    endpoints = await _resources(namespace, StreamingEndpoint)
    new_status = aggregate_program(
        program,
        generation=generation,
        channel=channel,
        endpoints=endpoints,
        namespace=namespace,
        previous=dict(status or {}),
        now=now(),
    )
    _announce_transition(body, status, new_status, logger)
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
    if not contained(recording, previous) and not _progress_may_wait(memo, recording, previous):
        patch.status.update(recording)


# Registered last: they use what this module defines.
from . import lifecycle  # noqa: E402

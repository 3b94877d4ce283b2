"""A StreamingEndpoint's reconcile: its children applied, its status aggregated.

As for a Channel, readiness travels up with the Deployment's watch events (the index and event
handler below), and the refresh applies a child again only when the operator now builds it
differently, or the watch no longer has the Deployment (refresh.py); every write of the status
is one that changes it, so a steady endpoint costs no API write."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import kopf
from pydantic import ValidationError

from kubecast.api import Channel, StreamingEndpoint
from kubecast.api.loader import ManifestError

from .. import lifecycle
from ..builders import build_endpoint_children
from ..metrics import observed
from ..periodic import every
from ..refresh import FULL_APPLY_SECONDS, ChildKey, child_key, fingerprint, needs_apply
from ..rollout import DeploymentState, newer, wanted_hashes
from ..settings import OperatorSettings
from ..status import aggregate_endpoint, contained, waiting_for_secret
from .common import (
    APPLIED_MEMO,
    FULL_APPLY_MEMO,
    GROUP_VERSION,
    LAST_STATUS_MEMO,
    announce_transition,
    api,
    blocked,
    invalid_status,
    newest_status,
    now,
    one_slot,
    parse_as,
    secret_error_of,
    status_lock,
    storage_error_of,
    valid_resources,
    write_status,
)

ENDPOINT_LABEL = "kubecast.io/endpoint"
# How often an endpoint is refreshed: its Secrets and the namespace's Channels read again (their
# preview allow-lists are the endpoint's to enforce), and what changed applied.  A module value
# read at each wait, so that a test can shorten it.
REFRESH_SECONDS = 30.0
SECRET_RECHECK_SECONDS = 10.0
# In the endpoint's memo: what its last reconcile built (the Deployment events report against it).
BUILT_MEMO = "builtDeployment"


@dataclass(frozen=True)
class Built:
    generation: int | None  # the endpoint's metadata.generation the reconcile built from
    spec_hash: str | None  # the spec hash of the Deployment it built


def deployment_name(endpoint: str) -> str:
    return f"{endpoint}-endpoint"


def _refresh_interval(memo: kopf.Memo) -> float:
    """An endpoint waiting for a Secret looks again soon (the operator may only get Secrets by
    name, not watch them), any other every REFRESH_SECONDS."""
    return SECRET_RECHECK_SECONDS if waiting_for_secret(memo.get(LAST_STATUS_MEMO) or {}) else REFRESH_SECONDS


def _indexed(index: kopf.Index[Any, Any], key: tuple[str, str]) -> DeploymentState | None:
    return dict(index.get(key, [])).get(deployment_name(key[1]))


@kopf.on.resume(*GROUP_VERSION, "streamingendpoints", id="reconcile")
@kopf.on.create(*GROUP_VERSION, "streamingendpoints", id="reconcile")
@kopf.on.update(*GROUP_VERSION, "streamingendpoints", id="reconcile", field="spec")
@every(*GROUP_VERSION, "streamingendpoints", id="refresh", interval=_refresh_interval, initial_delay=10)
@one_slot
@observed("StreamingEndpoint")
async def reconcile_endpoint(
    body: kopf.Body,
    meta: kopf.Meta,
    status: kopf.Status,
    namespace: str,
    uid: str,
    memo: kopf.Memo,
    endpoint_deployments: kopf.Index[Any, Any],
    logger: kopf.Logger,
    periodic: bool = False,
    **_: Any,
) -> None:
    generation = meta.get("generation")
    name = body["metadata"]["name"]
    try:
        endpoint = parse_as(StreamingEndpoint, body)
    except (ManifestError, ValidationError) as error:
        async with status_lock(memo):
            previous = newest_status(memo, status)
            invalid = invalid_status(previous, generation, error)
            if not contained(invalid, previous):
                await write_status(memo, "StreamingEndpoint", namespace, name, invalid)
        return
    key = (namespace, name)
    applied_state = None
    wanted = None
    secret_error = await secret_error_of(namespace, endpoint)
    # Its pods take the object storage credentials as envFrom, as a Channel's do.
    storage_error = await storage_error_of(namespace, pods="endpoint pods")
    # The namespace's Channels: their preview allow-lists are enforced here (a change reaches
    # the endpoint with this refresh).
    channels = await valid_resources(namespace, Channel)
    if secret_error is None and storage_error is None:
        children = build_endpoint_children(
            endpoint, uid=uid, namespace=namespace, settings=OperatorSettings.from_environment(), channels=channels
        )
        wanted = wanted_hashes(children).get(deployment_name(name))
        applied_before: dict[ChildKey, str] = memo.setdefault(APPLIED_MEMO, {})
        last_full = memo.get(FULL_APPLY_MEMO)
        full = not periodic or last_full is None or time.monotonic() - last_full >= FULL_APPLY_SECONDS
        watched = {("Deployment", child) for child, _ in endpoint_deployments.get(key, [])}
        for child in children:
            if not needs_apply(
                child, applied=applied_before, watched=watched, full=full, watched_kinds=("Deployment",)
            ):
                continue
            applied = await api().apply(child)
            applied_before[child_key(child)] = fingerprint(child)
            if child["kind"] == "Deployment":
                applied_state = DeploymentState.of(applied)
        if full:
            memo[FULL_APPLY_MEMO] = time.monotonic()
        memo[BUILT_MEMO] = Built(generation, wanted)
        if not periodic:  # a spec change (or a restart) is what can leave a child unwanted
            await lifecycle.prune("StreamingEndpoint", endpoint.name, namespace, uid, children, logger)
    async with status_lock(memo):
        # The newer of the apply's answer and the watch's view (an event after the answer).
        deployment = newer(applied_state, _indexed(endpoint_deployments, key))
        previous = newest_status(memo, status)
        new_status = aggregate_endpoint(
            endpoint,
            generation=generation,
            deployment=deployment,
            wanted=wanted,
            namespace=namespace,
            previous=previous,
            now=now(),
            secret_error=secret_error,
            storage_error=storage_error,
        )
        if contained(new_status, previous):
            return  # a refresh that finds nothing new writes nothing
        announce_transition(body, previous, new_status, logger)
        await write_status(memo, "StreamingEndpoint", namespace, name, new_status)


@kopf.index(*GROUP_VERSION, "streamingendpoints")  # type: ignore[arg-type]
async def endpoint_bodies(
    body: kopf.Body, name: str, namespace: str, memo: kopf.Memo, **_: Any
) -> dict[tuple[str, str], Any]:
    # "memo" is the endpoint's kopf memo itself: the Deployment events take the lock, the last
    # status and what the reconcile built from it.
    return {
        (namespace, name): {
            "apiVersion": body.get("apiVersion"),
            "kind": body.get("kind"),
            "metadata": {
                "name": name,
                "namespace": namespace,
                "generation": body.get("metadata", {}).get("generation"),
            },
            "spec": dict(body.get("spec") or {}),
            "status": dict(body.get("status") or {}),
            "memo": memo,
        }
    }


@kopf.index("apps", "v1", "deployments", labels={ENDPOINT_LABEL: kopf.PRESENT})  # type: ignore[arg-type]
async def endpoint_deployments(
    name: str, namespace: str, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], Any]:
    return {(namespace, labels[ENDPOINT_LABEL]): (name, DeploymentState.of(body))}


@kopf.on.event("apps", "v1", "deployments", labels={ENDPOINT_LABEL: kopf.PRESENT})  # type: ignore[arg-type]
async def endpoint_child_changed(
    labels: kopf.Labels,
    namespace: str,
    endpoint_bodies: kopf.Index[Any, Any],
    endpoint_deployments: kopf.Index[Any, Any],
    logger: kopf.Logger,
    **_: Any,
) -> None:
    """Readiness and rollout travel up as they happen: the endpoint's status from the indexes,
    against what its last reconcile built.  Nothing before that reconcile (it writes the status),
    and nothing while a newer spec waits for its own reconcile."""
    key = (namespace, labels[ENDPOINT_LABEL])
    body = next(iter(endpoint_bodies.get(key, [])), None)
    if body is None:
        return
    memo = body["memo"]
    built: Built | None = memo.get(BUILT_MEMO)
    if built is None or built.generation != body["metadata"].get("generation"):
        return
    try:
        endpoint = parse_as(StreamingEndpoint, body)
    except (ManifestError, ValidationError):
        return
    async with status_lock(memo):
        previous = newest_status(memo, body.get("status"))
        if blocked(previous):
            return  # only a reconcile, which re-reads the Secrets and the spec, may clear those
        new_status = aggregate_endpoint(
            endpoint,
            generation=built.generation,
            deployment=_indexed(endpoint_deployments, key),
            wanted=built.spec_hash,
            namespace=namespace,
            previous=previous,
            now=now(),
        )
        if contained(new_status, previous):
            return
        announce_transition(body, previous, new_status, logger)
        await write_status(memo, "StreamingEndpoint", namespace, endpoint.name, new_status)

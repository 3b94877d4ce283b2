"""The indexes of Channels and their Deployments and Services, and the Deployment events that carry
readiness up to a Channel's status and start encoder B's rollout once A runs the new spec."""

from __future__ import annotations

import copy
from typing import Any

import kopf
from pydantic import ValidationError

from kubecast.api.loader import ManifestError

from ..rollout import DeploymentState, second_may_roll
from ..settings import OperatorSettings
from ..status import aggregate_channel, contained
from .channel_state import (
    DATA_PLANE_MEMO,
    SECOND_HELD,
    encoder_names,
    indexed_states,
    parsed_for,
    write_channel_status,
)
from .common import GROUP_VERSION, api, blocked, newest_status, now, status_lock

CHANNEL_LABEL = "kubecast.io/channel"


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
    await status_from_indexes(key, channel_bodies, channel_deployments, channel_services, logger)
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
    if body is None or blocked(newest_status(body["memo"], body.get("status"))):
        return
    try:
        parsed = parsed_for(body["memo"], body, body["metadata"]["uid"], key[0])
    except (ManifestError, ValidationError):
        return
    channel, wanted = parsed.channel, parsed.wanted
    first, second = encoder_names(channel.name)
    first_state, second_state = indexed_states(channel_deployments, key, first, second)
    if second_state is None or second_state.spec_hash == wanted[second]:
        return  # not made yet (the reconcile makes it), or already on the new spec
    if not second_may_roll(wanted[first], wanted[second], first_state, second_state):
        return
    logger.info("encoder A runs the new spec and is ready: rolling encoder B")
    for child in parsed.children():
        if child["metadata"]["name"] == second and child["kind"] in SECOND_HELD:
            await api().apply(child)


async def status_from_indexes(
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
        parsed = parsed_for(memo, body, body["metadata"]["uid"], namespace)
    except (ManifestError, ValidationError):
        return
    channel, wanted = parsed.channel, parsed.wanted
    async with status_lock(memo):
        previous = newest_status(memo, body.get("status"))
        if blocked(previous):
            return  # only a reconcile, which re-reads the Secret and spec, may clear those
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
        await write_channel_status(memo, body, body.get("status"), new_status, logger)

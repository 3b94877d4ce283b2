"""A StreamingEndpoint's reconcile: its children applied, its status aggregated."""

from __future__ import annotations

from typing import Any

import kopf
from pydantic import ValidationError

from kubecast.api import Channel, StreamingEndpoint
from kubecast.api.loader import ManifestError

from .. import lifecycle
from ..builders import build_endpoint_children
from ..metrics import observed
from ..periodic import every
from ..settings import OperatorSettings
from ..status import aggregate_endpoint
from .common import (
    GROUP_VERSION,
    announce_transition,
    api,
    now,
    parse_as,
    patch_invalid,
    secret_error_of,
    valid_resources,
)


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
        patch_invalid(patch, status, generation, error)
        return
    deployment = None
    secret_error = await secret_error_of(namespace, endpoint)
    # The namespace's Channels: their preview allow-lists are enforced here (a change reaches
    # the endpoint with this refresh).
    channels = await valid_resources(namespace, Channel)
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
    announce_transition(body, status, new_status, logger)
    patch.status.update(new_status)

"""Pure builders: a typed resource in, the list of child manifests out, one builder per child
object (``encoder``, ``services``, ``packager``, ``endpoint``; ``pods`` and ``labels`` hold what
they share).

No kopf, no kubernetes client (an import contract keeps it so): the handlers apply what these
functions return, and the tests call them directly and validate every manifest against the
official Kubernetes schemas.

Per Channel: encoder pods A and B (one Deployment each, required anti-affinity on hostname so
one node failure takes only one, a PodDisruptionBudget so a drain takes only one), an ingest
Service each (primary and secondary URLs), in relay mode a ClusterIP contribution Service
each (the other ingest forwards to it) behind a NetworkPolicy, and one packager (Recreate strategy: the
timeline has exactly one writer).  Each encoder pod runs the ingest and the encoder as two
containers, the same commands local mode runs.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from kubecast.api import Channel, RedundancyMode

from ..rollout import stamped
from ..settings import OperatorSettings
from .encoder import (
    encoder_config_map,
    encoder_deployment,
    encoder_disruption_budget,
    encoder_resources,
    secret_references,
)
from .endpoint import build_endpoint_children
from .labels import labels, owner_reference
from .packager import packager_deployment
from .pods import INSTANCES, RTMP_PORT, ingest_ports, namespace_store_url
from .services import contribution_service, encoder_network_policy, ingest_service

__all__ = [
    "INSTANCES",
    "RTMP_PORT",
    "build_channel_children",
    "build_endpoint_children",
    "encoder_resources",
    "ingest_ports",
    "labels",
    "namespace_store_url",
    "owner_reference",
    "secret_references",
]


def build_channel_children(
    channel: Channel, *, uid: str, namespace: str, settings: OperatorSettings
) -> list[dict[str, Any]]:
    owner = owner_reference(channel, uid)
    relay = channel.spec.ingest.redundancy == RedundancyMode.RELAY
    children: list[dict[str, Any]] = []
    packager_config_hash = ""
    for instance in INSTANCES:
        config_map = encoder_config_map(channel, instance=instance, namespace=namespace, owner=owner)
        children.append(config_map)
        children.append(
            stamped(
                encoder_deployment(
                    channel,
                    instance=instance,
                    namespace=namespace,
                    owner=owner,
                    settings=settings,
                    spec_hash=config_hash(config_map["data"]),
                )
            )
        )
        if instance == INSTANCES[0]:  # the packager mounts encoder A's ConfigMap and reads its packager.json
            packager_config_hash = config_hash({"packager.json": config_map["data"]["packager.json"]})
        if relay:
            children.append(contribution_service(channel, instance=instance, namespace=namespace, owner=owner))
        children.append(ingest_service(channel, instance=instance, namespace=namespace, owner=owner))
    children.append(encoder_disruption_budget(channel, namespace=namespace, owner=owner))
    if relay:
        children.append(encoder_network_policy(channel, namespace=namespace, owner=owner))
    children.append(
        stamped(
            packager_deployment(
                channel, namespace=namespace, owner=owner, settings=settings, spec_hash=packager_config_hash
            )
        )
    )
    return children


def config_hash(files: dict[str, str]) -> str:
    """The hash of the config files a pod reads at start: a change to them must restart it, and a
    change to anything else of the Channel (the preview's allow-list, which the endpoint enforces,
    or the deletion policy, which only the operator reads) must not."""
    text = json.dumps(files, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]

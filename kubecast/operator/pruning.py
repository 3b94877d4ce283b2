"""Which children to prune: those the operator built for a resource and builds no longer.

Pure.  A child is the operator's when it carries the operator's ``managed-by`` label and a
controller owner reference to the resource's uid: an object of the same name or labels that a
user (or an earlier resource of the same name) made is never touched.  The handlers list each
kind a resource can have, by the resource's label, and delete what ``prunable`` returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MANAGED_BY = ("app.kubernetes.io/managed-by", "kubecast-operator")


@dataclass(frozen=True)
class ChildKind:
    api_version: str
    kind: str


# The kinds of children that come and go with the spec: the relay's contribution Services and
# NetworkPolicy, an endpoint's HPA and Ingress; and an endpoint's ConfigMaps, whose name changed
# between versions (``<name>-endpoint-access`` became ``<name>-endpoint-config``), so an upgraded
# operator deletes the one it no longer builds.  The others (a Channel's ConfigMaps, Deployments,
# the ingest and endpoint Services, PodDisruptionBudgets) are built for every spec under the same
# names, so listing them would find nothing to prune.
CHANNEL_CHILDREN = (ChildKind("v1", "Service"), ChildKind("networking.k8s.io/v1", "NetworkPolicy"))
ENDPOINT_CHILDREN = (
    ChildKind("autoscaling/v2", "HorizontalPodAutoscaler"),
    ChildKind("networking.k8s.io/v1", "Ingress"),
    ChildKind("v1", "ConfigMap"),
)
CHILDREN_OF = {"Channel": CHANNEL_CHILDREN, "StreamingEndpoint": ENDPOINT_CHILDREN}
OWNER_LABEL = {"Channel": "kubecast.io/channel", "StreamingEndpoint": "kubecast.io/endpoint"}


def owned(item: dict[str, Any], owner_uid: str) -> bool:
    meta = item.get("metadata") or {}
    if (meta.get("labels") or {}).get(MANAGED_BY[0]) != MANAGED_BY[1]:
        return False
    return any(ref.get("uid") == owner_uid and ref.get("controller") for ref in meta.get("ownerReferences") or [])


def prunable(
    kind: ChildKind, existing: list[dict[str, Any]], built: list[dict[str, Any]], owner_uid: str
) -> list[tuple[str, str]]:
    """(name, uid) of each object of ``kind`` in ``existing`` (a list answer: items carry no kind)
    that the owner with ``owner_uid`` owns and whose name ``built`` no longer has."""
    wanted = {child["metadata"]["name"] for child in built if child["kind"] == kind.kind}
    return [
        (item["metadata"]["name"], item["metadata"].get("uid"))
        for item in existing
        if owned(item, owner_uid)
        and item["metadata"]["name"] not in wanted
        and not item["metadata"].get("deletionTimestamp")
    ]

"""Labels, owner references and object metadata every child object carries."""

from __future__ import annotations

from typing import Any

from kubecast.api import API_VERSION, Channel, StreamingEndpoint


def labels(*, instance: str, component: str, extra: dict[str, str]) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "kubecast",
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "kubecast",
        "app.kubernetes.io/managed-by": "kubecast-operator",
        **extra,
    }


def owner_reference(resource: Channel | StreamingEndpoint, uid: str) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": resource.kind,
        "name": resource.name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def object_meta(
    name: str,
    namespace: str,
    owner: dict[str, Any],
    object_labels: dict[str, Any],
    annotations: dict[str, Any] | None = None,
) -> dict[str, Any]:
    meta = {"name": name, "namespace": namespace, "labels": object_labels, "ownerReferences": [owner]}
    if annotations:
        meta["annotations"] = annotations
    return meta

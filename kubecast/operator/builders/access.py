"""A StreamingEndpoint's access policy on a cluster: a ConfigMap holding the policy document
(``kubecast.api.access``) and a projected volume of the Secret keys it names (signing keys,
the CDN's origin secret).  The document's hash is on the pod template, so a changed policy
rolls the endpoint one pod at a time (maxUnavailable 0: viewers keep being served)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kubecast.api import Channel, SecretKeyRef, StreamingEndpoint
from kubecast.api.access import access_document, secret_files
from kubecast.api.endpoint import CONTENT_MASTER_KEY_ENV, CPIX_CREDENTIALS_ENV, KEY_DELIVERY_JWT_KEY_ENV

from .labels import object_meta
from .pods import CONFIG_DIR, KEY_DIR

ACCESS_FILE = f"{CONFIG_DIR}/access.json"


@dataclass(frozen=True)
class EndpointAccess:
    """What the endpoint's pod gets for its policy; empty when there is nothing to enforce."""

    config_map: dict[str, Any] | None = None
    args: list[str] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    annotations: dict[str, str] = field(default_factory=dict)


def access_config_map_name(endpoint: StreamingEndpoint) -> str:
    return f"{endpoint.name}-endpoint-access"


def endpoint_secret_references(endpoint: StreamingEndpoint) -> list[tuple[str, SecretKeyRef, str]]:
    """(what it is for, reference, file name) of every Secret key the endpoint pods mount, in the
    shape of the Channel's ``secret_references``, for the same Secret check."""
    mounted = [(file_name.replace("-", " "), ref, file_name) for file_name, ref in secret_files(endpoint)]
    protection = endpoint.spec.content_protection
    purposes = {
        CONTENT_MASTER_KEY_ENV: "content protection master key",
        KEY_DELIVERY_JWT_KEY_ENV: "key delivery JWT key",
        CPIX_CREDENTIALS_ENV: "DRM key server credentials",
    }
    # these reach the pods as secretKeyRef environment variables, named in place of a file
    passed = (
        [(purposes[variable], ref, variable) for variable, ref in protection.secret_env().items()] if protection else []
    )
    return mounted + passed


def endpoint_access(
    endpoint: StreamingEndpoint,
    channels: Iterable[Channel],
    *,
    namespace: str,
    owner: dict[str, Any],
    labels: dict[str, Any],
) -> EndpointAccess:
    document = access_document(endpoint, channels, lambda file_name, ref: f"{KEY_DIR}/{file_name}")
    if not any(document.values()):
        return EndpointAccess()
    text = json.dumps(document, indent=2, sort_keys=True)
    name = access_config_map_name(endpoint)
    volumes = [{"name": "access", "configMap": {"name": name}}]
    mounts = [{"name": "access", "mountPath": CONFIG_DIR, "readOnly": True}]
    secrets = secret_files(endpoint)
    if secrets:
        # One projected volume: the keys may live in different Secrets.
        volumes.append(
            {
                "name": "access-secrets",
                "projected": {
                    "sources": [
                        {"secret": {"name": ref.name, "items": [{"key": ref.key, "path": file_name}]}}
                        for file_name, ref in secrets
                    ]
                },
            }
        )
        mounts.append({"name": "access-secrets", "mountPath": KEY_DIR, "readOnly": True})
    return EndpointAccess(
        config_map={
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": object_meta(name, namespace, owner, labels),
            "data": {"access.json": text},
        },
        args=["--access", ACCESS_FILE],
        volumes=volumes,
        mounts=mounts,
        annotations={"kubecast.io/access-hash": hashlib.sha256(text.encode()).hexdigest()[:16]},
    )

"""A StreamingEndpoint's config on a cluster: a ConfigMap holding its ``endpoint.json``
(``kubecast.api.components.endpoint_config``) and a projected volume of the Secret keys it names
(signing keys, the CDN's origin secret, content protection's keys).  The config's hash is on the
pod template, so a changed config rolls the endpoint one pod at a time (maxUnavailable 0:
viewers keep being served)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubecast.api import Channel, SecretKeyRef, StreamingEndpoint
from kubecast.api.components import endpoint_config, endpoint_secrets

from .labels import object_meta
from .pods import CONFIG_DIR, KEY_DIR

CONFIG_FILE = "endpoint.json"


@dataclass(frozen=True)
class EndpointConfigMount:
    """What the endpoint's pod gets for its config: the ConfigMap, and how the pod mounts it."""

    config_map: dict[str, Any]
    args: list[str]
    volumes: list[dict[str, Any]]
    mounts: list[dict[str, Any]]
    annotations: dict[str, str]


def config_map_name(endpoint: StreamingEndpoint) -> str:
    return f"{endpoint.name}-endpoint-config"


def endpoint_secret_references(endpoint: StreamingEndpoint) -> list[tuple[str, SecretKeyRef, str]]:
    """(what it is for, reference, file name) of every Secret key the endpoint pods mount, in the
    shape of the Channel's ``secret_references``, for the same Secret check."""
    return [(secret.purpose, secret.ref, secret.file_name) for secret in endpoint_secrets(endpoint)]


def endpoint_config_mount(
    endpoint: StreamingEndpoint,
    channels: Iterable[Channel],
    *,
    namespace: str,
    owner: dict[str, Any],
    labels: dict[str, Any],
) -> EndpointConfigMount:
    text = endpoint_config(endpoint, channels, secret_file=lambda secret: f"{KEY_DIR}/{secret.file_name}").to_json()
    name = config_map_name(endpoint)
    volumes: list[dict[str, Any]] = [{"name": "config", "configMap": {"name": name}}]
    mounts: list[dict[str, Any]] = [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}]
    secrets = endpoint_secrets(endpoint)
    if secrets:
        # One projected volume: the keys may live in different Secrets.
        volumes.append(
            {
                "name": "endpoint-secrets",
                "projected": {
                    "sources": [
                        {
                            "secret": {
                                "name": secret.ref.name,
                                "items": [{"key": secret.ref.key, "path": secret.file_name}],
                            }
                        }
                        for secret in secrets
                    ]
                },
            }
        )
        mounts.append({"name": "endpoint-secrets", "mountPath": KEY_DIR, "readOnly": True})
    return EndpointConfigMount(
        config_map={
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": object_meta(name, namespace, owner, labels),
            "data": {CONFIG_FILE: text},
        },
        args=["--config", f"{CONFIG_DIR}/{CONFIG_FILE}"],
        volumes=volumes,
        mounts=mounts,
        annotations={"kubecast.io/config-hash": hashlib.sha256(text.encode()).hexdigest()[:16]},
    )

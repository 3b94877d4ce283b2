"""A StreamingEndpoint's status."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubecast.api import StreamingEndpoint

from ..builders.endpoint import endpoint_selector_text
from .common import conditions, endpoint_base


def aggregate_endpoint(
    endpoint: StreamingEndpoint,
    *,
    generation: int | None,
    deployment: dict[str, Any] | None,
    namespace: str,
    previous: dict[str, Any] | None,
    now: datetime,
    secret_error: str | None = None,
) -> dict[str, Any]:
    ready_replicas = (deployment or {}).get("readyReplicas") or 0
    replicas = (deployment or {}).get("replicas")
    ready = ready_replicas >= 1
    entries = [
        ("Ready", ready, "ReplicasReady" if ready else "NoReadyReplica", f"{ready_replicas} replica(s) ready"),
        ("Reconciling", not ready, "Reconciled" if ready else "Starting", ""),
        ("Stalled", False, "Reconciled" if ready else "Starting", ""),
    ]
    if secret_error:
        entries = [
            ("Ready", False, "SecretMissing", secret_error),
            ("Reconciling", False, "SecretMissing", ""),
            ("Stalled", True, "SecretMissing", secret_error),
        ]
    return {
        "observedGeneration": generation,
        "conditions": conditions((previous or {}).get("conditions"), generation, now, *entries),
        "hostName": endpoint_base(endpoint, namespace).removeprefix("http://"),
        "replicas": replicas,
        "readyReplicas": ready_replicas,
        "selector": endpoint_selector_text(endpoint.name),
    }

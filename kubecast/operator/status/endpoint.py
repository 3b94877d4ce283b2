"""A StreamingEndpoint's status."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubecast.api import StreamingEndpoint

from ..builders.endpoint import endpoint_selector_text
from ..rollout import DeploymentState
from .common import STORAGE_SECRET_MISSING, conditions, endpoint_base


def aggregate_endpoint(
    endpoint: StreamingEndpoint,
    *,
    generation: int | None,
    deployment: DeploymentState | None,
    namespace: str,
    previous: dict[str, Any] | None,
    now: datetime,
    wanted: str | None = None,
    secret_error: str | None = None,
    storage_error: str | None = None,
) -> dict[str, Any]:
    """``deployment``: what the endpoint's Deployment reports (None before it exists);
    ``wanted``: the spec hash built into its template (``rollout.wanted_hashes``, None when nothing
    was built).  ``Reconciling`` stays true until the Deployment has rolled that spec out (its
    controller has seen the generation, every replica runs the template and is ready), though
    the endpoint serves (and is Ready) meanwhile.  ``secret_error``, ``storage_error``: a Secret it
    references, or the object storage credentials Secret its pods take, is missing."""
    ready_replicas = deployment.ready if deployment is not None else 0
    ready = ready_replicas >= 1
    rolled_out = deployment is not None and wanted is not None and deployment.rolled_out(wanted)
    if secret_error or storage_error:
        reason = "SecretMissing" if secret_error else STORAGE_SECRET_MISSING
        message = secret_error or storage_error or ""
        entries = [
            ("Ready", False, reason, message),
            ("Reconciling", False, reason, ""),
            ("Stalled", True, reason, message),
        ]
    elif not ready:
        entries = [
            ("Ready", False, "NoReadyReplica", f"{ready_replicas} replica(s) ready"),
            ("Reconciling", True, "Starting", ""),
            ("Stalled", False, "Starting", ""),
        ]
    else:
        entries = [
            ("Ready", True, "ReplicasReady", f"{ready_replicas} replica(s) ready"),
            (
                ("Reconciling", False, "Reconciled", "")
                if rolled_out
                else ("Reconciling", True, "RollingOut", "not every replica runs the current spec yet")
            ),
            ("Stalled", False, "Reconciled", ""),
        ]
    return {
        "observedGeneration": generation,
        "conditions": conditions((previous or {}).get("conditions"), generation, now, *entries),
        "hostName": endpoint_base(endpoint, namespace).removeprefix("http://"),
        "replicas": deployment.replicas if deployment is not None else None,
        "readyReplicas": ready_replicas,
        "selector": endpoint_selector_text(endpoint.name),
    }

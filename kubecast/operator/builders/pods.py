"""What a Channel's and an endpoint's pods share: the encoder instances, the ports, where
configuration and keys are mounted, and how each pod finds its namespace's store."""

from __future__ import annotations

from typing import Any

from kubecast.api import Channel

from ..settings import OperatorSettings

INSTANCES = ("A", "B")
RTMP_PORT = 1935
HTTP_INGEST_PORT, SRT_PORT, MPEGTS_PORT = 8081, 9000, 5000


def ingest_ports(channel: Channel) -> list[tuple[str, int, str]]:
    """(port name, number, TCP|UDP) of every protocol the channel accepts; RTMP always (readiness)."""
    protocols = {protocol.value for protocol in channel.spec.ingest.protocols}
    ports = [("rtmp", RTMP_PORT, "TCP")]
    if protocols & {"FragmentedMP4", "CMAF"}:
        ports.append(("http-ingest", HTTP_INGEST_PORT, "TCP"))
    if "SRT" in protocols:
        ports.append(("srt", SRT_PORT, "UDP"))
    if protocols & {"UDP", "RTP"}:
        ports.append(("mpegts", MPEGTS_PORT, "UDP"))
    return ports
CONTRIBUTION_PORT = 7000
INGEST_METRICS, ENCODER_METRICS, PACKAGER_METRICS = 9101, 9102, 9103
HTTP_PORT = 8080
CONFIG_DIR = "/etc/kubecast"
KEY_DIR = "/var/run/secrets/kubecast"


def namespace_store_url(settings: OperatorSettings, namespace: str) -> str:
    """Each namespace gets its own folder of the store: Channels of the same name in two
    namespaces must not write over each other, and an endpoint serves only its namespace."""
    return f"{settings.store_url.rstrip('/')}/{namespace}"


def store_env(settings: OperatorSettings, namespace: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    env = [{"name": "KUBECAST_STORE_URL", "value": namespace_store_url(settings, namespace)}]
    env_from = [{"secretRef": {"name": settings.store_credentials_secret}}] if settings.store_credentials_secret else []
    return env, env_from


# Pod Security "restricted" (tests/operator/test_pod_security.py checks every template against
# the documentation's rules): non-root, the runtime's default seccomp profile, no privilege
# escalation, every capability dropped.
POD_SECURITY = {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}


def metrics_probes(port: str) -> dict[str, Any]:
    """Liveness and readiness of a container whose only HTTP server is its Prometheus metrics
    (ingest, encoder, packager): they show the process is up and serving, not that media flows
    (the Channel's status and the alerts say that)."""
    probe = {"httpGet": {"path": "/metrics", "port": port}}
    return {"readinessProbe": {**probe, "periodSeconds": 10}, "livenessProbe": {**probe, "periodSeconds": 20, "failureThreshold": 3}}


def pod_spec(settings: OperatorSettings, **fields: Any) -> dict[str, Any]:
    """A pod template's spec: the given fields, the restricted security context, and where the
    chart says the operator's pods may run."""
    security = {**POD_SECURITY, **fields.pop("securityContext", {})}
    return {**fields, "securityContext": security, **settings.scheduling.pod_fields()}

"""What a Channel's and an endpoint's pods share: the encoder instances, the ports, where
configuration and keys are mounted, and how each pod finds its namespace's store."""

from __future__ import annotations

from typing import Any, NamedTuple

from kubecast.api import Channel

from ..settings import OperatorSettings

INSTANCES = ("A", "B")
RTMP_PORT = 1935
HTTP_INGEST_PORT, SRT_PORT, MPEGTS_PORT = 8081, 9000, 5000
# RTMPS: the Service offers 443, the port OBS and the big platforms use for rtmps:// (often the
# only one a venue's firewall lets out); the pod listens above 1024, as a non-root process can.
RTMPS_PORT, RTMPS_SERVICE_PORT = 1943, 443
HTTPS_INGEST_PORT = 8443


class IngestPort(NamedTuple):
    name: str  # the container port's and the Service port's name
    number: int  # where the ingest container listens
    protocol: str  # TCP | UDP
    service_port: int  # what the ingest Service offers (publishers' URLs)


def ingest_ports(channel: Channel) -> list[IngestPort]:
    """Every port of the protocols the channel accepts; RTMP always (readiness)."""
    ingest = channel.spec.ingest
    protocols = {protocol.value for protocol in ingest.protocols}
    tls = {protocol.value for protocol in ingest.tls_protocols}
    ports = [IngestPort("rtmp", RTMP_PORT, "TCP", RTMP_PORT)]
    if "RTMP" in tls:
        ports.append(IngestPort("rtmps", RTMPS_PORT, "TCP", RTMPS_SERVICE_PORT))
    if protocols & {"FragmentedMP4", "CMAF"}:
        ports.append(IngestPort("http-ingest", HTTP_INGEST_PORT, "TCP", HTTP_INGEST_PORT))
    if tls & {"FragmentedMP4", "CMAF"}:
        ports.append(IngestPort("https-ingest", HTTPS_INGEST_PORT, "TCP", HTTPS_INGEST_PORT))
    if "SRT" in protocols:
        ports.append(IngestPort("srt", SRT_PORT, "UDP", SRT_PORT))
    if protocols & {"UDP", "RTP"}:
        ports.append(IngestPort("mpegts", MPEGTS_PORT, "UDP", MPEGTS_PORT))
    return ports


CONTRIBUTION_PORT = 7000
INGEST_METRICS, ENCODER_METRICS, PACKAGER_METRICS = 9101, 9102, 9103
HTTP_PORT = 8080
ENDPOINT_LIVENESS_PORT = 8081  # the endpoint's /livez, off the event loop it watches
CONFIG_DIR = "/etc/kubecast"
KEY_DIR = "/var/run/secrets/kubecast"
TLS_DIR = f"{KEY_DIR}/tls"  # the channel's kubernetes.io/tls Secret (tls.crt, tls.key)


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
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def liveness_probe(port: str) -> dict[str, Any]:
    """``/livez`` (kubecast/liveness.py), answered by a thread of its own: 503 once an event loop or a
    worker thread has been stuck for 15 s, so a hung process is restarted, not only a dead one.  The
    15 s are the patience for a slow but live process; on top, three failed probes 5 s apart (each
    given 3 s) ride out a probe lost on a starved node, and a frozen process, which answers nothing,
    is restarted after them.  A hang is restarted within ~30 s of its start."""
    return {
        "httpGet": {"path": "/livez", "port": port},
        "periodSeconds": 5,
        "timeoutSeconds": 3,
        "failureThreshold": 3,
    }


def metrics_probes(port: str) -> dict[str, Any]:
    """Readiness and liveness of a container whose only HTTP server is its Prometheus metrics
    (ingest, encoder, packager), which also answers ``/livez``: ready when it serves, alive while
    its loops and worker threads beat (media flowing is for the Channel's status and the alerts)."""
    return {
        "readinessProbe": {"httpGet": {"path": "/metrics", "port": port}, "periodSeconds": 10},
        "livenessProbe": liveness_probe(port),
    }


def pod_spec(settings: OperatorSettings, **fields: Any) -> dict[str, Any]:
    """A pod template's spec: the given fields, the restricted security context, and where the
    chart says the operator's pods may run."""
    security = {**POD_SECURITY, **fields.pop("securityContext", {})}
    return {**fields, "securityContext": security, **settings.scheduling.pod_fields()}

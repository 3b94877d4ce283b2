"""Pure builders: a typed resource in, the list of child manifests out.

No kopf, no kubernetes client (an import contract test keeps it so): the handlers apply what
these functions return, and the tests call them directly and validate every manifest
against the official Kubernetes schemas.

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

import yaml

from kubecast.api import API_VERSION, Channel, RedundancyMode, StreamingEndpoint
from kubecast.api.common import SecretKeyRef

from .settings import OperatorSettings

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


def labels(*, instance: str, component: str, extra: dict[str, str]) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "kubecast", "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": component, "app.kubernetes.io/part-of": "kubecast",
        "app.kubernetes.io/managed-by": "kubecast-operator", **extra,
    }


def owner_reference(resource: Channel | StreamingEndpoint, uid: str) -> dict:
    return {"apiVersion": API_VERSION, "kind": resource.kind, "name": resource.name, "uid": uid, "controller": True, "blockOwnerDeletion": True}


def _meta(name: str, namespace: str, owner: dict, object_labels: dict, annotations: dict | None = None) -> dict:
    meta = {"name": name, "namespace": namespace, "labels": object_labels, "ownerReferences": [owner]}
    if annotations:
        meta["annotations"] = annotations
    return meta


def channel_document(channel: Channel) -> str:
    """The Channel as the encoder and packager read it (spec only: no status, no secret)."""
    return yaml.safe_dump({"apiVersion": API_VERSION, "kind": "Channel", "metadata": {"name": channel.name},
                           "spec": channel.spec.model_dump(mode="json", by_alias=True)}, sort_keys=False)


def secret_references(channel: Channel) -> list[tuple[str, SecretKeyRef, str]]:
    """Every Secret key a Channel's encoder pods mount: (what it is for, reference, file name in
    ``KEY_DIR``).  The pods' volume and the operator's Secret check both read this one list, so
    no reference is mounted unchecked: a missing Secret would otherwise leave the pods in
    ContainerCreating with nothing on the Channel saying why."""
    ingest = channel.spec.ingest
    references = (("stream key", ingest.stream_key_secret_ref, "stream-key"), ("SRT passphrase", ingest.srt.passphrase_secret_ref, "srt-passphrase"))
    return [(purpose, ref, path) for purpose, ref, path in references if ref is not None]


def encoder_resources(channel: Channel) -> dict:
    """CPU sized from the ladder's pixel rate (bench/transcode.py: ~2 cores run Default720p at 1.4x real time)."""
    pixels = sum(r.width * r.height for r in channel.spec.encoding.ladder())
    millicores = 500 if pixels == 0 else max(500, min(8000, int(pixels / 2_000_000 * 1500)))
    memory = 512 if pixels == 0 else max(768, min(8192, int(pixels / 1_000_000 * 512) + 512))
    return {"requests": {"cpu": f"{millicores}m", "memory": f"{memory}Mi"}, "limits": {"memory": f"{memory * 2}Mi"}}


def namespace_store_url(settings: OperatorSettings, namespace: str) -> str:
    """Each namespace gets its own folder of the store: Channels of the same name in two
    namespaces must not write over each other, and an endpoint serves only its namespace."""
    return f"{settings.store_url.rstrip('/')}/{namespace}"


def _store_env(settings: OperatorSettings, namespace: str) -> tuple[list, list]:
    env = [{"name": "KUBECAST_STORE_URL", "value": namespace_store_url(settings, namespace)}]
    env_from = [{"secretRef": {"name": settings.store_credentials_secret}}] if settings.store_credentials_secret else []
    return env, env_from


def build_channel_children(channel: Channel, *, uid: str, namespace: str, settings: OperatorSettings) -> list[dict]:
    name = channel.name
    owner = owner_reference(channel, uid)
    document = channel_document(channel)
    spec_hash = hashlib.sha256(document.encode()).hexdigest()[:16]
    env, env_from = _store_env(settings, namespace)
    key_ref = channel.spec.ingest.stream_key_secret_ref
    encoder_pair = {"kubecast.io/channel": name, "app.kubernetes.io/component": "encoder"}
    children: list[dict] = []
    # Relay: each ingest also forwards to the other encoder, through that encoder's ClusterIP
    # contribution Service; only the channel's own encoder pods may reach that port.
    relay = channel.spec.ingest.redundancy == RedundancyMode.RELAY
    contribution_listen = f"{'0.0.0.0' if relay else '127.0.0.1'}:{CONTRIBUTION_PORT}"
    for instance in INSTANCES:
        suffix = instance.lower()
        component_labels = labels(instance=name, component="encoder", extra={"kubecast.io/channel": name, "kubecast.io/encoder": instance})
        selector = {"kubecast.io/channel": name, "kubecast.io/encoder": instance, "app.kubernetes.io/component": "encoder"}
        config_name = f"{name}-encoder-{suffix}"
        others = [f"{name}-contribution-{other.lower()}.{namespace}.svc:{CONTRIBUTION_PORT}" for other in INSTANCES if other != instance]
        ingest = channel.spec.ingest
        ports = ingest_ports(channel)
        ingest_config = {
            "channels": {name: {"streamKeyFile": f"{KEY_DIR}/stream-key" if key_ref else None,
                                "encoders": [f"127.0.0.1:{CONTRIBUTION_PORT}"], "relays": others if relay else [],
                                "allowedIps": list(ingest.allowed_ips), "protocols": [p.value for p in ingest.protocols],
                                "udpListen": f"0.0.0.0:{MPEGTS_PORT}" if any(p[0] == "mpegts" for p in ports) else None,
                                "udpGroup": ingest.udp.multicast_group,
                                "srtPassphraseFile": f"{KEY_DIR}/srt-passphrase" if ingest.srt.passphrase_secret_ref else None,
                                "srtLatencyMs": ingest.srt.latency_ms}},
            "handshakeTimeout": 10, "idleTimeout": 15,
        }
        children.append({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(config_name, namespace, owner, component_labels),
            "data": {"channel.yaml": document, "ingest.json": json.dumps(ingest_config, indent=2)},
        })
        volumes = [{"name": "config", "configMap": {"name": config_name}}]
        mounts = [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}]
        secrets = [(ref, path) for _, ref, path in secret_references(channel)]
        if secrets:
            # One projected volume: the stream key and the SRT passphrase may live in different Secrets.
            volumes.append({"name": "ingest-secrets", "projected": {"sources": [
                {"secret": {"name": ref.name, "items": [{"key": ref.key, "path": path}]}} for ref, path in secrets]}})
            mounts.append({"name": "ingest-secrets", "mountPath": KEY_DIR, "readOnly": True})
        security = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
        containers = [
            {
                "name": "ingest", "image": settings.encoder_image,
                "args": ["ingest", "--listen", f"0.0.0.0:{RTMP_PORT}", "--config", f"{CONFIG_DIR}/ingest.json", "--metrics-port", str(INGEST_METRICS), "--metrics-address", "0.0.0.0"]
                + (["--http-listen", f"0.0.0.0:{HTTP_INGEST_PORT}"] if any(p[0] == "http-ingest" for p in ports) else [])
                + (["--srt-listen", f"0.0.0.0:{SRT_PORT}"] if any(p[0] == "srt" for p in ports) else []),
                "ports": [{"name": port_name, "containerPort": number, "protocol": protocol} for port_name, number, protocol in ports]
                + [{"name": "ingest-metrics", "containerPort": INGEST_METRICS}],
                "readinessProbe": {"tcpSocket": {"port": RTMP_PORT}, "periodSeconds": 5},
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
                "volumeMounts": mounts, "securityContext": security,
            },
            {
                "name": "encoder", "image": settings.encoder_image,
                "args": ["encoder", "--manifests", f"{CONFIG_DIR}/channel.yaml", "--channel", name, "--instance", instance,
                         "--contribution", contribution_listen, "--store", "$(KUBECAST_STORE_URL)", "--metrics-port", str(ENCODER_METRICS), "--metrics-address", "0.0.0.0"],
                "env": env, "envFrom": env_from,
                "ports": [{"name": "encoder-metrics", "containerPort": ENCODER_METRICS}]
                + ([{"name": "contribution", "containerPort": CONTRIBUTION_PORT}] if relay else []),
                "resources": encoder_resources(channel),
                "volumeMounts": [m for m in mounts if m["name"] == "config"], "securityContext": security,
            },
        ]
        children.append({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": _meta(f"{name}-encoder-{suffix}", namespace, owner, component_labels),
            "spec": {
                "replicas": 1, "selector": {"matchLabels": selector},
                # One pod per encoder: replace, never run two of the same instance at once.
                "strategy": {"type": "Recreate"},
                "template": {
                    "metadata": {"labels": component_labels, "annotations": {"kubecast.io/spec-hash": spec_hash}},
                    "spec": {
                        # Never both encoders on one node; in different zones where the cluster has them.
                        "affinity": {"podAntiAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": encoder_pair}, "topologyKey": "kubernetes.io/hostname"}],
                            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": {
                                "labelSelector": {"matchLabels": encoder_pair}, "topologyKey": "topology.kubernetes.io/zone"}}],
                        }},
                        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "fsGroup": 10001},
                        "terminationGracePeriodSeconds": 30,
                        "containers": containers, "volumes": volumes,
                    },
                },
            },
        })
        if relay:
            children.append({
                "apiVersion": "v1", "kind": "Service",
                "metadata": _meta(f"{name}-contribution-{suffix}", namespace, owner, component_labels),
                "spec": {"type": "ClusterIP", "selector": selector,
                         "ports": [{"name": "contribution", "port": CONTRIBUTION_PORT, "targetPort": "contribution", "protocol": "TCP"}]},
            })
        children.append({
            "apiVersion": "v1", "kind": "Service",
            "metadata": _meta(f"{name}-ingest-{suffix}", namespace, owner, labels(instance=name, component="ingest", extra={"kubecast.io/channel": name, "kubecast.io/encoder": instance})),
            "spec": {"type": channel.spec.ingest.service_type.value, "selector": selector,
                     # TCP and UDP in one LoadBalancer Service: Kubernetes >= 1.26 (MixedProtocolLBService).
                     "ports": [{"name": port_name, "port": number, "targetPort": port_name, "protocol": protocol} for port_name, number, protocol in ports]},
        })
    pair_labels = labels(instance=name, component="encoder", extra={"kubecast.io/channel": name})
    children.append({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": _meta(f"{name}-encoders", namespace, owner, pair_labels),
        "spec": {"minAvailable": 1, "selector": {"matchLabels": encoder_pair}},
    })
    if relay:
        open_ports = [{"port": number, "protocol": protocol} for _, number, protocol in ingest_ports(channel)]
        open_ports += [{"port": port, "protocol": "TCP"} for port in (INGEST_METRICS, ENCODER_METRICS)]
        children.append({
            "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": _meta(f"{name}-encoders", namespace, owner, pair_labels),
            "spec": {"podSelector": {"matchLabels": encoder_pair}, "policyTypes": ["Ingress"], "ingress": [
                {"ports": open_ports},
                {"from": [{"podSelector": {"matchLabels": encoder_pair}}], "ports": [{"port": CONTRIBUTION_PORT, "protocol": "TCP"}]},
            ]},
        })
    packager_labels = labels(instance=name, component="packager", extra={"kubecast.io/channel": name})
    children.append({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": _meta(f"{name}-packager", namespace, owner, packager_labels),
        "spec": {
            "replicas": 1, "strategy": {"type": "Recreate"},  # the timeline has exactly one writer
            "selector": {"matchLabels": {"kubecast.io/channel": name, "app.kubernetes.io/component": "packager"}},
            "template": {
                "metadata": {"labels": packager_labels, "annotations": {"kubecast.io/spec-hash": spec_hash}},
                "spec": {
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                    "containers": [{
                        "name": "packager", "image": settings.packager_image,
                        "args": ["packager", "--manifests", f"{CONFIG_DIR}/channel.yaml", "--channel", name, "--store", "$(KUBECAST_STORE_URL)",
                                 "--instances", ",".join(INSTANCES), "--metrics-port", str(PACKAGER_METRICS), "--metrics-address", "0.0.0.0"],
                        "env": env, "envFrom": env_from,
                        "ports": [{"name": "metrics", "containerPort": PACKAGER_METRICS}],
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
                        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}],
                        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
                    }],
                    "volumes": [{"name": "config", "configMap": {"name": f"{name}-encoder-a"}}],
                },
            },
        },
    })
    return children


def build_endpoint_children(endpoint: StreamingEndpoint, *, uid: str, namespace: str, settings: OperatorSettings) -> list[dict]:
    name = endpoint.name
    owner = owner_reference(endpoint, uid)
    spec = endpoint.spec
    endpoint_labels = labels(instance=name, component="endpoint", extra={"kubecast.io/endpoint": name})
    selector = {"kubecast.io/endpoint": name, "app.kubernetes.io/component": "endpoint"}
    env, env_from = _store_env(settings, namespace)
    deployment_spec = {
        "selector": {"matchLabels": selector},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "template": {
            "metadata": {"labels": endpoint_labels},
            "spec": {
                "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                "containers": [{
                    "name": "endpoint", "image": settings.packager_image,
                    "args": ["endpoint", "--store", "$(KUBECAST_STORE_URL)", "--listen", f"0.0.0.0:{HTTP_PORT}"],
                    "env": env, "envFrom": env_from,
                    "ports": [{"name": "http", "containerPort": HTTP_PORT}],
                    "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5},
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
                    "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
                    "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
                }],
            },
        },
    }
    if spec.scaling is None:
        # With an autoscaler the operator never writes replicas: that field is the HPA's.
        deployment_spec["replicas"] = spec.replicas if spec.replicas is not None else 2
    children = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(f"{name}-endpoint", namespace, owner, endpoint_labels), "spec": deployment_spec},
        {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, namespace, owner, endpoint_labels),
         "spec": {"type": "ClusterIP", "selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": _meta(f"{name}-endpoint", namespace, owner, endpoint_labels),
         "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}}},
    ]
    if spec.scaling is not None:
        children.append({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": _meta(f"{name}-endpoint", namespace, owner, endpoint_labels),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{name}-endpoint"},
                "minReplicas": spec.scaling.min_replicas, "maxReplicas": spec.scaling.max_replicas,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": spec.scaling.target_cpu_utilization}}}],
            },
        })
    if spec.host_names:
        children.append({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": _meta(name, namespace, owner, endpoint_labels),
            "spec": {"rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": name, "port": {"name": "http"}}}}]}} for host in spec.host_names]},
        })
    return children

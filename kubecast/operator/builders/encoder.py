"""A Channel's encoder pair: per instance (A and B) a ConfigMap and a Deployment whose pod runs
the ingest and the encoder as two containers (the same commands local mode runs), and one
PodDisruptionBudget over both.

The two Deployments never share a node (required anti-affinity on hostname, so one node failure
takes only one) and the budget lets a drain take only one.
"""

from __future__ import annotations

from typing import Any

from kubecast.api import Channel, RedundancyMode
from kubecast.api.channel import TLS_CERTIFICATE_KEY, TLS_PRIVATE_KEY_KEY
from kubecast.api.common import SecretKeyRef
from kubecast.api.components import IngestFile, encoder_config, ingest_route, packager_config

from ..settings import OperatorSettings
from .labels import labels, object_meta
from .pods import (
    CONFIG_DIR,
    CONTAINER_SECURITY,
    CONTRIBUTION_PORT,
    ENCODER_METRICS,
    HTTP_INGEST_PORT,
    HTTPS_INGEST_PORT,
    INGEST_METRICS,
    INSTANCES,
    KEY_DIR,
    MPEGTS_PORT,
    RTMP_PORT,
    RTMPS_PORT,
    SRT_PORT,
    TLS_DIR,
    ingest_ports,
    liveness_probe,
    metrics_probes,
    pod_spec,
    store_env,
)

# How long the ingest of a stopped channel's pod keeps refusing publishers with the reason as the pod
# goes: within the pod's termination grace period (TERMINATION_GRACE_SECONDS), with time to spare.
STOPPED_LINGER_SECONDS = 20
TERMINATION_GRACE_SECONDS = 30


def replicas(channel: Channel) -> int:
    """One pod per encoder (and one packager), none while the channel is stopped: a stopped
    channel costs no CPU (its ingest, in the encoder pods, goes with them)."""
    return 0 if channel.spec.stopped else 1


def secret_references(channel: Channel) -> list[tuple[str, SecretKeyRef, str]]:
    """Every Secret key a Channel's encoder pods mount: (what it is for, reference, file name in
    ``KEY_DIR``).  The pods' volume and the operator's Secret check both read this one list, so
    no reference is mounted unchecked: a missing Secret would otherwise leave the pods in
    ContainerCreating with nothing on the Channel saying why."""
    ingest = channel.spec.ingest
    references = [
        ("stream key", ingest.stream_key_secret_ref, "stream-key"),
        ("SRT passphrase", ingest.srt.passphrase_secret_ref, "srt-passphrase"),
    ]
    if ingest.tls is not None:
        # A kubernetes.io/tls Secret: its certificate chain and private key, under tls/ as cert-manager's
        # Certificates and `kubectl create secret tls` name them.
        references += [
            (f"TLS {what}", SecretKeyRef(name=ingest.tls.secret_name, key=key), f"tls/{key}")
            for what, key in (("certificate", TLS_CERTIFICATE_KEY), ("private key", TLS_PRIVATE_KEY_KEY))
        ]
    return [(purpose, ref, path) for purpose, ref, path in references if ref is not None]


def encoder_resources(channel: Channel) -> dict[str, Any]:
    """CPU sized from the ladder's pixel rate (bench/transcode.py: ~2 cores run Default720p at 1.4x real time)."""
    pixels = sum(r.width * r.height for r in channel.spec.encoding.ladder())
    millicores = 500 if pixels == 0 else max(500, min(8000, int(pixels / 2_000_000 * 1500)))
    memory = 512 if pixels == 0 else max(768, min(8192, int(pixels / 1_000_000 * 512) + 512))
    return {"requests": {"cpu": f"{millicores}m", "memory": f"{memory}Mi"}, "limits": {"memory": f"{memory * 2}Mi"}}


def encoder_pair(name: str) -> dict[str, str]:
    """Selects both encoder pods of a channel."""
    return {"kubecast.io/channel": name, "app.kubernetes.io/component": "encoder"}


def encoder_labels(name: str, instance: str) -> dict[str, str]:
    return labels(
        instance=name, component="encoder", extra={"kubecast.io/channel": name, "kubecast.io/encoder": instance}
    )


def encoder_selector(name: str, instance: str) -> dict[str, str]:
    """Selects one encoder pod (its Deployment, its ingest and contribution Services)."""
    return {"kubecast.io/channel": name, "kubecast.io/encoder": instance, "app.kubernetes.io/component": "encoder"}


def config_map_name(name: str, instance: str) -> str:
    return f"{name}-encoder-{instance.lower()}"


def encoder_config_map(channel: Channel, *, instance: str, namespace: str, owner: dict[str, Any]) -> dict[str, Any]:
    name = channel.name
    # Relay: each ingest also forwards to the other encoder, through that encoder's ClusterIP
    # contribution Service; only the channel's own encoder pods may reach that port.
    others = [
        f"{name}-contribution-{other.lower()}.{namespace}.svc:{CONTRIBUTION_PORT}"
        for other in INSTANCES
        if other != instance
    ]
    route = ingest_route(
        channel,
        encoder=f"127.0.0.1:{CONTRIBUTION_PORT}",
        others=others,
        udp_listen=f"0.0.0.0:{MPEGTS_PORT}",
        stream_key_file=f"{KEY_DIR}/stream-key",
        srt_passphrase_file=f"{KEY_DIR}/srt-passphrase",
    )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_meta(config_map_name(name, instance), namespace, owner, encoder_labels(name, instance)),
        # packager.json: the packager mounts encoder A's ConfigMap (both carry the same one).
        "data": {
            "encoder.json": encoder_config(channel).to_json(),
            "ingest.json": IngestFile(channels={name: route}).to_json(),
            "packager.json": packager_config(channel, instances=list(INSTANCES)).to_json(),
        },
    }


def encoder_deployment(
    channel: Channel,
    *,
    instance: str,
    namespace: str,
    owner: dict[str, Any],
    settings: OperatorSettings,
    spec_hash: str,
) -> dict[str, Any]:
    name = channel.name
    suffix = instance.lower()
    component_labels = encoder_labels(name, instance)
    selector = encoder_selector(name, instance)
    env, env_from = store_env(settings, namespace)
    relay = channel.spec.ingest.redundancy == RedundancyMode.RELAY
    contribution_listen = f"{'0.0.0.0' if relay else '127.0.0.1'}:{CONTRIBUTION_PORT}"
    ports = ingest_ports(channel)
    volumes = [{"name": "config", "configMap": {"name": config_map_name(name, instance)}}]
    mounts = [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}]
    secrets = [(ref, path) for _, ref, path in secret_references(channel)]
    if secrets:
        # One projected volume: the stream key, the SRT passphrase and the TLS certificate may live in
        # different Secrets.
        volumes.append(
            {
                "name": "ingest-secrets",
                "projected": {
                    "sources": [
                        {"secret": {"name": ref.name, "items": [{"key": ref.key, "path": path}]}}
                        for ref, path in secrets
                    ]
                },
            }
        )
        mounts.append({"name": "ingest-secrets", "mountPath": KEY_DIR, "readOnly": True})
    containers = [
        {
            "name": "ingest",
            "image": settings.encoder_image,
            "args": [
                "ingest",
                "--listen",
                f"0.0.0.0:{RTMP_PORT}",
                "--config",
                f"{CONFIG_DIR}/ingest.json",
                "--metrics-port",
                str(INGEST_METRICS),
                "--metrics-address",
                "0.0.0.0",
                # The channel's control record: a pod going because its channel stopped says so to
                # publishers (publishNotReadyAddresses on the ingest Services routes them to it meanwhile).
                "--store",
                "$(KUBECAST_STORE_URL)",
                "--stopped-linger",
                str(STOPPED_LINGER_SECONDS),
            ]
            + (["--http-listen", f"0.0.0.0:{HTTP_INGEST_PORT}"] if any(p.name == "http-ingest" for p in ports) else [])
            + (["--rtmps-listen", f"0.0.0.0:{RTMPS_PORT}"] if any(p.name == "rtmps" for p in ports) else [])
            + (
                ["--https-listen", f"0.0.0.0:{HTTPS_INGEST_PORT}"]
                if any(p.name == "https-ingest" for p in ports)
                else []
            )
            + (
                ["--tls-cert", f"{TLS_DIR}/{TLS_CERTIFICATE_KEY}", "--tls-key", f"{TLS_DIR}/{TLS_PRIVATE_KEY_KEY}"]
                if channel.spec.ingest.tls is not None
                else []
            )
            + (["--srt-listen", f"0.0.0.0:{SRT_PORT}"] if any(p.name == "srt" for p in ports) else []),
            "ports": [{"name": port.name, "containerPort": port.number, "protocol": port.protocol} for port in ports]
            + [{"name": "ingest-metrics", "containerPort": INGEST_METRICS}],
            "env": env,
            "envFrom": env_from,
            "readinessProbe": {"tcpSocket": {"port": RTMP_PORT}, "periodSeconds": 5},
            "livenessProbe": liveness_probe("ingest-metrics"),
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
            "volumeMounts": mounts,
            "securityContext": CONTAINER_SECURITY,
        },
        {
            "name": "encoder",
            "image": settings.encoder_image,
            "args": [
                "encoder",
                "--config",
                f"{CONFIG_DIR}/encoder.json",
                "--instance",
                instance,
                "--contribution",
                contribution_listen,
                "--store",
                "$(KUBECAST_STORE_URL)",
                "--metrics-port",
                str(ENCODER_METRICS),
                "--metrics-address",
                "0.0.0.0",
            ],
            "env": env,
            "envFrom": env_from,
            "ports": [{"name": "encoder-metrics", "containerPort": ENCODER_METRICS}]
            + ([{"name": "contribution", "containerPort": CONTRIBUTION_PORT}] if relay else []),
            **metrics_probes("encoder-metrics"),
            "resources": encoder_resources(channel),
            "volumeMounts": [m for m in mounts if m["name"] == "config"],
            "securityContext": CONTAINER_SECURITY,
        },
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_meta(f"{name}-encoder-{suffix}", namespace, owner, component_labels),
        "spec": {
            "replicas": replicas(channel),
            "selector": {"matchLabels": selector},
            # One pod per encoder: replace, never run two of the same instance at once.
            "strategy": {"type": "Recreate"},
            "template": {
                "metadata": {"labels": component_labels, "annotations": {"kubecast.io/spec-hash": spec_hash}},
                "spec": pod_spec(
                    settings,
                    # Never both encoders on one node; in different zones where the cluster has them.
                    affinity={
                        "podAntiAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "labelSelector": {"matchLabels": encoder_pair(name)},
                                    "topologyKey": "kubernetes.io/hostname",
                                }
                            ],
                            "preferredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "weight": 100,
                                    "podAffinityTerm": {
                                        "labelSelector": {"matchLabels": encoder_pair(name)},
                                        "topologyKey": "topology.kubernetes.io/zone",
                                    },
                                }
                            ],
                        }
                    },
                    securityContext={"fsGroup": 10001},
                    terminationGracePeriodSeconds=TERMINATION_GRACE_SECONDS,
                    containers=containers,
                    volumes=volumes,
                ),
            },
        },
    }


def pair_labels(name: str) -> dict[str, str]:
    return labels(instance=name, component="encoder", extra={"kubecast.io/channel": name})


def encoder_disruption_budget(channel: Channel, *, namespace: str, owner: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": object_meta(f"{channel.name}-encoders", namespace, owner, pair_labels(channel.name)),
        "spec": {"minAvailable": 1, "selector": {"matchLabels": encoder_pair(channel.name)}},
    }

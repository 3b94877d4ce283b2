"""A Channel's packager: one Deployment (Recreate strategy: the timeline has exactly one writer),
reading the Channel from encoder A's ConfigMap."""

from __future__ import annotations

from typing import Any

from kubecast.api import Channel

from ..settings import OperatorSettings
from .encoder import config_map_name, replicas
from .labels import labels, object_meta
from .pods import CONFIG_DIR, CONTAINER_SECURITY, INSTANCES, PACKAGER_METRICS, metrics_probes, pod_spec, store_env


def packager_deployment(
    channel: Channel, *, namespace: str, owner: dict[str, Any], settings: OperatorSettings, spec_hash: str
) -> dict[str, Any]:
    name = channel.name
    env, env_from = store_env(settings, namespace)
    packager_labels = labels(instance=name, component="packager", extra={"kubecast.io/channel": name})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_meta(f"{name}-packager", namespace, owner, packager_labels),
        "spec": {
            "replicas": replicas(channel),
            "strategy": {"type": "Recreate"},  # the timeline has exactly one writer
            "selector": {"matchLabels": {"kubecast.io/channel": name, "app.kubernetes.io/component": "packager"}},
            "template": {
                "metadata": {"labels": packager_labels, "annotations": {"kubecast.io/spec-hash": spec_hash}},
                "spec": pod_spec(
                    settings,
                    containers=[
                        {
                            "name": "packager",
                            "image": settings.packager_image,
                            "args": [
                                "packager",
                                "--config",
                                f"{CONFIG_DIR}/packager.json",
                                "--store",
                                "$(KUBECAST_STORE_URL)",
                                "--metrics-port",
                                str(PACKAGER_METRICS),
                                "--metrics-address",
                                "0.0.0.0",
                            ],
                            "env": env,
                            "envFrom": env_from,
                            "ports": [{"name": "metrics", "containerPort": PACKAGER_METRICS}],
                            **metrics_probes("metrics"),
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"memory": "512Mi"},
                            },
                            "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True}],
                            "securityContext": CONTAINER_SECURITY,
                        }
                    ],
                    volumes=[{"name": "config", "configMap": {"name": config_map_name(name, INSTANCES[0])}}],
                ),
            },
        },
    }

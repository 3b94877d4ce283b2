"""A StreamingEndpoint's children: its Deployment, Service and PodDisruptionBudget, a
HorizontalPodAutoscaler when it scales, and an Ingress when it has host names."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kubecast.api import Channel, StreamingEndpoint

from ..rollout import stamped
from ..settings import OperatorSettings
from .endpoint_config import EndpointConfigMount, endpoint_config_mount
from .labels import labels, object_meta, owner_reference
from .pods import CONTAINER_SECURITY, ENDPOINT_LIVENESS_PORT, HTTP_PORT, liveness_probe, pod_spec, store_env


def endpoint_labels(name: str) -> dict[str, str]:
    return labels(instance=name, component="endpoint", extra={"kubecast.io/endpoint": name})


def endpoint_selector(name: str) -> dict[str, str]:
    return {"kubecast.io/endpoint": name, "app.kubernetes.io/component": "endpoint"}


def endpoint_selector_text(name: str) -> str:
    """The pods' label selector in its string form: the scale subresource's labelSelectorPath
    (status.selector), which is how an autoscaler finds the pods to measure."""
    return ",".join(f"{key}={value}" for key, value in endpoint_selector(name).items())


def endpoint_deployment(
    endpoint: StreamingEndpoint,
    *,
    namespace: str,
    owner: dict[str, Any],
    settings: OperatorSettings,
    config: EndpointConfigMount,
) -> dict[str, Any]:
    name = endpoint.name
    spec = endpoint.spec
    env, env_from = store_env(settings, namespace)
    args = [
        "endpoint",
        "--store",
        "$(KUBECAST_STORE_URL)",
        "--listen",
        f"0.0.0.0:{HTTP_PORT}",
        "--liveness-listen",
        f"0.0.0.0:{ENDPOINT_LIVENESS_PORT}",
        *config.args,
    ]
    deployment_spec = {
        "selector": {"matchLabels": endpoint_selector(name)},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "template": {
            "metadata": {"labels": endpoint_labels(name), "annotations": config.annotations},
            "spec": pod_spec(
                settings,
                containers=[
                    {
                        "name": "endpoint",
                        "image": settings.packager_image,
                        "args": args,
                        "env": env,
                        "envFrom": env_from,
                        "ports": [
                            {"name": "http", "containerPort": HTTP_PORT},
                            {"name": "liveness", "containerPort": ENDPOINT_LIVENESS_PORT},
                        ],
                        # Ready: /healthz, served by the event loop, so a hung replica leaves the Service
                        # within seconds; alive: /livez from its own thread (restarted once hung 15 s).
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5},
                        "livenessProbe": liveness_probe("liveness"),
                        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
                        "securityContext": CONTAINER_SECURITY,
                        "volumeMounts": config.mounts,
                    }
                ],
                volumes=config.volumes,
            ),
        },
    }
    if spec.scaling is None:
        # With an autoscaler the operator never writes replicas: that field is the HPA's.
        deployment_spec["replicas"] = spec.replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_meta(f"{name}-endpoint", namespace, owner, endpoint_labels(name)),
        "spec": deployment_spec,
    }


def endpoint_service(endpoint: StreamingEndpoint, *, namespace: str, owner: dict[str, Any]) -> dict[str, Any]:
    name = endpoint.name
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(name, namespace, owner, endpoint_labels(name)),
        "spec": {
            "type": "ClusterIP",
            "selector": endpoint_selector(name),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def endpoint_disruption_budget(endpoint: StreamingEndpoint, *, namespace: str, owner: dict[str, Any]) -> dict[str, Any]:
    name = endpoint.name
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": object_meta(f"{name}-endpoint", namespace, owner, endpoint_labels(name)),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": endpoint_selector(name)}},
    }


def endpoint_autoscaler(endpoint: StreamingEndpoint, *, namespace: str, owner: dict[str, Any]) -> dict[str, Any]:
    name = endpoint.name
    scaling = endpoint.spec.scaling
    assert scaling is not None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": object_meta(f"{name}-endpoint", namespace, owner, endpoint_labels(name)),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{name}-endpoint"},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": scaling.target_cpu_utilization},
                    },
                }
            ],
        },
    }


def endpoint_ingress(endpoint: StreamingEndpoint, *, namespace: str, owner: dict[str, Any]) -> dict[str, Any]:
    name = endpoint.name
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": object_meta(name, namespace, owner, endpoint_labels(name)),
        "spec": {
            "rules": [
                {
                    "host": host,
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": name, "port": {"name": "http"}}},
                            }
                        ]
                    },
                }
                for host in endpoint.spec.host_names
            ]
        },
    }


def build_endpoint_children(
    endpoint: StreamingEndpoint,
    *,
    uid: str,
    namespace: str,
    settings: OperatorSettings,
    channels: Iterable[Channel] = (),
) -> list[dict[str, Any]]:
    """``channels``: the namespace's Channels, whose preview allow-lists the endpoint enforces."""
    owner = owner_reference(endpoint, uid)
    config = endpoint_config_mount(
        endpoint, channels, namespace=namespace, owner=owner, labels=endpoint_labels(endpoint.name)
    )
    children = [
        config.config_map,
        # The template's spec hash says whether the Deployment runs what was built (Reconciling).
        stamped(endpoint_deployment(endpoint, namespace=namespace, owner=owner, settings=settings, config=config)),
        endpoint_service(endpoint, namespace=namespace, owner=owner),
        endpoint_disruption_budget(endpoint, namespace=namespace, owner=owner),
    ]
    if endpoint.spec.scaling is not None:
        children.append(endpoint_autoscaler(endpoint, namespace=namespace, owner=owner))
    if endpoint.spec.host_names:
        children.append(endpoint_ingress(endpoint, namespace=namespace, owner=owner))
    return children

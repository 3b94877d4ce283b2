"""A Channel's network objects: per encoder an ingest Service (primary and secondary URLs) and,
in relay mode, a ClusterIP contribution Service (the other ingest forwards to it) behind a
NetworkPolicy that lets only the channel's own encoder pods reach it."""

from __future__ import annotations

import ipaddress
from typing import Any

from kubecast.api import Channel
from kubecast.api.channel import ServiceType

from .encoder import encoder_labels, encoder_pair, encoder_selector, pair_labels
from .labels import labels, object_meta
from .pods import CONTRIBUTION_PORT, ENCODER_METRICS, INGEST_METRICS, ingest_ports


def contribution_service(channel: Channel, *, instance: str, namespace: str, owner: dict[str, Any]) -> dict[str, Any]:
    name = channel.name
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(
            f"{name}-contribution-{instance.lower()}", namespace, owner, encoder_labels(name, instance)
        ),
        "spec": {
            "type": "ClusterIP",
            "selector": encoder_selector(name, instance),
            "ports": [
                {"name": "contribution", "port": CONTRIBUTION_PORT, "targetPort": "contribution", "protocol": "TCP"}
            ],
        },
    }


def ingest_service(channel: Channel, *, instance: str, namespace: str, owner: dict[str, Any]) -> dict[str, Any]:
    name = channel.name
    ports = ingest_ports(channel)
    ingest = channel.spec.ingest
    spec: dict[str, Any] = {
        "type": ingest.service_type.value,
        "selector": encoder_selector(name, instance),
        # A pod shutting down because its channel stopped keeps its ingest listening for a while, to
        # refuse publishers with the reason (kubecast/ingest/control.py): its endpoint must stay
        # routable while it terminates.  The one pod behind this Service has no ready sibling to prefer.
        "publishNotReadyAddresses": True,
        # TCP and UDP in one LoadBalancer Service: Kubernetes >= 1.26 (MixedProtocolLBService).
        "ports": [
            {"name": port.name, "port": port.service_port, "targetPort": port.name, "protocol": port.protocol}
            for port in ports
        ],
    }
    if ingest.allowed_ips and ingest.service_type is not ServiceType.CLUSTER_IP:
        # The ingest checks the publisher's address: no hop through another node, whose SNAT
        # would put that node's address in its place (docs/kubernetes.md).
        spec["externalTrafficPolicy"] = "Local"
        if ingest.service_type is ServiceType.LOAD_BALANCER:
            # The cloud's firewall drops other sources before they reach a node.
            spec["loadBalancerSourceRanges"] = [
                str(ipaddress.ip_network(cidr, strict=False)) for cidr in ingest.allowed_ips
            ]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(
            f"{name}-ingest-{instance.lower()}",
            namespace,
            owner,
            labels(
                instance=name, component="ingest", extra={"kubecast.io/channel": name, "kubecast.io/encoder": instance}
            ),
        ),
        "spec": spec,
    }


def encoder_network_policy(channel: Channel, *, namespace: str, owner: dict[str, Any]) -> dict[str, Any]:
    name = channel.name
    open_ports = [{"port": port.number, "protocol": port.protocol} for port in ingest_ports(channel)]
    open_ports += [{"port": port, "protocol": "TCP"} for port in (INGEST_METRICS, ENCODER_METRICS)]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": object_meta(f"{name}-encoders", namespace, owner, pair_labels(name)),
        "spec": {
            "podSelector": {"matchLabels": encoder_pair(name)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"ports": open_ports},
                {
                    "from": [{"podSelector": {"matchLabels": encoder_pair(name)}}],
                    "ports": [{"port": CONTRIBUTION_PORT, "protocol": "TCP"}],
                },
            ],
        },
    }

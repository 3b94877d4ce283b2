"""A StreamingEndpoint's status on the kmock emulator: ``Reconciling`` until its Deployment has
rolled out the spec of the endpoint's current generation (carried up by the Deployment's events),
and ``StorageSecretMissing`` when its pods' object storage credentials are missing."""

from __future__ import annotations

import pytest
from emulator import DEPLOYMENTS, ENDPOINTS, as_user, conditions, eventually, exists, obj, operator, path_of, roll_out

pytestmark = pytest.mark.timeout(120)


def endpoint_body() -> dict:
    return {
        "apiVersion": "kubecast.io/v1alpha1",
        "kind": "StreamingEndpoint",
        "metadata": {"name": "origin", "namespace": "media", "uid": "uid-origin", "generation": 1},
        "spec": {"replicas": 1},
    }


def condition(cluster, type_: str) -> tuple[str, str]:
    found = conditions(cluster, "origin", ENDPOINTS)[type_]
    return found["status"], found["reason"]


def status(cluster) -> dict:
    return obj(cluster, ENDPOINTS, "origin").raw.get("status") or {}


async def report(cluster, *, replicas: int, ready: int) -> None:
    """The Deployment controller's report for the Deployment's current generation."""
    deployment = obj(cluster, DEPLOYMENTS, "origin-endpoint").raw
    body = {
        "status": {
            "observedGeneration": deployment["metadata"]["generation"],
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": ready,
        }
    }
    path = "/apis/apps/v1/namespaces/media/deployments/origin-endpoint/status"
    assert await as_user(cluster, "PATCH", path, body) == 200


async def test_reconciling_until_the_deployment_runs_the_new_generation(cluster):
    cluster.objects[ENDPOINTS, "media", "origin"] = endpoint_body()
    async with operator():
        await eventually(lambda: exists(cluster, DEPLOYMENTS, "origin-endpoint"), what="the Deployment")
        await eventually(lambda: condition(cluster, "Reconciling") == ("True", "Starting"), what="Starting")
        await roll_out(cluster, "origin-endpoint")
        await eventually(lambda: condition(cluster, "Reconciling") == ("False", "Reconciled"), what="Reconciled")
        assert condition(cluster, "Ready") == ("True", "ReplicasReady") and status(cluster)["observedGeneration"] == 1
        template = obj(cluster, DEPLOYMENTS, "origin-endpoint").raw["spec"]["template"]
        assert template["metadata"]["annotations"]["kubecast.io/spec-hash"]

        patch = {"metadata": {"generation": 2}, "spec": {"replicas": 3}}
        assert await as_user(cluster, "PATCH", path_of("origin", "streamingendpoints"), patch) == 200
        await eventually(lambda: status(cluster).get("observedGeneration") == 2, what="generation 2 observed")
        # the Deployment has the new spec, but its controller has not acted on it: still serving, not done
        assert condition(cluster, "Reconciling") == ("True", "RollingOut")
        assert condition(cluster, "Ready") == ("True", "ReplicasReady")
        await report(cluster, replicas=3, ready=2)
        await eventually(lambda: status(cluster).get("readyReplicas") == 2, what="2 of 3 ready")
        assert condition(cluster, "Reconciling") == ("True", "RollingOut"), "a replica is not ready yet"
        await report(cluster, replicas=3, ready=3)
        await eventually(lambda: condition(cluster, "Reconciling") == ("False", "Reconciled"), what="rolled out")
        assert status(cluster)["replicas"] == 3 and status(cluster)["readyReplicas"] == 3


async def test_a_missing_storage_secret_stalls_the_endpoint_until_it_exists(cluster, monkeypatch):
    monkeypatch.setenv("KUBECAST_STORE_SECRET", "kubecast-store")
    cluster.objects[ENDPOINTS, "media", "origin"] = endpoint_body()
    async with operator():
        await eventually(lambda: condition(cluster, "Stalled") == ("True", "StorageSecretMissing"), what="Stalled")
        ready = conditions(cluster, "origin", ENDPOINTS)["Ready"]
        assert (ready["status"], ready["reason"]) == ("False", "StorageSecretMissing")
        assert ready["message"].startswith(
            "Secret kubecast-store (object storage credentials) does not exist in namespace media"
        )
        assert "endpoint pods" in ready["message"]
        assert condition(cluster, "Reconciling") == ("False", "StorageSecretMissing")
        assert not exists(cluster, DEPLOYMENTS, "origin-endpoint"), "no pods that would wait for the Secret"
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "kubecast-store", "namespace": "media"},
            "data": {"AWS_ACCESS_KEY_ID": "eA=="},
        }
        assert await as_user(cluster, "POST", "/api/v1/namespaces/media/secrets", secret) in (200, 201)
        await eventually(
            lambda: exists(cluster, DEPLOYMENTS, "origin-endpoint"), timeout=25, what="the Deployment, once it exists"
        )
        await eventually(lambda: condition(cluster, "Stalled") == ("False", "Starting"), what="Stalled cleared")
        env_from = obj(cluster, DEPLOYMENTS, "origin-endpoint").raw["spec"]["template"]["spec"]["containers"][0]
        assert env_from["envFrom"] == [{"secretRef": {"name": "kubecast-store"}}]

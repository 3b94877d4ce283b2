"""Channel stop and start with the operator under kopf against the kmock emulator: the encoder
and packager Deployments go to zero replicas and back, and status.phase with the conditions
follows what the Deployment controller (played by the test) reports."""

from __future__ import annotations

import pytest
from emulator import CHANNELS, DEPLOYMENTS, as_user, channel_body, conditions, eventually, obj, operator, path_of

from kubecast.operator.crds import all_crds

pytestmark = pytest.mark.timeout(120)

PARTS = ("news-encoder-a", "news-encoder-b", "news-packager")


def replicas(cluster) -> dict[str, int]:
    return {name: obj(cluster, DEPLOYMENTS, name).raw["spec"]["replicas"] for name in PARTS}


def phase(cluster) -> str | None:
    return (obj(cluster, CHANNELS, "news").raw.get("status") or {}).get("phase")


async def controller(cluster, name: str, *, pods: int) -> None:
    """The Deployment controller has acted on the current generation: ``pods`` ready pods."""
    generation = obj(cluster, DEPLOYMENTS, name).raw["metadata"]["generation"]
    status = {"observedGeneration": generation, "replicas": pods, "updatedReplicas": pods, "readyReplicas": pods}
    path = f"/apis/apps/v1/namespaces/media/deployments/{name}/status"
    assert await as_user(cluster, "PATCH", path, {"status": status}) == 200


async def set_state(cluster, state: str, generation: int) -> None:
    change = {"metadata": {"generation": generation}, "spec": {"state": state}}
    assert await as_user(cluster, "PATCH", path_of(), change) == 200


def test_kubectl_get_channels_shows_the_phase():
    crd = next(c for c in all_crds() if c["spec"]["names"]["kind"] == "Channel")
    columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    assert columns[0] == {"name": "Phase", "type": "string", "jsonPath": ".status.phase"}
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["phase"]
    assert schema["enum"] == ["Starting", "Running", "Stopping", "Stopped"]


async def test_stopping_scales_to_zero_and_the_phase_follows_the_pods(cluster):
    cluster.objects["v1/secrets", "media", "news-key"] = {
        "metadata": {"name": "news-key", "namespace": "media"},
        "data": {"streamKey": "c2VjcmV0"},
    }
    cluster.objects[CHANNELS, "media", "news"] = channel_body()
    async with operator():
        await eventually(lambda: obj(cluster, DEPLOYMENTS, "news-packager"), what="the Deployments")
        assert replicas(cluster) == dict.fromkeys(PARTS, 1)
        assert phase(cluster) in (None, "Starting")
        for name in PARTS:
            await controller(cluster, name, pods=1)
        await eventually(lambda: phase(cluster) == "Running", what="phase Running")

        await set_state(cluster, "Stopped", 2)
        await eventually(lambda: replicas(cluster) == dict.fromkeys(PARTS, 0), what="zero replicas")
        await eventually(lambda: phase(cluster) == "Stopping", what="phase Stopping")
        assert conditions(cluster, "news")["Reconciling"]["status"] == "True"
        for name in PARTS:
            await controller(cluster, name, pods=0)
        await eventually(lambda: phase(cluster) == "Stopped", what="phase Stopped")
        stopped = conditions(cluster, "news")
        assert (stopped["Ready"]["status"], stopped["Ready"]["reason"]) == ("False", "Stopped")
        assert stopped["Reconciling"]["status"] == "False" and stopped["Stalled"]["status"] == "False"

        await set_state(cluster, "Running", 3)
        await eventually(lambda: replicas(cluster) == dict.fromkeys(PARTS, 1), what="one replica each again")
        await eventually(lambda: phase(cluster) == "Starting", what="phase Starting")
        for name in PARTS:
            await controller(cluster, name, pods=1)
        await eventually(lambda: phase(cluster) == "Running", what="phase Running again")


async def test_a_channel_created_stopped_never_gets_pods(cluster):
    cluster.objects["v1/secrets", "media", "news-key"] = {
        "metadata": {"name": "news-key", "namespace": "media"},
        "data": {"streamKey": "c2VjcmV0"},
    }
    body = channel_body()
    body["spec"]["state"] = "Stopped"
    cluster.objects[CHANNELS, "media", "news"] = body
    async with operator():
        await eventually(lambda: obj(cluster, DEPLOYMENTS, "news-packager"), what="the Deployments")
        assert replicas(cluster) == dict.fromkeys(PARTS, 0)
        await eventually(lambda: phase(cluster) in ("Stopping", "Stopped"), what="a stopped phase")
        for name in PARTS:
            await controller(cluster, name, pods=0)
        await eventually(lambda: phase(cluster) == "Stopped", what="phase Stopped")

"""The benchmark's emulator (apiserver.ScaleEmulator) behaves as the API server does where the
operator's request count depends on it: versions, generations, the status subresource, apply."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import kmock
from apiserver import ScaleEmulator
from kubernetes_asyncio.client import Configuration

from kubecast.operator.api import KubeApi

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "enc", "namespace": "media"},
    "spec": {"replicas": 1, "template": {"metadata": {"annotations": {"hash": "1"}}}},
}


async def test_versions_generations_status_and_watch_are_the_api_servers():
    async with ScaleEmulator() as emulator, kmock.Server(emulator):
        for resource, kind in (("apps/v1/deployments", "Deployment"), ("v1/events", "Event")):
            emulator.resources[resource] = {
                "kind": kind,
                "namespaced": True,
                "subresources": ["status"],
                "verbs": ["get", "list", "watch", "create", "patch", "delete"],
            }
        url = str(emulator.url).rstrip("/")
        api = KubeApi(Configuration(host=url))
        try:
            created = await api.apply(DEPLOYMENT)  # absent: the apply creates it
            assert created["metadata"]["generation"] == 1 and created["metadata"]["resourceVersion"] == "1"
            await asyncio.sleep(0)  # the emulated Deployment controller reports it ready
            ready = await api.get("apps/v1", "Deployment", "media", "enc")
            assert (
                ready is not None
                and ready["status"]["observedGeneration"] == 1
                and ready["metadata"]["resourceVersion"] == "2"
            )
            assert (await api.apply(DEPLOYMENT))["metadata"]["resourceVersion"] == "2"  # nothing changed: no version
            changed = json.loads(json.dumps(DEPLOYMENT))
            changed["spec"]["template"]["metadata"]["annotations"]["hash"] = "2"
            changed["status"] = {"readyReplicas": 0}  # ignored: status is a subresource
            rolled = await api.apply(changed)
            assert rolled["metadata"]["generation"] == 2 and rolled["status"]["observedGeneration"] == 1
            status = await api.patch_status("apps/v1", "Deployment", "media", "enc", {"readyReplicas": 0})
            assert (
                status is not None and status["metadata"]["generation"] == 2 and status["status"]["readyReplicas"] == 0
            )
            assert (
                emulator.creates_by_apply["deployments"] == 1
                and emulator.counts["patch", "deployments"] == 3
                and emulator.counts["patch", "deployments/status"] == 1
            )
            async with aiohttp.ClientSession() as session:
                async with session.post(
                    f"{url}/api/v1/namespaces/media/events", json={"metadata": {"generateName": "ev-"}}
                ) as sent:
                    event = await sent.json()
                assert event["metadata"]["name"].startswith("ev-") and event["metadata"]["uid"]
                watch = f"{url}/apis/apps/v1/namespaces/media/deployments?watch=true&resourceVersion=2&timeoutSeconds=1"
                async with session.get(watch) as response:
                    lines = [json.loads(line) for line in (await response.read()).splitlines()]
            # From version 2 on: the rollout, the controller's status and the status patch, in order.
            assert [(e["type"], e["object"]["metadata"]["resourceVersion"]) for e in lines] == [
                ("MODIFIED", "3"),
                ("MODIFIED", "4"),
                ("MODIFIED", "5"),
            ]
        finally:
            await api.close()

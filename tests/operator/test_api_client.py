"""The operator's Kubernetes client sends its requests from the event loop: no thread per request
unless kopf is told to trust the environment (proxy variables, ~/.netrc), which aiohttp then
reads in a thread for every request."""

from __future__ import annotations

import asyncio

import kmock
import kopf
from apiserver import ScaleEmulator

from kubecast.operator.api import KubeApi

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "enc", "namespace": "media"},
    "spec": {"replicas": 1, "template": {"metadata": {"annotations": {"hash": "1"}}}},
}


async def test_no_thread_per_request_unless_kopf_trusts_the_environment(monkeypatch):
    loop = asyncio.get_running_loop()
    handed_to_threads: list[object] = []
    run_in_executor = loop.run_in_executor

    def counted(executor, function, *args):
        handed_to_threads.append(function)
        return run_in_executor(executor, function, *args)

    async with ScaleEmulator() as emulator, kmock.Server(emulator):
        emulator.resources["apps/v1/deployments"] = {
            "kind": "Deployment",
            "namespaced": True,
            "subresources": ["status"],
            "verbs": ["get", "list", "watch", "create", "patch", "delete"],
        }
        url = str(emulator.url).rstrip("/")
        monkeypatch.setattr(loop, "run_in_executor", counted)
        api = KubeApi.from_connection_info(kopf.ConnectionInfo(server=url))
        try:
            await api.apply(DEPLOYMENT)
            assert await api.get("apps/v1", "Deployment", "media", "enc") is not None
            assert await api.list("apps/v1", "Deployment", "media")
        finally:
            await api.close()
        assert handed_to_threads == []
        trusting = KubeApi.from_connection_info(kopf.ConnectionInfo(server=url, trust_env=True))
        try:
            assert await trusting.get("apps/v1", "Deployment", "media", "enc") is not None
        finally:
            await trusting.close()
        assert handed_to_threads, "the setting reaches the client: aiohttp now reads the environment in a thread"

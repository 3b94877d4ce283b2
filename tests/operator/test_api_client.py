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


async def test_callers_waiting_for_a_kind_all_resume_in_the_same_turn_of_the_loop():
    """At start-up ~1000 reconciles want each kind at once.  They used to queue on a lock that woke one
    waiter per turn of the event loop, so they resumed one turn after another: with thousands of tasks
    a turn is slow, and 1000 Channels waited minutes without a status (bench/operator_scale.py)."""
    callers = 500
    turns = 0
    stop = asyncio.Event()

    async def count_turns() -> None:
        nonlocal turns
        while not stop.is_set():
            turns += 1
            await asyncio.sleep(0)

    async with ScaleEmulator() as emulator, kmock.Server(emulator):
        emulator.resources["apps/v1/deployments"] = {
            "kind": "Deployment",
            "namespaced": True,
            "subresources": ["status"],
            "verbs": ["get", "list", "watch", "create", "patch", "delete"],
        }
        api = KubeApi.from_connection_info(kopf.ConnectionInfo(server=str(emulator.url).rstrip("/")))
        try:
            counter = asyncio.create_task(count_turns())
            resources = await asyncio.gather(*(api._resource("apps/v1", "Deployment") for _ in range(callers)))
            stop.set()
            await counter
        finally:
            await api.close()
    assert {resource.kind for resource in resources} == {"Deployment"}
    # The client's discovery (three requests to the emulator, which runs in this loop: ~30 turns),
    # then every caller at once; one turn per caller would be over 500.
    assert turns < callers / 5, f"{turns} turns of the loop for {callers} callers of one discovery"


async def test_a_discovery_the_server_never_answers_fails_its_callers_and_is_tried_again(monkeypatch):
    """The library's discovery requests have no timeout; a server that accepts and never answers used to
    leave every request for that kind waiting for good."""
    monkeypatch.setattr("kubecast.operator.api.DISCOVERY_TIMEOUT", 0.5)
    accepted: list[asyncio.StreamWriter] = []

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    api = KubeApi.from_connection_info(kopf.ConnectionInfo(server=f"http://127.0.0.1:{port}"))
    try:
        for _ in range(2):  # the second round asks again rather than keeping the failure
            answers = await asyncio.wait_for(
                asyncio.gather(*(api._resource("apps/v1", "Deployment") for _ in range(3)), return_exceptions=True),
                10,
            )
            assert [type(answer) for answer in answers] == [TimeoutError] * 3
        assert len(accepted) == 2, "one connection per round: the callers of a round share one discovery"
    finally:
        await api.close()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()

"""Two operator replicas on the emulator, as the chart runs them: freezing the active one (SIGSTOP,
a hung pod that nothing has restarted yet) lets the standby take over and reconcile a change
within 30 s.

Each replica is a real ``kubecast operator`` process with the arguments of the chart's
Deployment (two replicas, watching one namespace: peering on, through the KopfPeering the chart
creates there), logged in to the emulator through the test's kubeconfig.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time

import pytest
from emulator import DEPLOYMENTS, ENDPOINTS, as_user, eventually, obj, path_of
from helpers import free_port
from test_helm import render
from test_operator_lifecycle import endpoint_body

pytestmark = pytest.mark.timeout(120)

TAKEOVER_WITHIN = 30.0


class Replica:
    """One ``kubecast operator`` process; its output is kept for the assertions and for failures."""

    def __init__(self, name: str, args: list[str]) -> None:
        self.name = name
        self.args = args
        self.lines: list[str] = []
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "kubecast.cli",
            *self.args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        while line := await self.process.stdout.readline():
            self.lines.append(line.decode(errors="replace").rstrip())

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def signal(self, signum: int) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signum)

    async def stop(self) -> None:
        if self.process is None:
            return
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self.process.wait()
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 10)

    def output(self) -> str:
        return f"--- {self.name} ---\n" + "\n".join(self.lines[-60:])


def chart_replica_args(documents: list[dict], name: str) -> list[str]:
    """The operator container's arguments from the rendered chart, with this process's own ports
    (two replicas share the test's host, not a pod each)."""
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 2
    args = [a for a in deployment["spec"]["template"]["spec"]["containers"][0]["args"] if "--metrics-" not in a]
    return [*args, f"--metrics-port={free_port()}", f"--liveness=http://127.0.0.1:{free_port()}/healthz"]


async def test_the_standby_takes_over_from_a_frozen_active_replica(cluster):
    documents = render({"replicaCount": 2, "watchNamespaces": ["media"]})
    [peering] = [d for d in documents if d["kind"] == "KopfPeering"]
    assert peering["metadata"] == {**peering["metadata"], "name": "kubecast", "namespace": "media"}
    cluster.objects["kopf.dev/v1/kopfpeerings", "media", "kubecast"] = peering
    cluster.objects[ENDPOINTS, "media", "origin"] = endpoint_body(replicas=2)
    args = chart_replica_args(documents, "first")
    assert "--standalone" not in args and "--namespace=media" in args
    first, second = Replica("first", args), Replica("second", chart_replica_args(documents, "second"))
    peers = lambda: cluster.objects["kopf.dev/v1/kopfpeerings", "media", "kubecast"].raw.get("status") or {}  # noqa: E731
    try:
        await first.start()
        await eventually(lambda: first.said("Resuming operations"), timeout=40, what="the first replica active")
        await second.start()  # its start time, hence its priority, is lower: it must stand by
        await eventually(
            lambda: obj(cluster, ENDPOINTS, "origin").raw.get("status", {}).get("observedGeneration") == 1,
            timeout=40,
            what="the first replica reconciling",
        )
        await eventually(lambda: len(peers()) == 2, timeout=30, what="both replicas in the peering record")
        # kopf starts a peering replica paused and says so only when it resumes.
        await asyncio.sleep(2)
        assert not second.said("Resuming operations") and not second.said("Handler"), "the younger one waits"
        assert not first.said("Pausing operations"), "the older replica leads"

        first.signal(signal.SIGSTOP)
        frozen_at = time.monotonic()
        assert (
            await as_user(
                cluster,
                "PATCH",
                path_of("origin", "streamingendpoints"),
                {"metadata": {"generation": 2}, "spec": {"replicas": 3}},
            )
            == 200
        )
        await eventually(
            lambda: (
                obj(cluster, DEPLOYMENTS, "origin-endpoint").raw["spec"].get("replicas") == 3
                and obj(cluster, ENDPOINTS, "origin").raw.get("status", {}).get("observedGeneration") == 2
            ),
            timeout=TAKEOVER_WITHIN,
            what="the standby reconciling the change",
        )
        took = time.monotonic() - frozen_at
        print(f"the standby reconciled the change {took:.1f} s after the active replica froze", flush=True)
        assert second.said("Resuming operations"), "the standby took over"
    except BaseException:
        print(first.output(), second.output(), sep="\n", file=sys.stderr)
        raise
    finally:
        with contextlib.suppress(ProcessLookupError):
            first.signal(signal.SIGCONT)
        await first.stop()
        await second.stop()

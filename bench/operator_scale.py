"""The operator at scale: N Channels on the kmock emulator.

    python bench/operator_scale.py [--channels 20]

A child process serves the kmock emulator with N Channels (and their stream-key Secret) and
plays the part of the cluster's controllers: every Deployment the operator creates is
reported ready.  This process runs the operator and nothing else, so its CPU time and peak
RSS are the operator's own.  Prints the time until every Channel has all its children and a
Ready=True condition, the operator's CPU seconds and peak RSS, and the emulator's CPU seconds.
Goal: 1000 Channels under 60 s and under 300 MB.

kmock keeps every request in a history and matches each new request against it, so its cost
per request grows with the run; at a few hundred Channels the emulator, not the operator,
sets the wall time (20 Channels: ~80 s wall, ~85 CPU s in the emulator, ~3.4 CPU s in the
operator).  So the figure to read is the operator's CPU seconds per Channel, printed last;
1000 Channels on kmock are out of reach of one benchmark run.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "operator"))

CHANNELS, DEPLOYMENTS = "kubecast.io/v1alpha1/channels", "apps/v1/deployments"


async def serve_emulator(count: int) -> None:
    """The child process: emulator + fake controllers; prints its URL, runs until stdin closes."""
    import kmock
    from test_operator_kmock import CORE, VERBS

    emulator = kmock.KubernetesEmulator()
    # kmock checks each request against its whole request history (it answers `request in
    # view` by scanning); a bounded history keeps that cost flat.  A private attribute, so
    # only this benchmark touches it; the tests keep kmock as it is.
    emulator._requests = collections.deque(maxlen=256)
    async with emulator, kmock.Server(emulator):
        for resource_name, (kind, namespaced) in CORE.items():
            emulator.resources[resource_name] = {"kind": kind, "namespaced": namespaced, "verbs": VERBS}
        for plural, kind in (("channels", "Channel"), ("programs", "Program"), ("streamingendpoints", "StreamingEndpoint")):
            emulator.resources[f"kubecast.io/v1alpha1/{plural}"] = {"kind": kind, "namespaced": True, "subresources": ["status"], "verbs": VERBS}
        emulator.objects["v1/secrets", "media", "key"] = {"metadata": {"name": "key", "namespace": "media"}, "data": {"streamKey": "a2V5"}}
        for index in range(count):
            emulator.objects[CHANNELS, "media", f"ch{index}"] = {
                "apiVersion": "kubecast.io/v1alpha1", "kind": "Channel",
                "metadata": {"name": f"ch{index}", "namespace": "media", "uid": f"uid-{index}", "generation": 1, "resourceVersion": "1"},
                "spec": {"ingest": {"streamKeySecretRef": {"name": "key", "key": "streamKey"}}, "encoding": {"preset": "Default720p"}},
            }
        print(str(emulator.url).rstrip("/"), flush=True)
        closed = asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        marked: set = set()
        while not closed.done():
            for key in list(emulator.objects):
                if key[0] == DEPLOYMENTS and key not in marked and not emulator.objects[key].deleted:
                    emulator.objects[key].patch({"status": {"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1}})
                    marked.add(key)
            await asyncio.sleep(0.5)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"cpu": usage.ru_utime + usage.ru_stime, "deployments": len(marked)}), flush=True)


def ready_count(channels: list[dict]) -> int:
    return sum(1 for channel in channels
               if any(c.get("type") == "Ready" and c.get("status") == "True" for c in (channel.get("status") or {}).get("conditions", [])))


async def run(count: int, limit: float) -> None:
    import kopf

    import kubecast.operator.handlers  # noqa: F401  (registers the handlers)

    child = subprocess.Popen([sys.executable, __file__, "--serve-emulator", str(count)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        url = child.stdout.readline().strip()
        if not url.startswith("http"):
            raise SystemExit("the emulator process did not start")
        folder = Path(tempfile.mkdtemp())
        (folder / "kubeconfig").write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "k",
            "clusters": [{"name": "k", "cluster": {"server": url}}],
            "contexts": [{"name": "k", "context": {"cluster": "k", "user": "u"}}], "users": [{"name": "u", "user": {"token": "t"}}],
        }))
        os.environ["KUBECONFIG"] = str(folder / "kubeconfig")
        os.environ.pop("KUBERNETES_SERVICE_HOST", None)
        os.environ.setdefault("KUBECAST_STORE_URL", "s3://media/live")
        settings = kopf.OperatorSettings()
        settings.scanning.disabled = True
        settings.batching.worker_limit = 200
        # kmock has no generateName, so every Event kopf posts collides (409) after the first.
        settings.posting.enabled = False
        stop, ready = asyncio.Event(), asyncio.Event()
        started = time.monotonic()
        task = asyncio.create_task(kopf.operator(namespaces=["media"], standalone=True, settings=settings, stop_flag=stop, ready_flag=ready))
        done = 0
        try:
            async with aiohttp.ClientSession() as session:
                while time.monotonic() - started < limit and not task.done():
                    async with session.get(f"{url}/apis/kubecast.io/v1alpha1/namespaces/media/channels") as response:
                        done = ready_count((await response.json()).get("items", []))
                    if done == count:
                        break
                    await asyncio.sleep(1)
        finally:
            elapsed = time.monotonic() - started
            stop.set()
            await asyncio.wait_for(task, 120)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        child.stdin.close()
        emulator = json.loads(child.stdout.readline() or "{}")
        print(f"{done}/{count} Channels Ready, {emulator.get('deployments', '?')} Deployments, in {elapsed:.1f} s wall")
        print(f"operator: {usage.ru_utime + usage.ru_stime:.1f} CPU s, peak RSS {usage.ru_maxrss / 1024:.0f} MB; "
              f"emulator: {emulator.get('cpu', float('nan')):.1f} CPU s")
        print(f"operator CPU per Channel: {(usage.ru_utime + usage.ru_stime) / max(count, 1) * 1000:.0f} ms (includes start-up)")
        print("goal: 1000 Channels under 60 s and under 300 MB")
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(10)


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--limit", type=float, default=600, help="give up after this many seconds")
    parser.add_argument("--serve-emulator", type=int, metavar="N", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve_emulator is not None:
        asyncio.run(serve_emulator(options.serve_emulator))
    else:
        asyncio.run(run(options.channels, options.limit))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The operator at scale: N Channels on an emulator that behaves as the API server does.

    python bench/operator_scale.py [--channels 1000] [--steady 180]

A child process, pinned to CPU 1 with taskset, serves ``ScaleEmulator`` (tests/operator/apiserver.py:
kmock with a global resourceVersion, generations, objects found by key, generateName, create on
apply, the status subresource apart, and a Deployment controller that reports each Deployment ready)
with N Channels and their stream-key Secret.  This process, pinned to CPU 0, runs the operator with
its production settings and intervals (120 s refresh, 30 s stream report) and a local-folder store,
and nothing else, so its CPU time and peak RSS are the operator's own.

Two phases: start-up (until every Channel has Ready=True) and steady state (``--steady`` seconds
after that, nothing changing).  For each it prints the API requests per Channel by verb and
resource, status writes and handler runs; for the steady state also requests/s and API writes per
Channel per 10 minutes, and the Events the operator posted by type and reason (with one message of
each).  A run counts only if the emulator's CPU time stayed under half of the
wall time (else the emulator, not the operator, may have set the pace): the last line says so.
Goals: 1000 Channels Ready within 60 s with the operator's RSS under 300 MB; in steady state,
fewer than 2 API writes per Channel per 10 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "operator"))

Json = dict[str, Any]
VERBS = ["get", "list", "watch", "create", "patch", "delete"]
WRITES = ("create", "patch", "delete")
CHILD_KINDS = ("configmaps", "deployments", "services", "poddisruptionbudgets", "networkpolicies")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def serve_emulator(count: int) -> None:
    """The child process: the emulator with N Channels; prints its URL, runs until stdin closes."""
    import kmock
    from apiserver import ScaleEmulator
    from emulator import CORE, CRDS

    emulator = ScaleEmulator()
    emulator._requests = collections.deque(maxlen=16)  # noqa: SLF001 - kmock's request history: not needed

    async def state(request: object) -> Json:
        del request
        ready = children = 0
        events: collections.Counter[tuple[str, str]] = collections.Counter()
        examples: dict[str, str] = {}
        for (key, _), objects in list(emulator._store.items()):  # noqa: SLF001
            if key[2] in CHILD_KINDS:
                children += len(objects)
            if key[2] == "events":
                for event in objects.values():
                    events[event.get("type", ""), event.get("reason", "")] += 1
                    examples.setdefault(event.get("reason", ""), str(event.get("message", ""))[:160])
            if key[2] == "channels":
                ready += sum(
                    1
                    for obj in objects.values()
                    if any(
                        c.get("type") == "Ready" and c.get("status") == "True"
                        for c in (obj.get("status") or {}).get("conditions", [])
                    )
                )
        return {
            "ready": ready,
            "children": children,
            "cpu": _cpu(),
            "revision": emulator.revision,
            "counts": [[verb, plural, n] for (verb, plural), n in emulator.counts.items()],
            "events": [[kind, reason, n, examples[reason]] for (kind, reason), n in events.items()],
        }

    emulator["get /bench/state"] << state
    async with emulator, kmock.Server(emulator):
        for name, (kind, namespaced) in CORE.items():
            subresources = (
                ["status"]
                if kind in ("Deployment", "PodDisruptionBudget", "HorizontalPodAutoscaler", "Service")
                else []
            )
            emulator.resources[name] = {
                "kind": kind,
                "namespaced": namespaced,
                "verbs": VERBS,
                "subresources": subresources,
            }
        for plural, kind in CRDS:
            emulator.resources[f"kubecast.io/v1alpha1/{plural}"] = {
                "kind": kind,
                "namespaced": True,
                "subresources": ["status"],
                "verbs": VERBS,
            }
        emulator.put("v1/namespaces", None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "media"}})
        emulator.put(
            "v1/secrets",
            "media",
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "key"}, "data": {"streamKey": "a2V5"}},
        )
        for index in range(count):
            emulator.put(
                "kubecast.io/v1alpha1/channels",
                "media",
                {
                    "apiVersion": "kubecast.io/v1alpha1",
                    "kind": "Channel",
                    "metadata": {"name": f"ch{index}"},
                    "spec": {
                        "ingest": {"streamKeySecretRef": {"name": "key", "key": "streamKey"}},
                        "encoding": {"preset": "Default720p"},
                    },
                },
            )
        emulator.counts.clear()
        print(str(emulator.url).rstrip("/"), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


class Counts:
    """The emulator's request counts at one moment."""

    def __init__(self, state: Json) -> None:
        self.cpu: float = state["cpu"]
        self.ready: int = state["ready"]
        self.children: int = state["children"]
        self.by: collections.Counter[tuple[str, str]] = collections.Counter(
            {(verb, plural): n for verb, plural, n in state["counts"]}
        )
        # Events the operator posted so far, by (type, reason), and one message of each reason
        self.events: collections.Counter[tuple[str, str]] = collections.Counter(
            {(kind, reason): n for kind, reason, n, _ in state["events"]}
        )
        self.examples: dict[str, str] = {reason: example for _, reason, _, example in state["events"]}

    def __sub__(self, other: Counts) -> collections.Counter[tuple[str, str]]:
        return self.by - other.by


async def emulator_state(session: aiohttp.ClientSession, url: str) -> Counts:
    async with session.get(f"{url}/bench/state") as response:
        return Counts(await response.json())


def count_handler_runs() -> collections.Counter[str]:
    """Every handler kopf invokes (change, event, index handlers; a daemon once), by function name."""
    from kopf._core.actions import invocation

    runs: collections.Counter[str] = collections.Counter()
    invoke = invocation.invoke

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        runs[getattr(fn, "__name__", repr(fn))] += 1
        return await invoke(fn, *args, **kwargs)

    invocation.invoke = counted  # type: ignore[assignment]
    return runs


def event_table(title: str, later: Counts, earlier: Counts, channels: int, scale: float = 1.0) -> list[str]:
    """The Events posted between two moments by type and reason, per Channel (scaled), with one message."""
    delta = later.events - earlier.events
    lines = [f"| {title} | per Channel | one message |", "| --- | ---: | --- |"]
    for (kind, reason), n in sorted(delta.items()):
        lines.append(f"| {kind} {reason} | {n * scale / channels:.2f} | {later.examples.get(reason, '')} |")
    lines.append(f"| all Events | {sum(delta.values()) * scale / channels:.2f} | |")
    return lines


def table(title: str, delta: collections.Counter[tuple[str, str]], channels: int, scale: float = 1.0) -> list[str]:
    lines = [f"| {title} | per Channel |", "| --- | ---: |"]
    for (verb, plural), n in sorted(delta.items(), key=lambda item: (VERBS.index(item[0][0]), item[0][1])):
        lines.append(f"| {verb} {plural} | {n * scale / channels:.2f} |")
    writes = sum(n for (verb, _), n in delta.items() if verb in WRITES)
    lines.append(f"| all requests | {sum(delta.values()) * scale / channels:.2f} |")
    lines.append(f"| API writes (create, patch, delete) | {writes * scale / channels:.2f} |")
    return lines


async def run(count: int, steady: float, settle: float, limit: float) -> int:
    os.sched_setaffinity(0, {0})
    import kopf

    import kubecast.operator.handlers  # noqa: F401  (registers the handlers)
    from kubecast.operator.metrics import RECONCILES

    runs = count_handler_runs()
    command = [sys.executable, __file__, "--serve-emulator", str(count)]
    if shutil.which("taskset"):
        command = ["taskset", "-c", "1", *command]
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    folder = Path(tempfile.mkdtemp())
    try:
        assert child.stdout is not None and child.stdin is not None
        url = child.stdout.readline().strip()
        if not url.startswith("http"):
            raise SystemExit("the emulator process did not start")
        (folder / "kubeconfig").write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "current-context": "k",
                    "clusters": [{"name": "k", "cluster": {"server": url}}],
                    "contexts": [{"name": "k", "context": {"cluster": "k", "user": "u"}}],
                    "users": [{"name": "u", "user": {"token": "t"}}],
                }
            )
        )
        os.environ["KUBECONFIG"] = str(folder / "kubeconfig")
        os.environ.pop("KUBERNETES_SERVICE_HOST", None)
        os.environ["KUBECAST_STORE_URL"] = f"file://{folder}/store"
        stop, ready = asyncio.Event(), asyncio.Event()
        async with aiohttp.ClientSession() as session:
            before = await emulator_state(session, url)
            started, cpu_started = time.monotonic(), _cpu()
            task = asyncio.create_task(
                kopf.operator(namespaces=["media"], standalone=True, stop_flag=stop, ready_flag=ready)
            )
            now = before
            while time.monotonic() - started < limit and not task.done():
                await asyncio.sleep(0.5)
                now = await emulator_state(session, url)
                if now.ready == count:
                    break
            up_wall, up_cpu = time.monotonic() - started, _cpu() - cpu_started
            up_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            await asyncio.sleep(settle)  # the last writes of the start-up (statuses after the last Deployment events)
            now = await emulator_state(session, url)
            at_ready, runs_at_ready = now, collections.Counter(runs)
            reconciles_at_ready = sum(m.value for m in _samples(RECONCILES))
            await asyncio.sleep(steady)
            after = await emulator_state(session, url)
            steady_runs = collections.Counter(runs) - runs_at_ready
            steady_reconciles = sum(m.value for m in _samples(RECONCILES)) - reconciles_at_ready
            stop.set()
            await asyncio.wait_for(task, 120)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        counted = at_ready.cpu - before.cpu < (up_wall + settle) / 2 and after.cpu - at_ready.cpu < steady / 2
        steady_delta = after - at_ready
        full_round = at_ready.children / count  # a full round applies every child once
        steady_writes = sum(n for (verb, _), n in steady_delta.items() if verb in WRITES) * 600 / steady / count
        try:
            from kubecast.operator.refresh import FULL_APPLY_SECONDS
        except ImportError:  # an operator that applies every child on every refresh
            FULL_APPLY_SECONDS = None
        amortized = f"- API writes per Channel per 10 min: {steady_writes:.2f} measured"
        if FULL_APPLY_SECONDS:
            full_share = full_round * 600 / FULL_APPLY_SECONDS
            amortized += (
                f" + {full_share:.2f} for the full re-apply of the {full_round:.0f} children every"
                f" {FULL_APPLY_SECONDS:g} s (outside the window) = {steady_writes + full_share:.2f}"
            )
        out = [
            f"`python bench/operator_scale.py --channels {count} --steady {steady:g} --settle {settle:g}`",
            "",
            f"- start-up: {now.ready}/{count} Channels Ready in {up_wall:.1f} s; operator {up_cpu:.1f} CPU s, "
            f"peak RSS {up_rss:.0f} MB; emulator {at_ready.cpu - before.cpu:.1f} CPU s (with the {settle:g} s after)",
            f"- steady state over {steady:g} s, from {settle:g} s after that: "
            f"{sum(steady_delta.values()) / steady:.1f} requests/s, "
            f"emulator {after.cpu - at_ready.cpu:.1f} CPU s; operator peak RSS at the end {rss:.0f} MB",
            "- handler runs per Channel, start-up: "
            + ", ".join(f"{name} {n / count:.2f}" for name, n in sorted(runs_at_ready.items())),
            "- handler runs per Channel, steady state: "
            + (", ".join(f"{name} {n / count:.2f}" for name, n in sorted(steady_runs.items())) or "none")
            + f"; reconciles (incl. the refresh) {steady_reconciles / count:.2f}",
            amortized,
            "",
            *table("start-up: requests", at_ready - before, count),
            "",
            *table("steady state: requests per 10 min", steady_delta, count, scale=600 / steady),
            "",
            *event_table("start-up: Events", at_ready, before, count),
            "",
            *event_table("steady state: Events per 10 min", after, at_ready, count, scale=600 / steady),
            "",
            "goals: 1000 Channels Ready within 60 s, RSS under 300 MB;"
            " steady state under 2 API writes per Channel per 10 min",
            "run counted: "
            + (
                "yes (emulator CPU under half of the wall time in both phases)"
                if counted
                else "NO: the emulator used over half of the wall time"
            ),
        ]
        print("\n".join(out))
        return 0 if counted and at_ready.ready == count else 1
    finally:
        if child.stdin is not None:
            child.stdin.close()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def _samples(metric: Any) -> list[Any]:
    return [sample for family in metric.collect() for sample in family.samples if sample.name.endswith("_total")]


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=1000)
    parser.add_argument("--steady", type=float, default=180, help="seconds of steady state to measure")
    parser.add_argument("--settle", type=float, default=15, help="seconds between all Ready and the steady state")
    parser.add_argument("--limit", type=float, default=600, help="give up start-up after this many seconds")
    parser.add_argument("--serve-emulator", type=int, metavar="N", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve_emulator is not None:
        asyncio.run(serve_emulator(options.serve_emulator))
        return 0
    return asyncio.run(run(options.channels, options.steady, options.settle, options.limit))


if __name__ == "__main__":
    sys.exit(main())

"""``kubecast operator``: the kopf operator for Channel, Program and StreamingEndpoint.

Peering is on by default (``--peering kubecast``), so a second replica waits as a standby;
``--standalone`` turns it off (one replica, or tests).  kopf freezes *every* operator that sees
a peer of the same priority, so replicas must not share one: by default each takes a priority
from its start time (the longest-running replica is the active one; a restarted replica comes
back as the standby, so a restart never moves the work) with a random tie-breaker for replicas
started in the same millisecond.  (Whole seconds were too coarse: a replica started a few hundred
milliseconds after the active one could outrank it by the tie-breaker and take the work over.)

A replica is the active one while it renews its peering record; kopf's default lifetime of that
record is 60 s, so a frozen active replica would leave every Channel unreconciled for up to a
minute.  We use 15 s (:data:`PEERING_LIFETIME`): kopf renews 5 to 10 s before it runs out, which
is a patch every few seconds per replica, and the standby resumes at most 15 s after the active
replica's last renewal.  A replica that only missed a renewal (a slow API server) and comes back
finds the other active: the one of lower priority pauses again at its next peering event, and
both only ever apply the same children meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import time

import kopf

from kubecast import liveness
from kubecast.liveness import watch_running_loop

EPOCH_LIMIT_MS = 1 << 42  # milliseconds: far past any start time; the priority stays below 2**53
PEERING_LIFETIME = 15  # seconds a replica's peering record stays valid without renewal


def seniority_priority(started: float, tiebreak: int) -> int:
    """A kopf peering priority that is higher the earlier (to the millisecond) the replica
    started (pure)."""
    return (EPOCH_LIMIT_MS - int(started * 1000)) * 1000 + tiebreak % 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubecast operator", description=__doc__.split("\n\n")[0])
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--namespace", action="append", help="watch these namespaces (repeatable)")
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="watch the whole cluster (the default)")
    parser.add_argument("--standalone", action="store_true", help="no peering: no standby replica")
    parser.add_argument("--peering", default="kubecast", help="peering name shared by the replicas")
    parser.add_argument(
        "--priority", type=int, default=None, help="peering priority (default: by start time, the oldest replica wins)"
    )
    parser.add_argument("--liveness", default="http://0.0.0.0:8081/healthz", help="liveness endpoint URL")
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus metrics (reconciles, durations, API errors) on this port",
    )
    parser.add_argument(
        "--metrics-address", default="127.0.0.1", help="address the metrics listen on (0.0.0.0 in a pod)"
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s operator %(levelname)s %(message)s"
    )
    from . import handlers  # noqa: F401 - registers the handlers

    liveness.HEARTBEATS.process = "operator"
    if args.metrics_port is not None:
        # /livez beside /metrics, on a thread of its own: 503 when kopf's event loop is hung.
        liveness.serve(args.metrics_address, args.metrics_port)

    async def run() -> None:
        heartbeat = watch_running_loop("operator event loop")
        try:
            settings = kopf.OperatorSettings()
            settings.peering.lifetime = PEERING_LIFETIME
            await kopf.operator(
                settings=settings,
                clusterwide=not args.namespace,
                namespaces=args.namespace or [],
                standalone=args.standalone,
                peering_name=args.peering,
                liveness_endpoint=args.liveness,
                priority=args.priority
                if args.priority is not None
                else seniority_priority(time.time(), random.randrange(1000)),
            )
        finally:
            heartbeat.cancel()

    asyncio.run(run())
    return 0

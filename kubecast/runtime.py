"""What every long-running component shares on its command line: logging, metrics and liveness;
and memory kept near what the process uses (``kubecast/allocator.py``).

Metrics listen on loopback by default, because locally nothing outside the machine should
read them; in a pod the operator passes ``--metrics-address 0.0.0.0`` so that Prometheus
(the chart's PodMonitor) can scrape the pod's IP.  The same server, on its own thread, answers
``/livez`` from the process's heartbeats (``kubecast/liveness.py``).
"""

from __future__ import annotations

import argparse
import logging

from kubecast import allocator, liveness


def _stale_limit(text: str) -> float:
    """A loop beats every LOOP_BEAT_SECONDS, so a limit near that would call a healthy loop hung
    whenever one beat came a little late: at least three beats."""
    value = float(text)
    floor = 3 * liveness.LOOP_BEAT_SECONDS
    if value < floor:
        raise argparse.ArgumentTypeError(f"must be at least {floor:g} s (three heartbeats), not {text}")
    return value


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus metrics on this port")
    parser.add_argument(
        "--metrics-address", default="127.0.0.1", help="address the metrics listen on (0.0.0.0 in a pod)"
    )
    parser.add_argument(
        "--stale-after",
        type=_stale_limit,
        default=liveness.STALE_AFTER,
        help="seconds a busy loop or thread may go without a heartbeat before /livez (on the metrics port) "
        "calls the process hung",
    )
    parser.add_argument("--log-level", default="INFO")


def start_runtime(args: argparse.Namespace, label: str) -> None:
    allocator.keep_near_use()
    logging.basicConfig(level=args.log_level, format=f"%(asctime)s {label} %(levelname)s %(message)s")
    liveness.HEARTBEATS.stale_after = args.stale_after
    liveness.HEARTBEATS.process = label
    if args.metrics_port is not None:
        liveness.serve(args.metrics_address, args.metrics_port)

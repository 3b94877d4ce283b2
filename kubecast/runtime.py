"""What every long-running component shares on its command line: logging and metrics.

Metrics listen on loopback by default, because locally nothing outside the machine should
read them; in a pod the operator passes ``--metrics-address 0.0.0.0`` so that Prometheus
(the chart's PodMonitor) can scrape the pod's IP.
"""

from __future__ import annotations

import argparse
import logging

from prometheus_client import start_http_server


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus metrics on this port")
    parser.add_argument(
        "--metrics-address", default="127.0.0.1", help="address the metrics listen on (0.0.0.0 in a pod)"
    )
    parser.add_argument("--log-level", default="INFO")


def start_runtime(args: argparse.Namespace, label: str) -> None:
    logging.basicConfig(level=args.log_level, format=f"%(asctime)s {label} %(levelname)s %(message)s")
    if args.metrics_port is not None:
        start_http_server(args.metrics_port, addr=args.metrics_address)

"""``kubecast packager``: keeps one channel's timeline in storage."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from prometheus_client import start_http_server

from kubecast.api import ManifestError, load_channel
from kubecast.storage import Store

from .service import Packager


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubecast packager", description=__doc__)
    parser.add_argument("--manifests", action="append", required=True, help="YAML with the Channel (repeatable)")
    parser.add_argument("--channel", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--instances", default="A,B", help="encoder instances to merge, comma-separated")
    parser.add_argument("--poll-interval", type=float, default=0.1)
    parser.add_argument("--metrics-port", type=int, default=None)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format=f"%(asctime)s packager {args.channel} %(levelname)s %(message)s")
    try:
        channel = load_channel(args.manifests, args.channel)
    except ManifestError as error:
        print(f"kubecast packager: {error}", file=sys.stderr)
        return 2
    if args.metrics_port is not None:
        start_http_server(args.metrics_port, addr="127.0.0.1")
    packager = Packager(
        store=Store(args.store), channel=channel.name, instances=[i for i in args.instances.split(",") if i],
        segment_duration_ms=channel.spec.segment_duration_ms, window_ms=int(channel.spec.live_window * 1000), poll_interval=args.poll_interval,
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await packager.run(stop, on_first_write=lambda: print(f"kubecast packager {channel.name} running", flush=True))

    asyncio.run(run())
    return 0

"""``kubecast packager``: keeps one channel's timeline in storage."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from kubecast.api import ManifestError, load_channel
from kubecast.runtime import add_runtime_arguments, start_runtime
from kubecast.storage import Store

from .service import Packager


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubecast packager", description=__doc__)
    parser.add_argument("--manifests", action="append", required=True, help="YAML with the Channel (repeatable)")
    parser.add_argument("--channel", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--instances", default="A,B", help="encoder instances to merge, comma-separated")
    parser.add_argument("--poll-interval", type=float, default=0.1)
    add_runtime_arguments(parser)
    args = parser.parse_args(argv)
    start_runtime(args, f"packager {args.channel}")
    try:
        channel = load_channel(args.manifests, args.channel)
    except ManifestError as error:
        print(f"kubecast packager: {error}", file=sys.stderr)
        return 2
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

"""``kubecast packager``: keeps one channel's timeline in storage."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from pydantic import ValidationError

from kubecast.api.components import PackagerConfig
from kubecast.liveness import watch_running_loop
from kubecast.runtime import add_runtime_arguments, start_runtime
from kubecast.storage import Store

from .service import Packager


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubecast packager", description=__doc__)
    parser.add_argument(
        "--config",
        required=True,
        help="packager.json: the channel, its segment duration, live window and encoder instances",
    )
    parser.add_argument("--store", required=True)
    parser.add_argument("--poll-interval", type=float, default=0.1)
    add_runtime_arguments(parser)
    args = parser.parse_args(argv)
    try:
        config = PackagerConfig.model_validate_json(Path(args.config).read_bytes())
    except (OSError, ValidationError) as error:
        print(f"kubecast packager: {args.config}: {error}", file=sys.stderr)
        return 2
    start_runtime(args, f"packager {config.channel}")
    packager = Packager(
        store=Store(args.store),
        channel=config.channel,
        instances=config.instances,
        segment_duration_ms=config.segment_duration_ms,
        window_ms=config.window_ms,
        hls_start_offset_ms=config.hls_start_offset_ms,
        poll_interval=args.poll_interval,
    )

    async def run() -> None:
        heartbeat = watch_running_loop("packager event loop")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await packager.run(
            stop, on_first_write=lambda: print(f"kubecast packager {config.channel} running", flush=True)
        )
        heartbeat.cancel()

    asyncio.run(run())
    return 0

"""``kubecast ingest``: the RTMP ingest server; forwards each contribution to its encoder(s)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from kubecast.runtime import add_runtime_arguments, start_runtime

from .config import ConfigError, load_config
from .server import IngestServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubecast ingest", description=__doc__)
    parser.add_argument("--listen", default="0.0.0.0:1935", help="HOST:PORT for RTMP (port 0 picks a free port)")
    parser.add_argument("--config", required=True, help="ingest.json: channels, key files, encoder addresses")
    add_runtime_arguments(parser)
    args = parser.parse_args(argv)
    start_runtime(args, "ingest")
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"kubecast ingest: {error}", file=sys.stderr)
        return 2
    host, _, port = args.listen.rpartition(":")

    async def run() -> None:
        server = IngestServer(config)
        bound = await server.start(host, int(port))
        print(f"kubecast ingest listening on {bound[0]}:{bound[1]}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        await server.stop()

    asyncio.run(run())
    return 0

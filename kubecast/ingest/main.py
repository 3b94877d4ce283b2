"""``kubecast ingest``: the RTMP ingest server; forwards each contribution to its encoder(s)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from prometheus_client import start_http_server

from .config import ConfigError, load_config
from .server import IngestServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubecast ingest", description=__doc__)
    parser.add_argument("--listen", default="0.0.0.0:1935", help="HOST:PORT for RTMP (port 0 picks a free port)")
    parser.add_argument("--config", required=True, help="ingest.json: channels, key files, encoder addresses")
    parser.add_argument("--metrics-port", type=int, default=None)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s ingest %(levelname)s %(message)s")
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"kubecast ingest: {error}", file=sys.stderr)
        return 2
    if args.metrics_port is not None:
        start_http_server(args.metrics_port, addr="127.0.0.1")
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

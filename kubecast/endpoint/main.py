"""``kubecast endpoint``: the streaming endpoint (HLS/DASH origin, preview and status pages)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

import uvloop
from aiohttp import web

from kubecast import allocator, liveness
from kubecast.storage import Store

from . import config
from .access import AccessPolicy, install
from .app import CACHE_BYTES, make_app
from .protection import Protection


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubecast endpoint", description=__doc__)
    parser.add_argument("--store", required=True, help="storage URL or folder")
    parser.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT (port 0 picks a free port)")
    parser.add_argument(
        "--cache-mb",
        type=int,
        default=CACHE_BYTES >> 20,
        help="memory for hot segments (the pod's memory limit must leave room for it)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="endpoint.json, written from the StreamingEndpoint by the operator or kubecast up: allow-lists, "
        "trusted proxies, signing keys, origin authentication, cross-site origins, content protection, HLS cue tags, "
        "each secret named by the file holding it; without it the endpoint is open and serves in the clear",
    )
    parser.add_argument(
        "--liveness-listen",
        metavar="HOST:PORT",
        help="serve /livez here, from a thread of its own: 503 when the event loop is hung "
        "(/healthz, on the loop, cannot say so)",
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    # The object cache replaces segments of hundreds of KB all the time: without the pinned mmap
    # threshold they come from the heap and leave holes there (the one-hour soak's endpoint grew
    # 6.5 % beyond its cache). It costs segment throughput (``kubecast.allocator`` says how much).
    # Before liveness.serve starts a thread.
    allocator.keep_near_use()
    policy: AccessPolicy = AccessPolicy()  # no config: open, in the clear
    protection: Protection | None = None
    hls_cue_tags = False
    if args.config:
        try:
            policy, protection, hls_cue_tags = config.load(args.config)
        except config.ConfigError as error:
            parser.error(f"--config {args.config}: {error}")
    logging.basicConfig(level=args.log_level, format="%(asctime)s endpoint %(levelname)s %(message)s")
    host, _, port = args.listen.rpartition(":")

    liveness.HEARTBEATS.process = "endpoint"
    if args.liveness_listen:
        liveness_host, _, liveness_port = args.liveness_listen.rpartition(":")
        liveness.serve(liveness_host, int(liveness_port), metrics=False)  # /metrics is on --listen

    async def run() -> None:
        heartbeat = liveness.watch_running_loop("endpoint event loop")
        app = make_app(
            Store(args.store), cache_bytes=args.cache_mb << 20, protection=protection, hls_cue_tags=hls_cue_tags
        )
        install(app, policy)  # even open, it serves the cross-site policy files
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, int(port))
        await site.start()
        bound = runner.addresses[0]  # the real port when 0 was asked for
        print(f"kubecast endpoint listening on http://{bound[0]}:{bound[1]}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        await runner.cleanup()
        heartbeat.cancel()

    # uvloop: the endpoint is the one component whose event loop is the hot path (bench/origin.py:
    # manifests ~0.30 -> ~0.37 of nginx's requests/s, segments ~0.87 -> ~0.95 of its bytes/s).
    uvloop.run(run())
    return 0

"""``kubecast ingest``: every contribution protocol of a set of channels, forwarded to their encoders.

RTMP on ``--listen``; Smooth Streaming / CMAF HTTP push on ``--http-listen``; SRT on
``--srt-listen`` (one port, routed by stream id); MPEG-TS over UDP or RTP on each channel's
own port (``udpListen`` in ingest.json).  All of them share one registry of live publications.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import uvloop

from kubecast.runtime import add_runtime_arguments, start_runtime

from .config import ConfigError, load_config
from .mpegts.datagram import DatagramServer
from .publication import Publications
from .rtmp.server import IngestServer


def split_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubecast ingest", description=__doc__)
    parser.add_argument("--listen", default="0.0.0.0:1935", help="HOST:PORT for RTMP (port 0 picks a free port)")
    parser.add_argument("--http-listen", help="HOST:PORT for Smooth Streaming and CMAF HTTP push ingest")
    parser.add_argument("--srt-listen", help="HOST:PORT (UDP) for SRT callers")
    parser.add_argument("--config", required=True, help="ingest.json: channels, key files, encoder addresses")
    add_runtime_arguments(parser)
    args = parser.parse_args(argv)
    start_runtime(args, "ingest")
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"kubecast ingest: {error}", file=sys.stderr)
        return 2

    async def run() -> None:
        publications = Publications()
        stoppers = []
        rtmp = IngestServer(config, publications)
        bound = await rtmp.start(*split_address(args.listen))
        stoppers.append(rtmp.stop)
        print(f"kubecast ingest: RTMP on {bound[0]}:{bound[1]}", flush=True)
        if args.http_listen:
            from .push.http import HttpIngest

            http = HttpIngest(config, publications)
            port = await http.start(*split_address(args.http_listen))
            stoppers.append(http.stop)
            print(f"kubecast ingest: HTTP push on port {port}", flush=True)
        datagrams = DatagramServer(publications, idle_timeout=config.idle_timeout)
        stoppers.append(datagrams.stop)
        for route in config.channels.values():
            if route.udp_listen is not None and (route.accepts("UDP") or route.accepts("RTP")):
                port = await datagrams.add(route, *route.udp_listen, group=route.udp_group)
                print(f"kubecast ingest: MPEG-TS over UDP/RTP for {route.name} on port {port}", flush=True)
        if args.srt_listen and any(route.accepts("SRT") for route in config.channels.values()):
            from .mpegts.srt import SrtServer

            srt = SrtServer(config.channels, publications, idle_timeout=config.idle_timeout)
            port = srt.start(*split_address(args.srt_listen))
            stoppers.append(srt.stop)
            print(f"kubecast ingest: SRT on port {port}", flush=True)
        print(f"kubecast ingest listening on {bound[0]}:{bound[1]}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        for stopper in reversed(stoppers):
            await stopper()

    # uvloop: the ingest's loop wakes for every datagram (UDP, RTP: ~570 a second at 6 Mbit/s)
    # and writes every frame record to two encoders; the standard loop's overhead per wake-up
    # and per write was a large part of its cost against `ffmpeg -c copy` (bench/ingest.py).
    uvloop.run(run())
    return 0

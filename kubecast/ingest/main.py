"""``kubecast ingest``: every contribution protocol of a set of channels, forwarded to their encoders.

RTMP on ``--listen`` (RTMPS on ``--rtmps-listen``); Smooth Streaming / CMAF HTTP push on
``--http-listen`` (HTTPS on ``--https-listen``), with the certificate of ``--tls-cert``; SRT on
``--srt-listen`` (one port, routed by stream id); MPEG-TS over UDP or RTP on each channel's
own port (``udpListen`` in ingest.json).  All of them share one registry of live publications.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import ssl
import sys
from pathlib import Path

import uvloop

from kubecast.liveness import watch_running_loop
from kubecast.runtime import add_runtime_arguments, start_runtime
from kubecast.storage import Store

from .config import ConfigError, load_config
from .control import lingers
from .mpegts.datagram import DatagramServer
from .publication import Publications
from .rtmp.server import IngestServer
from .states import follow_states, read_states
from .tls import TlsError, server_context


def split_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The server context of ``--tls-cert`` / ``--tls-key``; None when no TLS listener is asked for."""
    if not (args.rtmps_listen or args.https_listen):
        return None
    if not (args.tls_cert and args.tls_key):
        raise TlsError("--rtmps-listen and --https-listen need --tls-cert and --tls-key")
    return server_context(args.tls_cert, args.tls_key)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubecast ingest", description=__doc__)
    parser.add_argument("--listen", default="0.0.0.0:1935", help="HOST:PORT for RTMP (port 0 picks a free port)")
    parser.add_argument("--http-listen", help="HOST:PORT for Smooth Streaming and CMAF HTTP push ingest")
    parser.add_argument("--srt-listen", help="HOST:PORT (UDP) for SRT callers")
    parser.add_argument("--rtmps-listen", help="HOST:PORT for RTMPS (RTMP over TLS); needs --tls-cert and --tls-key")
    parser.add_argument(
        "--https-listen", help="HOST:PORT for Smooth Streaming and CMAF push over HTTPS; needs --tls-cert and --tls-key"
    )
    parser.add_argument("--tls-cert", help="PEM certificate chain (leaf first) for RTMPS and HTTPS")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    parser.add_argument("--config", required=True, help="ingest.json: channels, key files, encoder addresses")
    parser.add_argument(
        "--states", help="channel-states.json: the stopped channels, read again whenever it changes (local mode)"
    )
    parser.add_argument(
        "--store", help="the media store's URL: on shutdown, whether the channels are stopped (on a cluster)"
    )
    parser.add_argument(
        "--stopped-linger",
        type=float,
        default=0,
        help="seconds a stopping ingest of a stopped channel (--store) keeps refusing publishers with the reason",
    )
    add_runtime_arguments(parser)
    args = parser.parse_args(argv)
    start_runtime(args, "ingest")
    try:
        config = load_config(args.config)
        tls = tls_context(args)
        stopped = read_states(Path(args.states)) if args.states else frozenset()
    except (ConfigError, TlsError, ValueError) as error:
        print(f"kubecast ingest: {error}", file=sys.stderr)
        return 2

    async def run() -> None:
        heartbeat = watch_running_loop("ingest event loop")
        publications = Publications(recheck_stopped=(lambda: read_states(Path(args.states))) if args.states else None)
        stoppers = []
        if args.states:
            publications.set_stopped(stopped)  # before the first publisher can arrive
            follower = asyncio.create_task(follow_states(Path(args.states), publications))

            async def stop_following() -> None:
                follower.cancel()
                await asyncio.gather(follower, return_exceptions=True)

            stoppers.append(stop_following)
        store = Store(args.store) if args.store else None
        rtmp = IngestServer(config, publications)
        bound = await rtmp.start(*split_address(args.listen))
        stoppers.append(rtmp.stop)
        print(f"kubecast ingest: RTMP on {bound[0]}:{bound[1]}", flush=True)
        if args.rtmps_listen and tls is not None:
            secure = await rtmp.start(*split_address(args.rtmps_listen), tls=tls)
            print(f"kubecast ingest: RTMPS on {secure[0]}:{secure[1]}", flush=True)
        if args.http_listen or args.https_listen:
            from .push.http import HttpIngest

            http = HttpIngest(config, publications)
            stoppers.append(http.stop)
            if args.http_listen:
                port = await http.start(*split_address(args.http_listen))
                print(f"kubecast ingest: HTTP push on port {port}", flush=True)
            if args.https_listen and tls is not None:
                port = await http.start(*split_address(args.https_listen), tls=tls)
                print(f"kubecast ingest: HTTPS push on port {port}", flush=True)
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
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        # Only now: whoever waits for this line may signal the ingest at once and expects a clean stop.
        print(f"kubecast ingest listening on {bound[0]}:{bound[1]}", flush=True)
        await stop.wait()
        # A pod shutting down because its channel stopped: every publisher that tries meanwhile hears why.
        channels = sorted(config.channels)
        if store is not None and (linger := await lingers(store, channels, publications, args.stopped_linger)):
            print(f"kubecast ingest: stopped channel; refusing publishers for {linger:g} s before stopping", flush=True)
            stop.clear()
            try:
                await asyncio.wait_for(stop.wait(), linger)  # a second signal ends it at once
            except TimeoutError:
                pass
        for stopper in reversed(stoppers):
            await stopper()
        heartbeat.cancel()

    # uvloop: the ingest's loop wakes for every datagram (UDP, RTP: ~570 a second at 6 Mbit/s)
    # and writes every frame record to two encoders; the standard loop's overhead per wake-up
    # and per write was a large part of its cost against `ffmpeg -c copy` (bench/ingest.py).
    uvloop.run(run())
    return 0

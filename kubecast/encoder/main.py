"""``kubecast encoder``: the live encoder of one channel instance (A or B)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from pydantic import ValidationError

from kubecast.api.components import EncoderConfig
from kubecast.runtime import add_runtime_arguments, start_runtime
from kubecast.storage import Store, layout

from .clock import ChannelClock
from .publisher import DEFAULT_BACKLOG_SECONDS, Publisher
from .server import ContributionServer


def parse_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubecast encoder", description=__doc__)
    parser.add_argument("--config", required=True, help="encoder.json: the channel, its segment duration and encoding")
    parser.add_argument("--instance", default="A", choices=list(layout.ENCODER_INSTANCES))
    parser.add_argument(
        "--contribution", type=parse_address, default=("127.0.0.1", 0), help="HOST:PORT the ingest connects to"
    )
    parser.add_argument("--store", required=True, help="storage URL or folder")
    parser.add_argument(
        "--upload-backlog",
        type=float,
        default=DEFAULT_BACKLOG_SECONDS,
        metavar="SECONDS",
        help="media per track kept in memory while storage is away; past it the oldest waiting segments are "
        f"dropped (default {DEFAULT_BACKLOG_SECONDS:g}: twice a 30 s outage)",
    )
    add_runtime_arguments(parser)
    args = parser.parse_args(argv)
    try:
        config = EncoderConfig.model_validate_json(Path(args.config).read_bytes())
    except (OSError, ValidationError) as error:
        print(f"kubecast encoder: {args.config}: {error}", file=sys.stderr)
        return 2
    start_runtime(args, f"encoder {config.channel}/{args.instance}")
    store = Store(args.store)
    publisher = Publisher(
        store=store,
        channel=config.channel,
        instance=args.instance,
        segment_duration_ms=config.segment_duration_ms,
        backlog_seconds=args.upload_backlog,
        part_duration_ms=config.part_duration_ms,
    )
    clock = ChannelClock(
        store=store, channel=config.channel, instance=args.instance, segment_duration_ms=config.segment_duration_ms
    )
    publisher.start()
    host, port = args.contribution
    server = ContributionServer(config=config, publisher=publisher, clock=clock, host=host, port=port)
    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
        stopped.set()
        server.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    bound = f"{server.address[0]}:{server.address[1]}"
    print(f"kubecast encoder {config.channel}/{args.instance} listening on {bound}", flush=True)
    try:
        server.serve()
    finally:
        server.stop()
        publisher.status(state="waiting")
        publisher.stop()
    return 0

"""``kubecast encoder``: the live encoder of one channel instance (A or B)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from kubecast.api import ManifestError, load_channel
from kubecast.runtime import add_runtime_arguments, start_runtime
from kubecast.storage import Store

from .publisher import Publisher
from .server import ContributionServer


def parse_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubecast encoder", description=__doc__)
    parser.add_argument("--manifests", action="append", required=True, help="YAML with the Channel (repeatable)")
    parser.add_argument("--channel", required=True)
    parser.add_argument("--instance", default="A", choices=["A", "B"])
    parser.add_argument("--contribution", type=parse_address, default=("127.0.0.1", 0), help="HOST:PORT the ingest connects to")
    parser.add_argument("--store", required=True, help="storage URL or folder")
    add_runtime_arguments(parser)
    args = parser.parse_args(argv)
    start_runtime(args, f"encoder {args.channel}/{args.instance}")
    try:
        channel = load_channel(args.manifests, args.channel)
    except ManifestError as error:
        print(f"kubecast encoder: {error}", file=sys.stderr)
        return 2
    publisher = Publisher(store=Store(args.store), channel=channel.name, instance=args.instance, segment_duration_ms=channel.spec.segment_duration_ms)
    publisher.start()
    host, port = args.contribution
    server = ContributionServer(channel=channel, publisher=publisher, host=host, port=port)
    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:  # noqa: ARG001
        stopped.set()
        server.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"kubecast encoder {channel.name}/{args.instance} listening on {server.address[0]}:{server.address[1]}", flush=True)
    try:
        server.serve()
    finally:
        server.stop()
        publisher.status(state="waiting")
        publisher.stop()
    return 0

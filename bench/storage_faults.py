"""The storage-fault drill with a long outage: S3 (moto's server) behind a fault proxy.

    python bench/storage_faults.py [--outage 30] [--silent] [--fault-seconds 20] [--seed N]

A dual-push channel (two renditions and audio) stores its segments in S3 through a proxy
that adds 500 ms to every request, then answers 10 % of requests with 503, then cuts storage
off for ``--outage`` seconds, each at a seeded random moment, while hls.js plays the channel
in headless Chromium.  Prints the longest player stall per fault, the encoders' peak upload
backlog, segments listed before they were stored, and whether every segment number is there
with continuous times.  Goal: stall at most the outage plus one segment (2 s), and within one
segment for latency and 503s; 0 listed-before-stored; nothing lost.  ``--silent``: during the
outage requests get no answer at all (dropped packets) rather than a reset connection.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "e2e")]

from processes import s3_bucket  # noqa: E402 - bench/ is on the path of a script run from it
from storage_drill import SEGMENT_SECONDS, check_nothing_lost, run_drill  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outage", type=float, default=30.0, help="seconds storage is cut off")
    parser.add_argument("--fault-seconds", type=float, default=20.0, help="seconds of latency, and of 503s")
    parser.add_argument("--silent", action="store_true", help="the outage answers nothing instead of resetting")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        store_url = s3_bucket(endpoint, endpoint) + "/media"
        with tempfile.TemporaryDirectory(prefix="kubecast-storage-faults-") as workdir:
            result = run_drill(
                Path(workdir),
                s3_endpoint=endpoint,
                store_url=store_url,
                outage_seconds=args.outage,
                fault_seconds=args.fault_seconds,
                silent_outage=args.silent,
                seed=seed,
            )
    finally:
        server.stop()

    print(f"\nseed {seed}; segment {SEGMENT_SECONDS} s")
    print(f"{'fault':32} {'seconds':>8} {'longest stall':>14} {'limit':>6}")
    for fault in result.faults:
        limit = fault.seconds + SEGMENT_SECONDS if fault.name.startswith("outage") else SEGMENT_SECONDS
        print(f"{fault.name:32} {fault.seconds:8.0f} {fault.stall:13.2f}s {limit:5.0f}s")
    print(f"peak upload backlog (one encoder): {result.peak_backlog:.0f} segments")
    print(f"listed before stored: {len(result.unreadable_listed)} {result.unreadable_listed[:5]}")
    print(f"served: {result.served_problems or 'every segment, tfdt continuous'}")
    print(f"player errors: {result.errors}")
    print(f"proxy: {result.proxy_counts}")
    try:
        check_nothing_lost(result.timeline)
        print("timeline: every segment number in every rendition, times continuous, no discontinuity")
    except AssertionError as error:
        print(f"timeline: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

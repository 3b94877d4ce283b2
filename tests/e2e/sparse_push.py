"""Pushes a Smooth Streaming sparse track of SCTE-35 into a channel whose media another process pushes,
as an AMS-style encoder sends ad markers beside its video (a POST of its own, ``Streams(scte35)``).

    python sparse_push.py URL CLOCK_FOLDER EVENT_ID OUT_SECONDS BREAK_SECONDS

``URL`` is the sparse stream's ingest URL (``…/<channel>.isml/Streams(scte35)``).  A cue is judged
against the newest frame the channel has been pushed, so the POST starts once the media flows:
once the channel's first epoch is in ``CLOCK_FOLDER`` (its encoder placed the first frames).  It
sends the splice out at ``OUT_SECONDS`` and back in ``BREAK_SECONDS`` later, both on the media's
clock (the push's 10 MHz time from 0, as ffmpeg's ismv muxer starts it), each section built by
threefive, then ends the stream (``mfra``) and prints the ingest's answer.
"""

from __future__ import annotations

import base64
import http.client
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).parents[1]))

from helpers import threefive_splice_insert  # noqa: E402
from smooth_sparse import MFRA, message, sparse_fragment, stream_header  # noqa: E402

HNS = 10_000_000
WAIT_SECONDS = 120


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def main() -> int:
    url, clock = urlsplit(sys.argv[1]), Path(sys.argv[2])
    event_id, out, duration = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
    deadline = time.monotonic() + WAIT_SECONDS
    while not any(clock.glob("epoch-*.json")):
        if time.monotonic() > deadline:
            print(f"no epoch in {clock} within {WAIT_SECONDS} s: the media never flowed", flush=True)
            return 1
        time.sleep(0.2)
    fragments = []
    for sequence, (at, is_out) in enumerate([(out, True), (out + duration, False)], start=1):
        section = base64.b64decode(
            threefive_splice_insert(
                event_id=event_id, out=is_out, pts_seconds=at, duration=duration if is_out else None
            )
        )
        length = round(duration * HNS) if is_out else 0
        fragments.append(sparse_fragment(message(section), time=round(at * HNS), duration=length, sequence=sequence))
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    connection.putrequest("POST", url.path)
    connection.putheader("Transfer-Encoding", "chunked")
    connection.putheader("Content-Type", "video/mp4")
    connection.endheaders()
    for data in (stream_header(), *fragments, MFRA):
        connection.send(chunk(data))
    connection.send(b"0\r\n\r\n")
    response = connection.getresponse()
    print(f"sparse push answered {response.status}: {response.read().decode(errors='replace').strip()}", flush=True)
    return 0 if response.status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())

"""Plays an MPEG-TS file to a UDP port in real time, as a playout server sends a prepared stream.

    python tsplay.py FILE HOST:PORT SECONDS

ffmpeg cannot resend a stream with a SCTE-35 PID as it is (it rewrites data streams as private
PES), so the bytes go out unchanged, seven packets a datagram, paced evenly over ``SECONDS``.
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

DATAGRAM = 7 * 188


def main() -> None:
    data = Path(sys.argv[1]).read_bytes()
    host, port = sys.argv[2].rsplit(":", 1)
    seconds = float(sys.argv[3])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    started = time.monotonic()
    for offset in range(0, len(data), DATAGRAM):
        due = started + seconds * offset / len(data)
        if (wait := due - time.monotonic()) > 0:
            time.sleep(wait)
        sock.sendto(data[offset : offset + DATAGRAM], (host, int(port)))
    sock.close()


if __name__ == "__main__":
    main()

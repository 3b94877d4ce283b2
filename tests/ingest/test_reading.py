"""The ingest's idle timeout, when the ingest itself was frozen rather than the publisher idle."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

from kubecast.ingest.reading import read_unless_idle

# A reader with a 1 s idle timeout, as the RTMP ingest reads a publisher; it prints what it read.
READER = """
import asyncio, sys
from kubecast.ingest.reading import read_unless_idle

async def main():
    reader, _ = await asyncio.open_connection("127.0.0.1", int(sys.argv[1]))
    while True:
        data = await read_unless_idle(reader, 1.0)
        print("idle" if data is None else f"read {len(data)}" if data else "end", flush=True)
        if not data:
            return

asyncio.run(main())
"""


def test_bytes_sent_while_the_ingest_was_frozen_are_read_when_it_wakes():
    """SIGSTOP past the idle timeout while the publisher sends: when the reader runs again its
    timer has expired and the bytes wait in its socket.  It reads them (a plain ``wait_for``
    timed out here: asyncio runs the expired timer before the read the bytes complete)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, str(listener.getsockname()[1])], stdout=subprocess.PIPE, text=True
        )
        try:
            listener.settimeout(30)
            publisher, _ = listener.accept()
            with publisher:
                publisher.sendall(b"a")
                assert reader.stdout is not None and reader.stdout.readline().strip() == "read 1"
                os.kill(reader.pid, signal.SIGSTOP)
                time.sleep(0.3)
                publisher.sendall(b"b" * 1000)
                time.sleep(2.0)  # twice the idle timeout
                os.kill(reader.pid, signal.SIGCONT)
                assert reader.stdout.readline().strip() == "read 1000"
            assert reader.stdout.readline().strip() == "end"
        finally:
            os.kill(reader.pid, signal.SIGCONT)
            reader.kill()
            reader.wait(10)


async def test_a_publisher_that_sends_nothing_is_idle_and_one_that_closed_is_at_its_end():
    listener = socket.create_server(("127.0.0.1", 0))
    publisher = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    reader, writer = await asyncio.open_connection(sock=accepted)
    try:
        started = time.monotonic()
        assert await read_unless_idle(reader, 0.2) is None
        assert time.monotonic() - started < 1.5
        publisher.close()
        assert await read_unless_idle(reader, 5) == b""
    finally:
        writer.close()
        listener.close()

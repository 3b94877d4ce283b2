"""Choosing the local pipeline's ports so that no two listeners are given the same one."""

from __future__ import annotations

import random
import socket
import sys
from pathlib import Path
from types import TracebackType


class PortReservations:
    """Ports chosen for one plan, each held bound until the whole plan is chosen.

    A port found with bind(0) and released at once can be handed out again by the next bind(0),
    and a port the user asked for may lie inside the kernel's ephemeral range: holding every
    chosen port until the end makes the kernel skip them, so no two processes of the plan are
    told to listen on the same port. Ask for the wanted ports first, then the free ones.
    """

    def __init__(self, host: str) -> None:
        self.host = host
        self._held: list[socket.socket] = []

    def __enter__(self) -> PortReservations:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        for sock in self._held:
            sock.close()
        self._held.clear()

    def free(self, kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
        sock = socket.socket(socket.AF_INET, kind)
        sock.bind((self.host, 0))
        self._held.append(sock)
        return int(sock.getsockname()[1])

    def wanted(self, port: int) -> int:
        """The wanted port if it can be bound, else a free one (the demo must start on a busy laptop)."""
        if port == 0:
            return self.free()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a listener of a run just stopped
        try:
            sock.bind((self.host, port))
        except OSError:
            sock.close()
            chosen = self.free()
            print(f"port {port} is busy; using {chosen}", file=sys.stderr)
            return chosen
        self._held.append(sock)
        return port


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default range starts here


_EPHEMERAL_FLOOR = _ephemeral_floor()
_handed_out: set[int] = set()


def _bindable(host: str, port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):  # SRT and UDP ingest listen on the same numbers
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def unclaimed_port(host: str = "127.0.0.1") -> int:
    """A port, free for TCP and UDP now, that the kernel will not hand to anyone before it is used.

    For a program that must tell another process which port to listen on (the tests and the
    benchmarks start `kubecast up`, ffmpeg and nginx so). A port found with bind(0) comes from the
    kernel's ephemeral range: once released, the kernel may give it to the next bind(0) or outgoing
    connection of any process, and the listener told to use it fails with EADDRINUSE. Ports below
    that range are never chosen by the kernel, and this process never hands the same one out twice.
    """
    for _ in range(1000):
        port = random.randint(10000, _EPHEMERAL_FLOOR - 1)
        if port not in _handed_out and _bindable(host, port):
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port below the ephemeral range")

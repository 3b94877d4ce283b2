"""Choosing the local pipeline's ports so that no two listeners are given the same one."""

from __future__ import annotations

import socket
import sys
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

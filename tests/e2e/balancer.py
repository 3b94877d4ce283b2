"""Debian's haproxy in front of endpoint replicas, as a Kubernetes Service or a cloud load
balancer would be: every request balanced on its own (round robin, so a player alternates
between replicas), health checks on ``/healthz``, and a request a dead or hung replica does not
answer retried on the other one."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from helpers import Proc, free_port

CONFIG = """\
global
    maxconn 2000
defaults
    mode http
    timeout connect 500ms
    timeout client 60s
    # a hung replica accepts (its kernel does) and never answers: give up on it after 1 s and
    # send the request to the other one
    timeout server 1s
    timeout check 1s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout
frontend play
    bind 127.0.0.1:{port}
    default_backend endpoints
backend endpoints
    balance roundrobin
    option httpchk GET /healthz
{servers}
"""


class Balancer:
    def __init__(self, workdir: Path, backends: dict[str, int]):
        self.port = free_port()
        servers = "\n".join(
            f"    server {name} 127.0.0.1:{port} check inter 500ms fall 3 rise 2" for name, port in backends.items()
        )
        config = workdir / "haproxy.cfg"
        config.write_text(CONFIG.format(port=self.port, servers=servers))
        self.proc = Proc(["haproxy", "-db", "-f", str(config)], name="haproxy")
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or not self.proc.alive():
                    raise RuntimeError(f"haproxy does not listen:\n{self.proc.output()}") from None
                time.sleep(0.1)
        self.base = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.stop()

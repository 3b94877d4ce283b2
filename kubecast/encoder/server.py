"""The encoder's contribution port: one contribution at a time, each in its own thread."""

from __future__ import annotations

import logging
import socket
import threading

from kubecast.api.components import EncoderConfig

from . import metrics
from .clock import ChannelClock
from .control import ControlFollower
from .publisher import Publisher
from .session import ContributionSession
from .slate import SlateWatch

log = logging.getLogger("kubecast.encoder")


class ContributionServer:
    def __init__(self, *, config: EncoderConfig, publisher: Publisher, clock: ChannelClock, host: str, port: int):
        self.config = config
        self.publisher = publisher
        self.clock = clock
        self.listener = socket.create_server((host, port), reuse_port=False)
        self.listener.settimeout(0.5)
        self.address = self.listener.getsockname()[:2]
        self.stopping = threading.Event()
        self.active: threading.Thread | None = None
        self.active_socket: socket.socket | None = None
        # Live-encoded channels only: a card in the contribution's own encoding needs a ladder.
        self.slate = None if config.passthrough else SlateWatch(config=config, publisher=publisher, clock=clock)
        self.control = ControlFollower(store=clock.store, channel=config.channel)

    def serve(self) -> None:
        self.control.read()  # a contribution that comes at once starts under the current record
        self.control.start()
        if self.slate is not None:
            self.slate.start()
        try:
            self._serve()
        finally:
            if self.slate is not None:
                self.slate.stop()
            self.control.stop()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, peer = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self.stopping.is_set():
                    return
                raise
            if self.active is not None:
                self.active.join(2.0)  # a contribution that just ended may still be flushing
            if self.active is not None and self.active.is_alive():
                # One contribution per encoder: a second one is a misrouted or duplicate feed.
                metrics.CONTRIBUTIONS.labels("refused").inc()
                log.warning(
                    "refusing a second contribution from %s to %s while one is live", peer[0], self.config.channel
                )
                sock.close()
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            session = ContributionSession(
                config=self.config,
                publisher=self.publisher,
                clock=self.clock,
                sock=sock,
                peer=peer[0],
                slate=self.slate,
                control=self.control,
            )
            self.active_socket = sock
            self.active = threading.Thread(target=session.run, name="contribution", daemon=True)
            self.active.start()

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        self.listener.close()
        if self.active_socket is not None:
            try:
                self.active_socket.shutdown(socket.SHUT_RD)  # ends the read loop; the session then flushes
            except OSError:
                pass
        if self.active is not None:
            self.active.join(timeout)

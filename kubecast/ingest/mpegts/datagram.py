"""MPEG-TS over UDP or RTP on a channel's own port (unicast, or a multicast group).

UDP has no connection, so this front end makes one: the first allowed sender starts a
contribution and owns the port until it has been silent for the idle timeout; datagrams from
anyone else meanwhile are dropped and counted (a second publisher, or a stray stream).
Whether the sender speaks RTP (payload type 33) or plain TS is decided by its first datagram.

The TS bytes of consecutive datagrams are demuxed together, every ``BATCH_SECONDS`` or
``BATCH_BYTES``: a datagram holds only 7 packets, and going through the demuxer and the
contribution once per datagram cost more than the demuxing itself (bench/ingest.py).  The
delay this adds is far below a segment's duration and an SRT receiver's own latency.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct
import time
from typing import Any

from .. import metrics
from ..config import ChannelRoute
from ..publication import Busy, Publications
from .rtp import RtpError, RtpReceiver, looks_like_rtp
from .tssession import TsSession

log = logging.getLogger("kubecast.ingest")

BATCH_SECONDS, BATCH_BYTES = 0.01, 32 << 10


class DatagramIngest(asyncio.DatagramProtocol):
    def __init__(self, route: ChannelRoute, publications: Publications, *, idle_timeout: float):
        self.route = route
        self.publications = publications
        self.idle_timeout = idle_timeout
        self.sender: tuple[str, int] | None = None
        self.session: TsSession | None = None
        self.rtp: RtpReceiver | None = None
        self.last_datagram = 0.0
        self._counted_rtp = (0, 0, 0)
        self._refused: set[str] = set()  # senders already logged, so a stray stream logs once
        self._ending: set[asyncio.Task[None]] = set()
        self._batch: list[bytes] = []  # TS bytes received and not yet demuxed
        self._batched = 0
        self._flush_timer: asyncio.TimerHandle | None = None

    def datagram_received(self, data: bytes, address: tuple[Any, ...]) -> None:
        peer = address[0]
        if self.sender is not None and address[:2] != self.sender:
            self._refuse(
                peer,
                "second_sender",
                f"{peer} sends to channel {self.route.name}'s port while {self.sender[0]} publishes",
            )
            return
        if self.sender is None and not self._start(peer, address, data):
            return
        self.last_datagram = time.monotonic()
        payload = data
        if self.rtp is not None:
            try:
                payload = self.rtp.receive(data)
            except RtpError as error:
                metrics.TRANSPORT_ERRORS.labels(self.route.name, "malformed_rtp").inc()
                self._refuse(peer, None, f"malformed RTP from {peer} on {self.route.name}: {error}")
                return
            self._count_rtp()
            if payload is None:
                return
        self._batch.append(payload)
        self._batched += len(payload)
        if self._batched >= BATCH_BYTES:
            self._flush()
        elif self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(BATCH_SECONDS, self._flush)

    def _flush(self) -> None:
        """Demux and forward what the datagrams since the last flush brought."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        data = b"".join(self._batch)
        self._batch.clear()
        self._batched = 0
        if data and self.session is not None and not self.session.feed(data):
            self._end("its timestamps jumped")

    def _start(self, peer: str, address: tuple[Any, ...], first: bytes) -> bool:
        if not self.route.admits(peer):
            self._refuse(peer, "not_allowed", f"{peer} may not publish to channel {self.route.name}")
            return False
        protocol = "RTP" if looks_like_rtp(first) else "UDP"
        if not self.route.accepts(protocol):
            self._refuse(
                peer,
                "protocol",
                f"{peer} sends {protocol} to channel {self.route.name}, which accepts "
                f"{', '.join(sorted(self.route.protocols))}",
            )
            return False
        session = TsSession(self.publications, self.route, peer=peer, protocol=protocol)
        try:
            session.start()
        except Busy as busy:
            self._refuse(peer, "busy", f"refused {protocol} from {peer}: {busy}")
            return False
        self.sender, self.session = address[:2], session
        self.rtp = RtpReceiver() if protocol == "RTP" else None
        self._counted_rtp = (0, 0, 0)
        self._refused.clear()
        return True

    def _refuse(self, peer: str, label: str | None, message: str) -> None:
        if label is not None:
            metrics.REJECTED.labels(label).inc()
        if peer not in self._refused:
            self._refused.add(peer)
            log.warning("%s (further datagrams from it are dropped silently)", message)

    def _count_rtp(self) -> None:
        assert self.rtp is not None  # counted only for an RTP sender
        now = (self.rtp.lost, self.rtp.late, self.rtp.wrong_type)
        if now == self._counted_rtp:
            return
        for kind, before, after in zip(("rtp_lost", "rtp_late", "rtp_wrong_payload_type"), self._counted_rtp, now):
            if after > before:
                metrics.TRANSPORT_ERRORS.labels(self.route.name, kind).inc(after - before)
        self._counted_rtp = now

    def _end(self, reason: str) -> None:
        self._flush()  # the last datagrams belong to this contribution
        session, self.session, self.sender, self.rtp = self.session, None, None, None
        publication = session.end(reason) if session is not None else None
        if publication is not None:
            task = asyncio.get_running_loop().create_task(publication.close())
            self._ending.add(task)
            task.add_done_callback(self._ending.discard)

    def check_idle(self) -> None:
        if self.session is not None and time.monotonic() - self.last_datagram > self.idle_timeout:
            self._end(f"no datagram for {self.idle_timeout:g} s")

    async def close(self) -> None:
        self._end("the ingest stops")
        await asyncio.gather(*self._ending, return_exceptions=True)


def datagram_socket(host: str, port: int, group: str | None) -> socket.socket:
    """A bound UDP socket; with a multicast group, joined on all interfaces."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # A live TS contribution at 10+ Mbit/s outruns the default 200 kB buffer between two reads.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind((group if group else host, port))
    if group:
        if ipaddress.ip_address(group).version == 4:
            sock.setsockopt(
                socket.IPPROTO_IP,
                socket.IP_ADD_MEMBERSHIP,
                struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton("0.0.0.0")),
            )
        else:
            sock.setsockopt(
                socket.IPPROTO_IPV6,
                socket.IPV6_JOIN_GROUP,
                socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", 0),
            )
    sock.setblocking(False)
    return sock


class DatagramServer:
    """Every channel's datagram port of one ingest process."""

    def __init__(self, publications: Publications, *, idle_timeout: float):
        self.publications = publications
        self.idle_timeout = idle_timeout
        self.ingests: dict[str, DatagramIngest] = {}
        self.transports: list[asyncio.DatagramTransport] = []
        self._watch: asyncio.Task[None] | None = None

    async def add(self, route: ChannelRoute, host: str, port: int, group: str | None = None) -> int:
        loop = asyncio.get_running_loop()
        ingest = DatagramIngest(route, self.publications, idle_timeout=self.idle_timeout)
        transport, _ = await loop.create_datagram_endpoint(lambda: ingest, sock=datagram_socket(host, port, group))
        self.ingests[route.name] = ingest
        self.transports.append(transport)
        if self._watch is None:
            self._watch = loop.create_task(self._watch_idle())
        return int(transport.get_extra_info("sockname")[1])

    async def _watch_idle(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.idle_timeout / 4))
            for ingest in self.ingests.values():
                ingest.check_idle()

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        for transport in self.transports:
            transport.close()
        await asyncio.gather(*(ingest.close() for ingest in self.ingests.values()))

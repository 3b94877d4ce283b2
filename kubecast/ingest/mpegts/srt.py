"""SRT listener: a thin ctypes binding over Debian's ``libsrt`` carrying MPEG-TS.

Why a binding rather than a supervised ``srt-live-transmit`` relay: one listener port then
serves every channel, routed by the caller's stream id, with each channel's passphrase set
on the connection during the handshake (libsrt's listen callback); a wrong passphrase, an
unknown stream id, a disallowed address or a busy channel is refused before any media flows,
with a reject reason the caller sees, and the ingest knows who publishes.  A relay process
could do none of that and would add a hop and a process to supervise.  libsrt is already
on every machine with Debian's ffmpeg (``libsrt1.5-gnutls``); no Python package wraps it well.

The stream id is the channel name, or the SRT access-control form ``#!::r=<channel>,m=publish``.
Each accepted connection is read by its own thread and its TS bytes are handed to the event
loop, where they join the UDP/RTP path (``TsSession``).  The thread polls: it takes every message
libsrt holds (non-blocking ``srt_recvmsg`` straight into one buffer), hands them over as one
piece, then sleeps ``POLL_SECONDS``.  Blocking on each 1316-byte message woke the thread, and
made it take the GIL, some 600 times a second at 6 Mbit/s, which cost more than demuxing them
(bench/ingest.py); the poll adds at most ``POLL_SECONDS`` to the SRT latency (120 ms by default).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import socket
import struct
import threading
import time

from .. import metrics
from ..config import ChannelRoute
from ..publication import Busy, ChannelStopped, Publications
from .tssession import TsSession

log = logging.getLogger("kubecast.ingest")

SRTO_RCVSYN, SRTO_RCVTIMEO, SRTO_PASSPHRASE, SRTO_RCVLATENCY, SRTO_STREAMID = 2, 14, 26, 43, 46
SRT_EASYNCRCV = 6002  # a receive timed out
REJECT_BAD_REQUEST, REJECT_UNAUTHORIZED, REJECT_FORBIDDEN, REJECT_NOT_FOUND, REJECT_CONFLICT = (
    1400,
    1401,
    1403,
    1404,
    1409,
)
REJECT_UNAVAILABLE = 1503  # SRT_REJX_UNAVAILABLE: a stopped channel
LIBRARIES = ("libsrt-gnutls.so.1.5", "libsrt-openssl.so.1.5", "libsrt.so.1.5")
MESSAGE = 1500  # one SRT live-mode payload (7 TS packets, 1316 bytes, by default)
POLL_SECONDS, HANDOVER_BYTES = 0.01, 64 << 10

LISTEN_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p
)


class SrtUnavailable(RuntimeError):
    pass


_lib: ctypes.CDLL | None = None


def library() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        names = list(LIBRARIES) + [name for name in (ctypes.util.find_library("srt"),) if name]
        for name in names:
            try:
                lib = ctypes.CDLL(name)
                break
            except OSError:
                continue
        else:
            raise SrtUnavailable("libsrt is not installed (Debian: apt-get install libsrt1.5-gnutls)")
        lib.srt_getlasterror_str.restype = ctypes.c_char_p
        lib.srt_listen_callback.argtypes = [ctypes.c_int, LISTEN_CALLBACK, ctypes.c_void_p]
        lib.srt_recvmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]  # an address, not a 32-bit int
        lib.srt_setloglevel(2)  # critical only: refusals and breaks are logged by the ingest, with the channel
        if lib.srt_startup() < 0:
            raise SrtUnavailable("srt_startup failed")
        _lib = lib
    return _lib


def _check(result: int, what: str) -> int:
    if result < 0:
        raise OSError(f"{what}: {library().srt_getlasterror_str().decode(errors='replace')}")
    return result


def _set_int(sock: int, option: int, value: int) -> None:
    number = ctypes.c_int32(value)
    _check(library().srt_setsockflag(sock, option, ctypes.byref(number), 4), f"srt option {option}")


def _set_text(sock: int, option: int, value: str) -> None:
    data = value.encode()
    _check(library().srt_setsockflag(sock, option, ctypes.c_char_p(data), len(data)), f"srt option {option}")


def sockaddr(host: str, port: int) -> bytes:
    if ":" in host:
        return struct.pack("=HH4x16s4x", socket.AF_INET6, socket.htons(port), socket.inet_pton(socket.AF_INET6, host))
    return struct.pack("=HH4s8x", socket.AF_INET, socket.htons(port), socket.inet_aton(host))


def peer_host(address: bytes) -> str:
    family = struct.unpack_from("=H", address)[0]
    if family == socket.AF_INET6:
        host = socket.inet_ntop(socket.AF_INET6, address[8:24])
        return host.removeprefix("::ffff:") if host.startswith("::ffff:") and "." in host else host
    return socket.inet_ntoa(address[4:8])


def channel_of(stream_id: str) -> str | None:
    """The channel a caller's stream id names (None: not a publish request)."""
    if stream_id.startswith("#!::"):
        fields = dict(item.split("=", 1) for item in stream_id[4:].split(",") if "=" in item)
        if fields.get("m", "publish") != "publish":
            return None
        return fields.get("r") or None
    return stream_id or None


class SrtServer:
    """One SRT listener for every channel that accepts SRT."""

    def __init__(self, routes: dict[str, ChannelRoute], publications: Publications, *, idle_timeout: float) -> None:
        self.routes = {name: route for name, route in routes.items() if route.accepts("SRT")}
        self.publications = publications
        self.idle_timeout = idle_timeout
        self.listener: int | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.connected: dict[str, int] = {}  # channel -> its SRT socket (touched by the listen callback thread too)
        self._lock = threading.Lock()
        self._callback = LISTEN_CALLBACK(self._on_handshake)  # kept referenced while libsrt may call it

    def start(self, host: str, port: int) -> int:
        lib = library()
        self.loop = asyncio.get_running_loop()
        sock = _check(lib.srt_create_socket(), "srt_create_socket")
        _set_int(sock, SRTO_RCVSYN, 1)
        latency = max((route.srt_latency_ms for route in self.routes.values()), default=120)
        _set_int(sock, SRTO_RCVLATENCY, latency)
        address = sockaddr(host, port)
        _check(lib.srt_bind(sock, address, len(address)), f"binding SRT to {host}:{port}")
        _check(lib.srt_listen_callback(sock, self._callback, None), "srt_listen_callback")
        _check(lib.srt_listen(sock, 8), "srt_listen")
        self.listener = sock
        bound = ctypes.create_string_buffer(128)
        length = ctypes.c_int(128)
        _check(lib.srt_getsockname(sock, bound, ctypes.byref(length)), "srt_getsockname")
        thread = threading.Thread(target=self._accept, name="srt-accept", daemon=True)
        thread.start()
        self.threads.append(thread)
        return socket.ntohs(struct.unpack_from("=H", bound.raw, 2)[0])

    def _on_handshake(
        self, _opaque: int | None, new_socket: int, _version: int, peer_address: int, stream_id: bytes | None
    ) -> int:
        """libsrt asks whether to accept a caller, before the handshake completes."""
        lib = library()
        try:
            peer = peer_host(ctypes.string_at(peer_address, 28))
            requested = (stream_id or b"").decode(errors="replace")
            channel = channel_of(requested)
            route = self.routes.get(channel or "")
            if route is None:
                return self._reject(
                    new_socket,
                    REJECT_NOT_FOUND,
                    "not_found",
                    f"SRT caller {peer} asked for stream id {requested!r}, which is no SRT channel here",
                )
            if not route.admits(peer):
                return self._reject(
                    new_socket,
                    REJECT_FORBIDDEN,
                    "not_allowed",
                    f"{peer} may not publish to channel {route.name} over SRT",
                )
            if self.publications.stopped(route.name):
                return self._reject(
                    new_socket,
                    REJECT_UNAVAILABLE,
                    "stopped",
                    f"refused SRT from {peer}: {ChannelStopped(route.name)}",
                )
            with self._lock:
                if route.name in self.connected or self.publications.live(route.name):
                    return self._reject(
                        new_socket,
                        REJECT_CONFLICT,
                        "busy",
                        f"refused SRT from {peer}: channel {route.name} already has a publisher",
                    )
            if route.srt_passphrase:
                _set_text(new_socket, SRTO_PASSPHRASE, route.srt_passphrase)  # a wrong one fails the handshake
            _set_int(new_socket, SRTO_RCVLATENCY, route.srt_latency_ms)
            return 0
        except Exception:  # noqa: BLE001 - an exception must not cross into libsrt
            log.exception("SRT handshake check failed")
            lib.srt_setrejectreason(new_socket, REJECT_BAD_REQUEST)
            return -1

    def _reject(self, sock: int, reason: int, label: str, message: str) -> int:
        metrics.REJECTED.labels(label).inc()
        log.warning(message)
        library().srt_setrejectreason(sock, reason)
        return -1

    def _accept(self) -> None:
        lib = library()
        while not self.stopping.is_set():
            address = ctypes.create_string_buffer(128)
            length = ctypes.c_int(128)
            sock = lib.srt_accept(self.listener, address, ctypes.byref(length))
            if sock < 0:
                if not self.stopping.is_set():
                    log.warning("SRT accept failed: %s", lib.srt_getlasterror_str().decode(errors="replace"))
                    time.sleep(0.2)
                continue
            buffer = ctypes.create_string_buffer(600)
            size = ctypes.c_int(600)
            lib.srt_getsockflag(sock, SRTO_STREAMID, buffer, ctypes.byref(size))
            route = self.routes.get(channel_of(buffer.raw[: size.value].decode(errors="replace")) or "")
            if route is None:  # the callback checked it; a race with a config change at most
                lib.srt_close(sock)
                continue
            with self._lock:
                self.connected[route.name] = sock
            thread = threading.Thread(
                target=self._receive, args=(sock, route, peer_host(address.raw)), name=f"srt-{route.name}", daemon=True
            )
            thread.start()
            self.threads.append(thread)

    def _receive(self, sock: int, route: ChannelRoute, peer: str) -> None:
        lib = library()
        loop = self.loop
        assert loop is not None  # start() set it before any caller could arrive
        _set_int(sock, SRTO_RCVSYN, 0)  # polled (see the module's docstring)
        session = TsSession(self.publications, route, peer=peer, protocol="SRT")
        started = asyncio.run_coroutine_threadsafe(self._start(session), loop)
        buffer = ctypes.create_string_buffer(HANDOVER_BYTES + MESSAGE)
        base = ctypes.addressof(buffer)
        receive = lib.srt_recvmsg
        reason = "the caller closed the connection"
        # What arrived is handed to the event loop as one piece, with at most one piece in flight:
        # waiting for the previous one is the back-pressure.
        filled = 0
        in_flight = None

        def hand_over() -> bool:
            nonlocal filled, in_flight
            if in_flight is not None and not in_flight.result(10):
                return False
            data = ctypes.string_at(base, filled) if filled else b""
            in_flight = asyncio.run_coroutine_threadsafe(self._feed(session, data), loop) if data else None
            filled = 0
            return True

        try:
            if not started.result(10):
                return
            last = time.monotonic()
            received_any = False
            while not self.stopping.is_set():
                received = receive(sock, base + filled, MESSAGE)
                if received > 0:
                    filled += received
                    received_any = True
                    if filled >= HANDOVER_BYTES and not hand_over():
                        reason = "its timestamps jumped"
                        break
                    continue
                if received < 0 and lib.srt_getlasterror(None) != SRT_EASYNCRCV:
                    reason = f"the connection broke ({lib.srt_getlasterror_str().decode(errors='replace')})"
                    break
                now = time.monotonic()  # nothing more waiting
                if received_any:
                    last, received_any = now, False
                elif now - last > self.idle_timeout:
                    reason = f"no data for {self.idle_timeout:g} s"
                    break
                if filled and not hand_over():
                    reason = "its timestamps jumped"
                    break
                time.sleep(POLL_SECONDS)
            else:
                reason = "the ingest stops"
            if reason != "its timestamps jumped":
                hand_over()  # what arrived last, then wait for it
                hand_over()
        except Exception:  # noqa: BLE001 - one caller's failure must not end the listener
            log.exception("SRT contribution of %s failed", route.name)
            reason = "it failed"
        finally:
            lib.srt_close(sock)
            with self._lock:
                self.connected.pop(route.name, None)
            if not loop.is_closed():
                asyncio.run_coroutine_threadsafe(self._end(session, reason), loop)

    @staticmethod
    async def _start(session: TsSession) -> bool:
        try:
            session.start()
            return True
        except Busy as busy:
            metrics.REJECTED.labels("busy").inc()
            log.warning("refused SRT from %s: %s", session.peer, busy)
            return False

    @staticmethod
    async def _feed(session: TsSession, data: bytes) -> bool:
        return session.feed(data)

    @staticmethod
    async def _end(session: TsSession, reason: str) -> None:
        if (publication := session.end(reason)) is not None:
            await publication.close()

    async def stop(self) -> None:
        self.stopping.set()
        if self.listener is not None:
            library().srt_close(self.listener)
        for thread in self.threads:
            await asyncio.to_thread(thread.join, 3)

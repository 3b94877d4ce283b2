"""The ingest's TLS: one server certificate for RTMPS and HTTPS push.

Python's ``ssl`` (OpenSSL) does the cryptography; this module only loads the certificate chain
and its key into a server context, refusing what is unusable with a message that names the
files and never their contents.  TLS 1.2 is the floor: it is what OBS, ffmpeg and current
hardware encoders negotiate, and older versions are broken.

RTMP connections take the handshake inside their own task (``TlsListener``), so a stalled or
broken handshake is bounded by the handshake timeout, counted and logged for that connection
alone, and never touches another publisher.  (aiohttp runs the HTTPS push handshakes each in its
connection too, but with asyncio's 60 s timeout and without the log line or metric.)
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import cast

from . import metrics

log = logging.getLogger("kubecast.ingest")


class TlsError(ValueError):
    pass


def server_context(certificate_file: str, key_file: str) -> ssl.SSLContext:
    """A TLS server context for ``certificate_file`` (PEM, leaf first, then intermediates) and
    ``key_file`` (its PEM private key)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # No TLS 1.3 session tickets: a publisher that only writes (ffmpeg's chunked POST) never
    # reads them, so they sit unread in its socket and its close becomes a reset, which makes
    # our kernel drop the last fragments it had not yet handed to us.
    context.num_tickets = 0
    context.options |= ssl.OP_NO_TICKET
    try:
        context.load_cert_chain(certificate_file, key_file)
    except FileNotFoundError as error:
        raise TlsError(f"TLS certificate or key file not found: {error.filename}") from None
    except (ssl.SSLError, OSError) as error:
        # The reason (e.g. KEY_VALUES_MISMATCH, PEM lib) but never the files' contents.
        reason = getattr(error, "reason", None) or type(error).__name__
        raise TlsError(
            f"cannot use {certificate_file} with {key_file} as the TLS certificate and key: {reason}"
        ) from None
    return context


Callback = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class _Handshake(asyncio.Protocol):
    """An accepted TCP connection, not read from until its TLS handshake runs.  (Upgrading a
    stream after ``start_server`` accepted it would lose a ClientHello that arrived before
    the upgrade: the stream's reader would already hold it.)"""

    def __init__(self, listener: TlsListener) -> None:
        self.listener = listener

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A TCP transport (uvloop's is not a subclass of asyncio.Transport, so no isinstance check).
        tcp = cast(asyncio.Transport, transport)
        tcp.pause_reading()
        task = asyncio.get_running_loop().create_task(self.listener.handshake(tcp))
        self.listener.tasks.add(task)
        task.add_done_callback(self.listener.tasks.discard)


class TlsListener:
    """Accepts TCP connections, runs each one's TLS handshake in its own task (bounded by the
    handshake timeout, a failure logged and counted for that connection alone), then hands the
    decrypted stream to ``callback`` as ``asyncio.start_server`` would."""

    def __init__(self, callback: Callback, context: ssl.SSLContext, handshake_timeout: float) -> None:
        self.callback, self.context, self.handshake_timeout = callback, context, handshake_timeout
        self.tasks: set[asyncio.Task[None]] = set()
        self.server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self.server = await asyncio.get_running_loop().create_server(lambda: _Handshake(self), host, port)
        address: tuple[str, int] = self.server.sockets[0].getsockname()[:2]
        return address

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()

    async def handshake(self, transport: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        peer = (transport.get_extra_info("peername") or ("?", 0))[0]
        reader = asyncio.StreamReader()
        protocol = asyncio.StreamReaderProtocol(reader)
        try:
            secure = await loop.start_tls(
                transport, protocol, self.context, server_side=True, ssl_handshake_timeout=self.handshake_timeout
            )
        except (TimeoutError, ssl.SSLError, OSError, EOFError) as error:
            transport.abort()
            # asyncio ends a handshake past its timeout with ConnectionAbortedError("... taking longer than ...").
            timeout = isinstance(error, ConnectionAbortedError) and "taking longer" in str(error)
            metrics.PROTOCOL_ERRORS.labels("tls_handshake_timeout" if timeout else "tls_handshake").inc()
            reason = "timeout" if timeout else f"failed: {getattr(error, 'reason', None) or type(error).__name__}"
            log.warning("closing %s: TLS handshake %s", peer, reason)
            return
        if secure is None:  # the peer went away as the handshake ended
            transport.abort()
            return
        protocol.connection_made(secure)
        await self.callback(reader, asyncio.StreamWriter(secure, protocol, reader, loop))

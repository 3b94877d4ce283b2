"""Liveness that catches a hung process, not just a closed port.

A process can keep its ports open and still be dead to its peers: an event loop blocked in a
synchronous call, an encode thread stuck in a library.  A probe served by that loop would only
time out, and a probe of the port (or of the Prometheus server, which runs on its own thread)
would say all is well.  So every event loop and every worker thread that must make progress
*beats* a :class:`Heartbeat`, and ``/livez``, served by the metrics server on its own thread
(it shares no loop with what it watches), answers 503 naming each heartbeat that is stale.

Two kinds of heartbeat, one rule (stale: not idle, and no beat for longer than its limit):

- an event loop runs :func:`beat_loop`, a task that beats every second and is never idle: if
  the loop stops running its tasks, the beats stop;
- a worker thread marks each unit of work with ``with heartbeat.busy():`` (one frame to encode,
  one batch of records to decode).  A thread waiting for work is idle, never stale: a channel
  with no contribution is not a hung encoder.

Why 15 s (:data:`STALE_AFTER`): a live loop turns in milliseconds and one frame encodes in tens
of milliseconds, and on two busy cores (ffmpeg, Chromium and seven of our processes) a starved but
live loop or thread is still scheduled within a second or two; garbage collection pauses are far
shorter.  A limit of 15 s is over ten times any stall we measured, so a slow process is never
restarted, while a hung one is restarted well before a viewer's buffer (three segments) would run
dry on a packager hang, and far sooner than a person would notice a dead encoder of a pair.  The
probe adds its own patience on top (see the builders), the local supervisor none.

Drills (tests only): with ``KUBECAST_DRILL_HANG_FILE`` set to a path, a heartbeat named by a line
``<process>: <heartbeat>`` of that file (``encoder news/A: encode 720p``, ``ingest: ingest event
loop``) hangs the code it watches at its next beat (a thread: that thread; a loop: the whole
loop), for good, as a deadlock would, while the rest of the process carries on.  Without
the variable (always, in production) the hook is never consulted: nothing else can reach it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socketserver
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

STALE_AFTER = 15.0  # seconds without a beat while busy: hung (see the module docstring)
LOOP_BEAT_SECONDS = 1.0
LIVENESS_PATH = "/livez"
DRILL_HANG_ENV = "KUBECAST_DRILL_HANG_FILE"


@dataclass(frozen=True)
class Stale:
    """One heartbeat past its limit: what it watches and for how long it has not beaten."""

    name: str
    seconds: float
    limit: float

    def __str__(self) -> str:
        return f"{self.name}: no beat for {self.seconds:.1f}s (limit {self.limit:.0f}s)"


class Heartbeat:
    """The heartbeat of one loop or thread; beaten by it, read by the liveness thread."""

    def __init__(self, name: str, *, idle: bool = True) -> None:
        self.name = name
        # Written by one thread, read by another: each is one attribute store, atomic in Python.
        self._last = time.monotonic()
        self._idle = idle

    def beat(self) -> None:
        if _DRILL_FILE is not None:
            _drill(f"{HEARTBEATS.process}: {self.name}")
        self._last = time.monotonic()

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """One unit of work: stale if it lasts longer than the limit without a beat."""
        self._last = time.monotonic()
        self._idle = False  # before the beat: a drill hangs there, and a hung thread is busy
        self.beat()
        try:
            yield
        finally:
            self._idle = True
            self._last = time.monotonic()

    def stale(self, now: float, limit: float) -> Stale | None:
        age = now - self._last
        if self._idle or age <= limit:
            return None
        return Stale(self.name, age, limit)


class Heartbeats:
    """A process's heartbeats; threads come and go (one set of encode threads per contribution)."""

    def __init__(self, stale_after: float = STALE_AFTER) -> None:
        self.stale_after = stale_after  # one limit for the process (``--stale-after``)
        self.process = ""  # the process's log label, e.g. "encoder news/A" (what a drill names)
        self._lock = threading.Lock()
        self._beats: list[Heartbeat] = []

    def add(self, heartbeat: Heartbeat) -> Heartbeat:
        with self._lock:
            self._beats.append(heartbeat)
        return heartbeat

    def remove(self, heartbeat: Heartbeat) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._beats.remove(heartbeat)

    @contextlib.contextmanager
    def watch(self, name: str) -> Iterator[Heartbeat]:
        """A heartbeat for the lifetime of the block (a worker thread's ``run``)."""
        heartbeat = self.add(Heartbeat(name))
        try:
            yield heartbeat
        finally:
            self.remove(heartbeat)

    def names(self) -> list[str]:
        with self._lock:
            return [beat.name for beat in self._beats]

    def stale(self, now: float | None = None) -> list[Stale]:
        now = time.monotonic() if now is None else now
        with self._lock:
            beats = list(self._beats)
        return [found for beat in beats if (found := beat.stale(now, self.stale_after)) is not None]


HEARTBEATS = Heartbeats()  # the process's own


async def beat_loop(heartbeat: Heartbeat, interval: float = LOOP_BEAT_SECONDS) -> None:
    """Beat while the running loop runs tasks (cancel to stop); ``heartbeat`` is made with
    ``idle=False``: a loop must always turn."""
    while True:
        heartbeat.beat()
        await asyncio.sleep(interval)


def watch_running_loop(name: str, *, heartbeats: Heartbeats = HEARTBEATS) -> asyncio.Task[None]:
    """Start beating for the running loop; the task holds the heartbeat until it is cancelled."""

    async def run() -> None:
        heartbeat = heartbeats.add(Heartbeat(name, idle=False))
        try:
            await beat_loop(heartbeat)
        finally:
            heartbeats.remove(heartbeat)

    return asyncio.get_running_loop().create_task(run(), name=f"heartbeat {name}")


def liveness_report(stale: list[Stale], watched: Iterable[str]) -> tuple[int, str]:
    """The status and body of ``/livez`` (pure): 503 naming every stale heartbeat, else 200."""
    if stale:
        return 503, "hung: " + "; ".join(str(found) for found in stale) + "\n"
    return 200, "ok: " + ", ".join(sorted(watched)) + "\n"


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def liveness_app(heartbeats: Heartbeats, fallback: WsgiApp | None) -> WsgiApp:
    """``/livez`` from ``heartbeats``; every other path to ``fallback`` (Prometheus), or 404."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == LIVENESS_PATH:
            status, text = liveness_report(heartbeats.stale(), heartbeats.names())
            reason = "OK" if status == 200 else "Service Unavailable"
            start_response(f"{status} {reason}", [("Content-Type", "text/plain; charset=utf-8")])
            return [text.encode()]
        if fallback is not None:
            return fallback(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    return app


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a stuck client never keeps the process alive


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # a probe every few seconds is not news


def serve(
    host: str, port: int, *, metrics: bool = True, heartbeats: Heartbeats = HEARTBEATS
) -> tuple[WSGIServer, threading.Thread]:
    """``/livez`` (and Prometheus ``/metrics`` unless ``metrics`` is False) on a daemon thread of
    its own, so that it answers while the loops it watches are blocked."""
    app = liveness_app(heartbeats, make_wsgi_app() if metrics else None)
    server = make_server(host, port, app, _ThreadingServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="liveness", daemon=True)
    thread.start()
    return server, thread


_DRILL_FILE = os.environ.get(DRILL_HANG_ENV) or None  # read once: a drill is set up at process start


def _drill(name: str) -> None:
    assert _DRILL_FILE is not None  # only ever called in a drill
    try:
        with open(_DRILL_FILE, encoding="utf-8") as file:
            targets = {line.strip() for line in file}
    except OSError:
        return
    if name in targets:
        while True:  # hung for good, as a deadlock is; only a kill ends it
            time.sleep(3600)

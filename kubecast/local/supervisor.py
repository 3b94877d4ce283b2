"""Runs the planned processes: start in order, wait for readiness, restart what crashes or
hangs, stop everything cleanly.

A process can hang with its ports open (an event loop blocked, an encode thread stuck), which a
crash watch never sees.  So the supervisor polls each process's ``/livez`` (kubecast/liveness.py)
every two seconds once it is ready, and kills with SIGKILL (a hung loop would never run a SIGTERM
handler) and restarts a process that answers 503 (a loop or thread stuck past its limit, 15 s),
or that has not answered at all for as long (frozen), logging why.  The 15 s are the liveness
limit itself: /livez has already waited them, so one 503 is enough.

Children run in their own sessions so that a Ctrl-C in the terminal reaches only the
supervisor, which then stops them in reverse start order (publisher and ingest first, so
encoders flush their last segments).  On Linux each child also asks the kernel to kill it
if the supervisor dies, so no process outlives a killed supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
import urllib.error
import urllib.request

from kubecast.liveness import STALE_AFTER

from .plan import ProcessSpec

log = logging.getLogger("kubecast.local")

PR_SET_PDEATHSIG = 1
LIVENESS_POLL_SECONDS = 2.0
LIVENESS_TIMEOUT_SECONDS = 2.0


def probe_liveness(url: str, timeout: float = LIVENESS_TIMEOUT_SECONDS) -> tuple[int | None, str]:
    """GET ``url`` (blocking; run it in a thread): the status and body, or None and why not."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read(4096).decode(errors="replace").strip()
    except urllib.error.HTTPError as error:
        return error.code, error.read(4096).decode(errors="replace").strip()
    except (OSError, ValueError) as error:  # refused, reset, timed out
        return None, str(getattr(error, "reason", error))


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class ManagedProcess:
    def __init__(self, spec: ProcessSpec, *, echo: bool):
        self.spec = spec
        self.echo = echo
        self.process: asyncio.subprocess.Process | None = None
        self.ready = asyncio.Event()
        self.restarts = 0
        self.hung_kills = 0  # restarts because /livez said hung or went silent
        self.stopping = False
        self._pumps: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.spec.env}
        self.process = await asyncio.create_subprocess_exec(
            *self.spec.argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        if self.spec.ready_marker is None:
            self.ready.set()
        assert self.process.stdout is not None and self.process.stderr is not None  # both are pipes
        self._pumps = [
            asyncio.create_task(self._pump(self.process.stdout, watch=True)),
            asyncio.create_task(self._pump(self.process.stderr, watch=False)),
        ]

    async def _pump(self, stream: asyncio.StreamReader, *, watch: bool) -> None:
        while line := await stream.readline():
            text = line.decode(errors="replace").rstrip()
            if watch and self.spec.ready_marker and self.spec.ready_marker in text:
                self.ready.set()
            if self.echo:
                print(f"[{self.spec.name}] {text}", file=sys.stderr, flush=True)

    async def wait_ready(self, timeout: float) -> None:
        assert self.process is not None, "start() first"
        waiter = asyncio.create_task(self.ready.wait())
        exited = asyncio.create_task(self.process.wait())
        done, _ = await asyncio.wait({waiter, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        exited.cancel()
        if not self.ready.is_set():
            if self.process.returncode is not None:
                raise RuntimeError(f"{self.spec.name} exited with code {self.process.returncode} before it was ready")
            raise RuntimeError(f"{self.spec.name} was not ready within {timeout:.0f}s")

    async def stop(self, timeout: float = 10.0) -> None:
        self.stopping = True
        if self.process is None or self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except asyncio.TimeoutError:
            log.warning("%s did not stop within %.0fs; killing it", self.spec.name, timeout)
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()
        for pump in self._pumps:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(pump, 2)


class Supervisor:
    def __init__(
        self,
        specs: list[ProcessSpec],
        *,
        echo: bool = True,
        ready_timeout: float = 60.0,
        silent_limit: float = STALE_AFTER,
        liveness_poll: float = LIVENESS_POLL_SECONDS,
    ) -> None:
        self.processes = [ManagedProcess(spec, echo=echo) for spec in specs]
        self.echo = echo
        self.ready_timeout = ready_timeout
        self.silent_limit = silent_limit  # a process whose /livez answers nothing for this long is frozen
        self.liveness_poll = liveness_poll
        self._watchers: list[asyncio.Task[None]] = []
        self._stopping = False

    async def start(self) -> None:
        for managed in self.processes:
            await managed.start()
            await managed.wait_ready(self.ready_timeout)
            self._watch_all(managed)

    def _watch_all(self, managed: ManagedProcess) -> None:
        self._watchers.append(asyncio.create_task(self._watch(managed)))
        if managed.spec.liveness_url is not None:
            self._watchers.append(asyncio.create_task(self._watch_liveness(managed, managed.spec.liveness_url)))

    async def _watch_liveness(self, managed: ManagedProcess, url: str) -> None:
        """Kill a hung process; ``_watch`` then restarts it as it does a crashed one."""
        silent_since: float | None = None
        while not (self._stopping or managed.stopping):
            await managed.ready.wait()
            process = managed.process
            await asyncio.sleep(self.liveness_poll)
            if self._stopping or managed.stopping or process is not managed.process:
                silent_since = None
                continue
            assert process is not None  # ready implies started
            if process.returncode is not None:
                silent_since = None
                continue
            status, text = await asyncio.to_thread(probe_liveness, url)
            now = time.monotonic()
            if status == 200:
                silent_since = None
                continue
            if status is None:
                silent_since = now if silent_since is None else silent_since
                if now - silent_since < self.silent_limit:
                    continue
                reason = f"/livez has not answered for {now - silent_since:.0f}s: {text}"
            else:
                reason = f"/livez answered {status}: {text}"
            if process.returncode is not None or self._stopping or managed.stopping:
                continue
            log.warning("%s is hung (%s); killing it (SIGKILL) to restart it", managed.spec.name, reason)
            silent_since = None
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            managed.hung_kills += 1

    async def _watch(self, managed: ManagedProcess) -> None:
        backoff = 1.0
        while not self._stopping:
            started = time.monotonic()
            assert managed.process is not None  # started before it is watched
            code = await managed.process.wait()
            if self._stopping or managed.stopping:
                return
            if not managed.spec.restart:
                log.info("%s finished with code %s", managed.spec.name, code)
                return
            if time.monotonic() - started > 30:
                backoff = 1.0
            log.warning("%s exited with code %s; restarting in %.0fs", managed.spec.name, code, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
            if self._stopping:
                return
            managed.restarts += 1
            managed.ready.clear()
            await managed.start()

    async def stop(self) -> None:
        self._stopping = True
        for watcher in self._watchers:
            watcher.cancel()
        for managed in reversed(self.processes):
            await managed.stop()

    def add(self, spec: ProcessSpec, *, echo: bool = True) -> ManagedProcess:
        managed = ManagedProcess(spec, echo=echo)
        self.processes.append(managed)
        return managed

    async def remove(self, managed: ManagedProcess) -> None:
        """Stop one process for good (a stopped channel's): it is not restarted."""
        await managed.stop()
        if managed in self.processes:
            self.processes.remove(managed)

    async def start_one(self, managed: ManagedProcess) -> None:
        await managed.start()
        await managed.wait_ready(self.ready_timeout)
        self._watch_all(managed)

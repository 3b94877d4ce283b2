"""A local pipeline that kill tests (and ``bench/failover.py``) take apart piece by piece.

``kubecast up`` restarts whatever dies, which is right for users and wrong for a test that
must leave encoder A dead.  ``Pipeline`` runs the very processes ``build_plan`` plans, one
``Proc`` each, and lets the caller kill (SIGKILL, the whole process group) and start any of
them by name.  ``Link`` is a TCP relay between a publisher and an ingest that can be cut, so
"the primary contribution connection dropped" is a real dropped connection and not a killed
process.  ``freeze`` and ``thaw`` (SIGSTOP, SIGCONT) make a process hang, which is worse than
dying: its sockets stay open and nothing restarts it.  ``add_endpoint_replica`` plans a second
endpoint on the same store.  A player page monitor measures stalls in headless Chromium.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import re
import signal
import socket
import threading
from pathlib import Path

import players
from helpers import Proc, free_port

from kubecast.api import load_paths
from kubecast.local.plan import Ports, build_plan, instances_for, metrics_names, write_run_files
from kubecast.storage import Store, layout


class Pipeline:
    """``store_url``: the store (a folder under ``workdir`` by default); ``env``: added to every
    process's environment (an S3 endpoint, say), not to the test's own."""

    def __init__(self, manifest: Path, workdir: Path, *, store_url: str | None = None, env: dict | None = None):
        self.store = workdir / "store"
        self.store_url = store_url or str(self.store)
        self.env = env or {}
        run_dir = workdir / "run"
        manifests = load_paths([str(manifest)])
        self.channels = list(manifests.channels)
        self.ports = Ports(
            rtmp=free_port(),
            http=free_port(),
            rtmp_secondary=free_port(),
            contribution={(name, instance): free_port() for name in manifests.channels for instance in instances_for()},
            metrics={name: free_port() for name in metrics_names(manifests)},
        )
        plan = build_plan(
            manifests=manifests, store_url=self.store_url, run_dir=run_dir, host="127.0.0.1", ports=self.ports
        )
        write_run_files(plan, run_dir)
        self.specs = {spec.name: spec for spec in plan.processes}
        self.procs: dict[str, Proc] = {}
        self.base = f"http://127.0.0.1:{self.ports.http}"

    def start(self, *names: str, timeout: float = 90) -> None:
        """Start the named processes (all, in plan order, if none are named) and wait until each serves."""
        for name in names or list(self.specs):
            spec = self.specs[name]
            proc = self.procs[name] = Proc(spec.argv, env={**spec.env, **self.env}, name=name)
            if spec.ready_marker:
                proc.wait_for_line(re.escape(spec.ready_marker), timeout=timeout)

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.popen.pid, signal.SIGKILL)
        proc.popen.wait(10)

    def freeze(self, name: str) -> None:
        os.killpg(self.procs[name].popen.pid, signal.SIGSTOP)

    def thaw(self, name: str) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.procs[name].popen.pid, signal.SIGCONT)

    def start_endpoint_replica(self, name: str) -> int:
        """Start another endpoint process like the first one; it binds a free port (returned),
        which it takes again when it is started again."""
        spec = self.specs["endpoint"]
        argv = list(spec.argv)
        argv[argv.index("--listen") + 1] = "127.0.0.1:0"
        self.specs[name] = dataclasses.replace(spec, name=name, argv=argv)
        self.start(name)
        port = int(self.procs[name].wait_for_line(r"listening on http://[0-9.]+:(\d+)", timeout=5).group(1))
        argv[argv.index("--listen") + 1] = f"127.0.0.1:{port}"
        return port

    def stop(self) -> None:
        for name in self.procs:
            self.thaw(name)  # a frozen process would not hear SIGTERM
        for name in reversed(list(self.procs)):
            self.procs[name].stop(timeout=30)

    def timeline(self, channel: str) -> dict:
        return self._read_json(layout.timeline_key(channel))

    def progress(self, channel: str, instance: str) -> dict:
        """What one encoder reports it has stored (every segment it wrote, taken or not)."""
        return self._read_json(layout.progress_key(channel, instance))

    def _read_json(self, key: str) -> dict:
        data = Store(self.store_url).get_sync(key)  # as the test's environment reaches it
        assert data is not None, f"no {key} in {self.store_url}"
        return json.loads(data)

    def encoder(self, channel: str, instance: str) -> str:
        return f"encoder {channel}/{instance}"

    def packager(self, channel: str) -> str:
        return f"packager {channel}"


class Link:
    """A TCP relay from a free local port to ``target`` whose connections can be cut at once."""

    def __init__(self, target_port: int):
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.cut_off = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # the listener was closed: cut
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                if self.cut_off:
                    client.close()
                    server.close()
                    return
                self.sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            source.settimeout(None)
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            # One side reset or closed while data was on the way: reset the other too, as a
            # direct connection would.  (Leaving it open made ffmpeg write into a relay that
            # no longer read: it blocked for good and starved its other output.)
            for sock in (source, sink):
                _reset(sock)
            return
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        """Reset every connection and refuse new ones, as a failed network path does."""
        with self.lock:
            self.cut_off = True
            for sock in self.sockets:
                _reset(sock)
            self.sockets.clear()
        with contextlib.suppress(OSError):
            self.listener.close()


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST, not FIN
        sock.close()


def seeded(name: str) -> tuple[int, random.Random]:
    seed = int(os.environ.get("KUBECAST_KILL_SEED", random.randrange(1 << 30)))
    print(f"{name}: kill seed {seed} (KUBECAST_KILL_SEED={seed} repeats this run)", flush=True)
    return seed, random.Random(seed)


# Installed in the player page: the longest time the video's currentTime did not advance
# once playback had started, sampled every 50 ms; plus every hls.js ERROR event, fatal or not.
STALL_MONITOR = """() => {
  const state = window.kubecastPlayer;
  const monitor = { longestStallMs: 0, since: null, lastTime: -1, lastProgress: null, events: [] };
  window.kubecastMonitor = monitor;
  if (state.player && window.Hls && state.player.on) {
    state.player.on(Hls.Events.ERROR, (_e, data) => monitor.events.push(
      data.type + " " + data.details + (data.fatal ? " fatal" : "") + " at "
      + state.video.currentTime.toFixed(1) + " s"));
  }
  setInterval(() => {
    const now = performance.now(), t = state.video.currentTime;
    if (t > monitor.lastTime) {
      if (monitor.lastProgress !== null)
        monitor.longestStallMs = Math.max(monitor.longestStallMs, now - monitor.lastProgress);
      if (monitor.since === null && t > 0) monitor.since = now;
      monitor.lastProgress = now; monitor.lastTime = t;
    }
  }, 50);
}"""

CURRENT_STALL = (
    "() => { const m = window.kubecastMonitor;"
    " return Math.max(m.longestStallMs, m.lastProgress === null ? 0 : performance.now() - m.lastProgress); }"
)


class Player:
    """The preview page's hls.js in headless Chromium, with the stall monitor installed."""

    def __init__(self, url: str):
        from playwright.sync_api import sync_playwright  # only the tests that play need it

        self._playwright = sync_playwright().start()
        try:
            self.browser = players.chromium(self._playwright)
            self.page = self.browser.new_page()
            self.page.goto(url, timeout=30_000)
            self.page.wait_for_function("() => window.kubecastPlayer && window.kubecastPlayer.player", timeout=30_000)
            self.page.evaluate(STALL_MONITOR)
        except BaseException:
            self.close()
            raise

    def wait_playing(self, timeout: float = 60) -> None:
        self.page.wait_for_function(
            "() => window.kubecastMonitor.since !== null && window.kubecastPlayer.video.currentTime > 1",
            timeout=timeout * 1000,
        )

    def longest_stall(self) -> float:
        return self.page.evaluate(CURRENT_STALL) / 1000

    def errors(self) -> list[str]:
        return self.page.evaluate("() => window.kubecastPlayer.errors.concat(window.kubecastMonitor.events)")

    def position(self) -> float:
        return self.page.evaluate("() => window.kubecastPlayer.video.currentTime")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.browser.close()
        self._playwright.stop()

"""An encoder pod's ingest as the operator runs it on a cluster (``kubecast ingest --store URL
--stopped-linger S``): told to stop (SIGTERM) after the operator recorded its channel as Stopped in
the store (which it does before it scales the pods to zero), it cuts off the live publisher and
refuses the next ones with the reason the local ingest gives for the linger, then exits.  The
ingest of a running channel stops at once.  Real processes: ``kubecast ingest`` and ffmpeg."""

from __future__ import annotations

import signal
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from helpers import Proc, contribution_command, free_port, wait_until

from kubecast.api.components import IngestFile, IngestRoute
from kubecast.storage import ChannelControl, Store, layout

LINGER = 6
REASON = "channel news is stopped: start it to publish"


class Sink(socketserver.BaseRequestHandler):
    """An encoder's contribution port that takes what the ingest forwards and keeps its size."""

    received = 0

    def handle(self) -> None:
        while data := self.request.recv(65536):
            Sink.received += len(data)


@pytest.fixture
def encoder() -> Iterator[int]:
    Sink.received = 0
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Sink)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def start_ingest(tmp_path, encoder: int) -> tuple[Proc, int]:
    config = tmp_path / "ingest.json"
    (tmp_path / "stream-key").write_text("k3y")
    route = IngestRoute(stream_key_file=str(tmp_path / "stream-key"), encoders=[f"127.0.0.1:{encoder}"])
    config.write_text(IngestFile(channels={"news": route}).to_json())
    port = free_port()
    ingest = Proc(
        [sys.executable, "-m", "kubecast.cli", "ingest", "--listen", f"127.0.0.1:{port}", "--config", str(config)]
        + ["--store", str(tmp_path / "store"), "--stopped-linger", str(LINGER), "--metrics-port", str(free_port())],
        name="ingest",
    )
    ingest.wait_for_line("listening on", timeout=30)
    return ingest, port


def publish(port: int, seconds: float) -> subprocess.CompletedProcess[str]:
    command = contribution_command(f"rtmp://127.0.0.1:{port}/live/news/k3y", seconds=seconds, size="160x90")
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def record(tmp_path, state: str) -> None:
    Store(str(tmp_path / "store")).put_sync(layout.control_key("news"), ChannelControl(state=state).to_json())


def test_a_stopping_pod_of_a_stopped_channel_refuses_publishers_with_the_reason(tmp_path, encoder):
    record(tmp_path, "Running")
    ingest, port = start_ingest(tmp_path, encoder)
    live = Proc(contribution_command(f"rtmp://127.0.0.1:{port}/live/news/k3y", seconds=30, size="160x90"))
    try:
        try:
            wait_until(lambda: Sink.received > 10_000, timeout=30, what="the live publisher's frames at the encoder")
        except TimeoutError:
            raise AssertionError(f"{live.output()}\n{ingest.output()}") from None
        record(tmp_path, "Stopped")  # what the operator writes before the zero replicas
        ingest.popen.send_signal(signal.SIGTERM)  # then the pod is told to stop
        signalled = time.monotonic()
        ingest.wait_for_line("refusing publishers for", timeout=10)
        wait_until(lambda: not live.alive(), timeout=10, what="the live publisher cut off")
        assert any("ending the contribution" in line and REASON in line for line in ingest.lines), ingest.output()
        refused = publish(port, 1)  # a publisher trying again while the pod goes
        assert refused.returncode != 0 and REASON in refused.stderr, refused.stderr
        assert ingest.popen.wait(LINGER + 10) == 0, ingest.output()
        assert LINGER - 1 <= time.monotonic() - signalled <= LINGER + 10, "it lingered, then stopped"
    finally:
        live.stop()
        ingest.stop(timeout=5)


@pytest.mark.parametrize("state", [None, "Running"])  # no record: never stopped
def test_the_ingest_of_a_running_channel_stops_at_once(tmp_path, encoder, state):
    if state is not None:
        record(tmp_path, state)
    ingest, _ = start_ingest(tmp_path, encoder)
    try:
        ingest.popen.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        assert ingest.popen.wait(LINGER + 10) == 0, ingest.output()
        assert time.monotonic() - signalled < LINGER - 1, "no linger: nothing to refuse"
        assert not any("refusing publishers for" in line for line in ingest.lines), ingest.output()
    finally:
        ingest.stop(timeout=5)

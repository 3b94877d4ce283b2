"""The local supervisor restarts a hung process, not only a crashed one: a real ingest whose event
loop the drill hook hangs (its ports stay open and its metrics thread answers), then the same
ingest frozen with SIGSTOP (nothing answers)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from pathlib import Path

import pytest
from helpers import free_port

from kubecast.liveness import DRILL_HANG_ENV
from kubecast.local.plan import ProcessSpec, kubecast_command, livez
from kubecast.local.supervisor import Supervisor, probe_liveness

pytestmark = pytest.mark.timeout(90)


async def eventually(predicate, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout}s")
        await asyncio.sleep(0.1)
    return result


async def test_a_hung_and_a_frozen_process_are_killed_and_restarted(tmp_path: Path, caplog):
    config = tmp_path / "ingest.json"
    config.write_text(json.dumps({"channels": {}}))
    drill = tmp_path / "hang"
    metrics_port = free_port()
    spec = ProcessSpec(
        name="ingest",
        argv=kubecast_command(
            "ingest",
            "--listen",
            f"127.0.0.1:{free_port()}",
            "--config",
            str(config),
            "--metrics-port",
            str(metrics_port),
            "--stale-after",
            "3",
        ),
        ready_marker="listening on",
        env={DRILL_HANG_ENV: str(drill)},
        liveness_url=livez(metrics_port),
    )
    supervisor = Supervisor([spec], echo=False, silent_limit=3, liveness_poll=0.5)
    [managed] = supervisor.processes
    caplog.set_level(logging.WARNING, logger="kubecast.local")
    try:
        await supervisor.start()
        first = managed.process
        assert first is not None
        await asyncio.sleep(2)
        assert managed.hung_kills == 0, "a live process is left alone"
        # A line for another process names nothing here.
        drill.write_text("encoder news/A: ingest event loop\n")
        await asyncio.sleep(2)
        assert managed.hung_kills == 0 and first.returncode is None

        drill.write_text("ingest: ingest event loop\n")
        hung_at = time.monotonic()
        await eventually(lambda: managed.hung_kills == 1, timeout=15, what="the hung ingest killed")
        drill.unlink()  # the restarted process must not hang again
        assert first.returncode == -signal.SIGKILL
        assert time.monotonic() - hung_at < 3 + 1 + 0.5 + 2, "the limit, a beat, a poll, and slack"
        await eventually(lambda: managed.restarts == 1 and managed.ready.is_set(), timeout=20, what="restarted")
        assert "ingest is hung (/livez answered 503: hung: ingest event loop: no beat for" in caplog.text
        status, _ = await asyncio.to_thread(probe_liveness, spec.liveness_url)
        assert status == 200

        second = managed.process
        assert second is not None and second is not first
        os.kill(second.pid, signal.SIGSTOP)  # frozen: nothing answers, not even /livez
        frozen_at = time.monotonic()
        await eventually(lambda: managed.hung_kills == 2, timeout=15, what="the frozen ingest killed")
        assert 3 <= time.monotonic() - frozen_at < 3 + 2 * (0.5 + 2) + 1, "silent for the limit, then killed"
        assert "/livez has not answered for" in caplog.text
        await eventually(lambda: managed.restarts == 2 and managed.ready.is_set(), timeout=20, what="restarted")
    finally:
        await supervisor.stop()

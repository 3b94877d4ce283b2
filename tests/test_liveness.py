"""Liveness (kubecast/liveness.py): heartbeats, /livez from a thread of its own, and a real hang
of a real process's event loop while the process keeps answering."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from helpers import Proc, wait_until

from kubecast import liveness
from kubecast.liveness import Heartbeat, Heartbeats, liveness_report
from kubecast.runtime import add_runtime_arguments


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_a_waiting_thread_is_idle_and_a_long_unit_of_work_is_stale():
    beats = Heartbeats(stale_after=10)
    worker = beats.add(Heartbeat("encode hi"))
    now = time.monotonic()
    assert beats.stale(now + 1000) == [], "waiting for work is never a hang"
    with worker.busy():
        assert beats.stale(now + 5) == [], "busy within the limit: slow, not hung"
        [stale] = beats.stale(time.monotonic() + 11)
        assert stale.name == "encode hi" and stale.seconds > 10 and stale.limit == 10
        worker.beat()  # a long unit of work that beats is alive
        assert beats.stale(time.monotonic() + 9) == []
    assert beats.stale(time.monotonic() + 1000) == []
    loop = beats.add(Heartbeat("ingest event loop", idle=False))
    assert [s.name for s in beats.stale(time.monotonic() + 11)] == ["ingest event loop"], "a loop must always turn"
    beats.remove(loop)
    assert beats.names() == ["encode hi"]


def test_report_names_every_stale_heartbeat():
    assert liveness_report([], ["b", "a"]) == (200, "ok: a, b\n")
    status, text = liveness_report([liveness.Stale("encode hi", 17.25, 15)], ["encode hi", "contribution"])
    assert status == 503 and text == "hung: encode hi: no beat for 17.2s (limit 15s)\n"


def test_livez_answers_from_its_own_thread_while_a_watched_thread_hangs():
    beats = Heartbeats(stale_after=0.3)
    server, thread = liveness.serve("127.0.0.1", 0, heartbeats=beats)
    base = f"http://127.0.0.1:{server.server_port}"
    release = threading.Event()

    def work() -> None:
        with beats.watch("encode hi") as heartbeat, heartbeat.busy():
            release.wait(10)  # a stuck unit of work

    try:
        assert get(base + "/livez") == (200, "ok: \n")
        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        status, text = wait_until(lambda: (r := get(base + "/livez"))[0] == 503 and r, timeout=5, what="503")
        assert text.startswith("hung: encode hi: no beat for"), text
        status, metrics = get(base + "/metrics")
        assert status == 200 and "python_info" in metrics, "Prometheus beside /livez"
        release.set()
        worker.join(5)
        assert get(base + "/livez") == (200, "ok: \n"), "the thread's heartbeat leaves with it"
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_hung_ingest_event_loop_is_reported_while_the_process_answers(tmp_path: Path):
    """The drill hook hangs the ingest's event loop for good (a blocking call in the loop), the way
    a bug would; /livez, on the metrics thread, says which loop, and /metrics keeps answering."""
    from helpers import free_port

    config = tmp_path / "ingest.json"
    config.write_text(json.dumps({"channels": {}}))
    drill = tmp_path / "hang"
    metrics_port = free_port()
    ingest = Proc(
        [
            sys.executable,
            "-m",
            "kubecast.cli",
            "ingest",
            "--listen",
            f"127.0.0.1:{free_port()}",
            "--config",
            str(config),
            "--metrics-port",
            str(metrics_port),
            "--stale-after",
            "3",
        ],
        env={**os.environ, liveness.DRILL_HANG_ENV: str(drill)},
        name="ingest",
    )
    try:
        ingest.wait_for_line("listening on", timeout=30)
        livez = f"http://127.0.0.1:{metrics_port}/livez"
        assert get(livez) == (200, "ok: ingest event loop\n")
        drill.write_text("encoder news/A: ingest event loop\n")  # another process's
        time.sleep(2)
        assert get(livez)[0] == 200, "a drill line names one process's heartbeat"
        drill.write_text("ingest: ingest event loop\n")
        hung_at = time.monotonic()
        status, text = wait_until(lambda: (r := get(livez))[0] == 503 and r, timeout=15, what="503")
        assert "ingest event loop: no beat for" in text and "(limit 3s)" in text
        assert time.monotonic() - hung_at < 3 + 1 + 2, "reported within the limit, a beat and slack"
        assert get(f"http://127.0.0.1:{metrics_port}/metrics")[0] == 200
        assert ingest.alive(), "hung, not dead"
    finally:
        ingest.stop(timeout=2)  # a hung loop never runs its SIGTERM handler: SIGKILL


def test_a_limit_of_fewer_than_three_heartbeats_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """A loop beats every second: with a one-second limit a healthy loop whose beat came a few
    milliseconds late was called hung (and killed by the supervisor)."""
    parser = argparse.ArgumentParser()
    add_runtime_arguments(parser)
    assert parser.parse_args(["--stale-after", "3"]).stale_after == 3.0
    with pytest.raises(SystemExit):
        parser.parse_args(["--stale-after", "1"])
    assert "must be at least 3 s (three heartbeats), not 1" in capsys.readouterr().err

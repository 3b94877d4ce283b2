"""Ending what a benchmark started (the benchmarks run as scripts: this folder is on their path)."""

from __future__ import annotations

import os
import signal
import subprocess

GRACE_SECONDS = 30.0  # kubecast up stops its components in turn, each flushing its last segments
KILLED_SECONDS = 5.0


def stop_group(process: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """Stop ``process`` and everything in its process group (it was started with
    ``start_new_session=True``): SIGTERM, then SIGKILL for a group still there after the grace."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(KILLED_SECONDS)

"""Starting ``kubecast up``, reading what runs under it, and ending what a benchmark started (the
benchmarks run as scripts: this folder is on their path)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

# The demo's three rungs, as a Channel's spec.encoding in flow YAML: what the CPU benches encode.
DEMO_LADDER = (
    "{preset: Custom, x264Preset: superfast, renditions: ["
    "{name: video_720p, width: 1280, height: 720, bitrate: 2500000, profile: High}, "
    "{name: video_480p, width: 854, height: 480, bitrate: 1200000, profile: Main}, "
    "{name: video_240p, width: 426, height: 240, bitrate: 400000, profile: Baseline}]}"
)
GRACE_SECONDS = 30.0  # kubecast up stops its components in turn, each flushing its last segments
KILLED_SECONDS = 5.0
TICKS = os.sysconf("SC_CLK_TCK")


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


def kubecast_up(
    manifest: Path, store: Path | str, work: Path, *options: str
) -> tuple[subprocess.Popen[str], list[str]]:
    """``kubecast up -f manifest`` (one encoder per channel, no periodic status) in its own process
    group, run in ``work``, and the list its printed lines are gathered into as they come.
    ``options``: its ports."""
    up = subprocess.Popen(
        [sys.executable, "-m", "kubecast.cli", "up", "-f", str(manifest), "--store", str(store), "--single-encoder"]
        + [*options, "--status-interval", "3600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=work,
        start_new_session=True,
    )
    lines: list[str] = []
    assert up.stdout is not None
    threading.Thread(target=lambda: lines.extend(up.stdout or []), daemon=True).start()
    return up, lines


def wait_for(lines: list[str], text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not any(text in line for line in lines):
        if time.monotonic() > deadline:
            raise TimeoutError(f"`kubecast up` did not print {text!r} within {timeout:.0f} s")
        time.sleep(0.2)


def tree(root: int) -> dict[int, tuple[str, float]]:
    """pid -> (command line, CPU seconds so far) of ``root`` and every process below it."""
    parents: dict[int, int] = {}
    stats: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        parents[int(entry.name)] = int(fields[1])
        stats[int(entry.name)] = (command, (int(fields[11]) + int(fields[12])) / TICKS)
    below, found = {root}, True
    while found:
        found = False
        for pid, parent in parents.items():
            if parent in below and pid not in below:
                below.add(pid)
                found = True
    return {pid: stats[pid] for pid in below if pid in stats}


def s3_bucket(kubecast_url: str, moto_url: str) -> str:
    """A new bucket on moto's S3 server at ``moto_url``, with the environment set so that
    kubecast's store (obstore reads ``AWS_*``) and its child processes reach S3 at
    ``kubecast_url`` (moto itself, or a proxy in front of it); the store URL to pass on."""
    import uuid

    import boto3

    os.environ.update(
        AWS_ENDPOINT_URL=kubecast_url,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ALLOW_HTTP="true",
    )
    bucket = f"kubecast-bench-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=moto_url).create_bucket(Bucket=bucket)
    return f"s3://{bucket}"

"""The README's first command, run literally as a newcomer would on a stock machine.

The command is read from the README (the first line of its first `sh` block), not copied
here, so the test follows the README. It runs in a fresh clone with the distribution's
`/usr/bin/python3` first on PATH and no virtual environment active: a PEP 668 "externally
managed" Python, as on Debian 12, on which `pip install -e .` fails. The install depends on
the package index, so it has its own bound; from the moment the demo starts, a playable HLS
stream must be served within 90 s.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest
from helpers import Proc, wait_until
from media_checks import fetch, media_playlist, multivariant

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")
INSTALL_TIMEOUT = 900
LIVE_WITHIN = 90


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block, "the README has no sh block"
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.split("#", 1)[0].strip()]


def system_python_usable() -> str | None:
    if not SYSTEM_PYTHON.exists():
        return f"{SYSTEM_PYTHON} is absent"
    version = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import sys; print(sys.version_info >= (3, 11))"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.strip()
    if version != "True":
        return f"{SYSTEM_PYTHON} is older than 3.11"
    return None


def stock_environment() -> dict[str, str]:
    """The caller's environment without any Python environment of its own: PATH starts with /usr/bin."""
    dropped = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "PIP_PREFIX", "PIP_USER")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in dropped and not key.startswith(("PYENV", "PYTEST", "COV_"))
    }
    env["PATH"] = "/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
    return env


def test_the_readme_lists_two_commands_the_first_runs_the_demo():
    commands = readme_commands()
    assert len(commands) == 2, commands
    assert "demo" in commands[0] and "test" in commands[1]


def test_the_first_command_serves_a_playable_stream_on_a_stock_python(tmp_path):
    if reason := system_python_usable():
        pytest.skip(reason)
    clone = tmp_path / "kubecast"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=120)
    command = readme_commands()[0]
    env = stock_environment()
    assert (
        subprocess.run(["sh", "-c", "command -v python3"], env=env, capture_output=True, text=True).stdout.strip()
        == "/usr/bin/python3"
    )
    demo = Proc(["bash", "-c", command], env=env, inherit_env=False, cwd=str(clone), name=shlex.split(command)[0])
    try:
        demo.wait_for_line(r"scripts/demo: starting kubecast demo", timeout=INSTALL_TIMEOUT)
        started = time.monotonic()
        player = demo.wait_for_line(r"Player \(preview\): (http://\S+)", timeout=LIVE_WITHIN).group(1)
        base = player.split("/preview/")[0]
        variants = wait_until(
            lambda: multivariant(f"{base}/live/demo/index.m3u8")[0],
            timeout=LIVE_WITHIN,
            interval=0.5,
            what="renditions in the demo's multivariant playlist",
        )
        lowest = min(variants, key=lambda variant: int(variant.attributes["BANDWIDTH"]))
        remaining = LIVE_WITHIN - (time.monotonic() - started)
        playlist = wait_until(
            lambda: (p := media_playlist(lowest.uri)).segments and p,
            timeout=max(remaining, 1),
            interval=0.5,
            what="a segment in the demo's HLS playlist",
        )
        assert time.monotonic() - started < LIVE_WITHIN
        # A real player's view: ffmpeg reads the HLS stream from the multivariant URL and decodes it.
        probe = subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-i",
                f"{base}/live/demo/index.m3u8",
                "-map",
                "0:v:0",
                "-t",
                "1",
                "-f",
                "framemd5",
                "-",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert probe.returncode == 0, probe.stderr
        assert len([line for line in probe.stdout.splitlines() if line and not line.startswith("#")]) >= 10
        assert fetch(playlist.init)[4:8] == b"ftyp"
    finally:
        code = demo.stop(timeout=40)
    assert code == 0, demo.output()
    assert "home = /usr/bin" in (clone / ".venv" / "pyvenv.cfg").read_text(), "the demo's .venv is the system python's"

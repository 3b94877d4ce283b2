"""Docker cannot build here, so: every command the images and the generated manifests run
exists and starts (``--help``), and the Dockerfiles keep their promises (pinned base, non-root)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kubecast.api import load_text
from kubecast.operator.builders import build_channel_children, build_endpoint_children
from kubecast.operator.settings import OperatorSettings

ROOT = Path(__file__).parents[2]
IMAGES = ["operator", "encoder-image", "packager-image"]


def commands_in_manifests() -> set[str]:
    docs = load_text(
        "apiVersion: kubecast.io/v1alpha1\nkind: Channel\nmetadata: {name: c}\n---\n"
        "apiVersion: kubecast.io/v1alpha1\nkind: StreamingEndpoint\nmetadata: {name: e}\n"
    )
    settings = OperatorSettings()
    children = build_channel_children(docs.channels["c"], uid="u", namespace="n", settings=settings)
    children += build_endpoint_children(docs.endpoints["e"], uid="u", namespace="n", settings=settings)
    commands = {"operator"}
    for child in children:
        if child["kind"] == "Deployment":
            commands |= {c["args"][0] for c in child["spec"]["template"]["spec"]["containers"]}
    return commands


@pytest.mark.parametrize("command", sorted(commands_in_manifests() | {"demo", "up", "status", "crds", "test-pattern"}))
def test_every_command_starts(command):
    result = subprocess.run(
        [sys.executable, "-m", "kubecast.cli", command, "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "usage" in result.stdout.lower()


@pytest.mark.parametrize("image", IMAGES)
def test_dockerfiles_are_pinned_non_root_and_use_the_entrypoint(image):
    text = (ROOT / image / "Dockerfile").read_text()
    base = next(line.split()[1] for line in text.splitlines() if line.startswith("FROM "))
    assert ":" in base and not base.endswith(":latest") and base.count(".") >= 2, "a pinned base image"
    assert "USER 10001" in text and "-c constraints.txt" in text
    entrypoint = ROOT / image / "entrypoint.sh"
    assert entrypoint.exists() and "exec kubecast" in entrypoint.read_text()

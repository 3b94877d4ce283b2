"""What ``kubecast up`` runs: a pure function from manifests to processes.

Local mode runs the same commands the container images run; only the supervisor differs
from a cluster.  One ingest server takes every channel (as one RTMP server with several
applications would), each channel gets its encoder instance(s) and its packager, and one
streaming endpoint serves everything from the store.  Ports for the internal hops
(ingest -> encoder) are chosen by the caller so that a restarted process comes back on the
same address.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from kubecast.api import Manifests


@dataclass(frozen=True)
class ProcessSpec:
    name: str  # shown in logs, e.g. "encoder demo/A"
    argv: list[str]
    ready_marker: str | None  # a stdout substring that says the process serves
    env: dict[str, str] = field(default_factory=dict)
    restart: bool = True


@dataclass(frozen=True)
class Ports:
    rtmp: int
    http: int
    contribution: dict[tuple[str, str], int]  # (channel, instance) -> encoder contribution port
    metrics: dict[str, int]  # process name -> metrics port


@dataclass(frozen=True)
class Plan:
    processes: list[ProcessSpec]
    ingest_config: dict
    key_files: dict[str, str]  # path -> stream key (written 0600 by the runner)


def instances_for(channel_name: str) -> list[str]:
    return ["A"]


def kubecast_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "kubecast.cli", *args]


def build_plan(*, manifests: Manifests, manifest_paths: list[str], store_url: str, run_dir: Path, host: str, ports: Ports) -> Plan:
    manifest_args = [arg for path in manifest_paths for arg in ("--manifests", path)]
    processes: list[ProcessSpec] = [
        ProcessSpec(
            name="endpoint",
            argv=kubecast_command("endpoint", "--store", store_url, "--listen", f"{host}:{ports.http}"),
            ready_marker="listening on",
        )
    ]
    ingest_channels: dict[str, dict] = {}
    key_files: dict[str, str] = {}
    for name, channel in manifests.channels.items():
        instances = instances_for(name)
        encoders = []
        for instance in instances:
            port = ports.contribution[(name, instance)]
            encoders.append(f"127.0.0.1:{port}")
            label = f"encoder {name}/{instance}"
            processes.append(
                ProcessSpec(
                    name=label,
                    argv=kubecast_command(
                        "encoder", *manifest_args, "--channel", name, "--instance", instance,
                        "--contribution", f"127.0.0.1:{port}", "--store", store_url,
                        "--metrics-port", str(ports.metrics[label]),
                    ),
                    ready_marker="listening on",
                )
            )
        label = f"packager {name}"
        processes.append(
            ProcessSpec(
                name=label,
                argv=kubecast_command(
                    "packager", *manifest_args, "--channel", name, "--store", store_url,
                    "--instances", ",".join(instances), "--metrics-port", str(ports.metrics[label]),
                ),
                ready_marker="running",  # the channel's first timeline is written: its URLs answer
            )
        )
        key_file = None
        ref = channel.spec.ingest.stream_key_secret_ref
        if ref is not None:
            key_file = str(run_dir / f"{name}.streamkey")
            key_files[key_file] = manifests.secret_value(ref.name, ref.key)
        ingest_channels[name] = {"streamKeyFile": key_file, "encoders": encoders, "allowedIps": list(channel.spec.ingest.allowed_ips)}
    ingest_config = {"channels": ingest_channels, "handshakeTimeout": 10, "idleTimeout": 15}
    processes.append(
        ProcessSpec(
            name="ingest",
            argv=kubecast_command(
                "ingest", "--listen", f"{host}:{ports.rtmp}", "--config", str(run_dir / "ingest.json"),
                "--metrics-port", str(ports.metrics["ingest"]),
            ),
            ready_marker="listening on",
        )
    )
    return Plan(processes=processes, ingest_config=ingest_config, key_files=key_files)


def metrics_names(manifests: Manifests) -> list[str]:
    names = ["ingest"]
    for name in manifests.channels:
        names += [f"encoder {name}/{instance}" for instance in instances_for(name)]
        names.append(f"packager {name}")
    return names


def write_run_files(plan: Plan, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    for path, key in plan.key_files.items():
        file = Path(path)
        file.touch(mode=0o600, exist_ok=True)
        file.chmod(0o600)
        file.write_text(key)
    (run_dir / "ingest.json").write_text(json.dumps(plan.ingest_config, indent=2))

"""Debian's Prometheus scraping a local pipeline: the scrape config for the processes that
`kubecast up` lists, the server as a stopped-at-exit process, and its query API."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from helpers import Proc, free_port, wait_until

# What the chart's PodMonitor adds from the pod (namespace, pod, container and the pods'
# kubecast.io/* labels), given here per local process, so the alerts group as on a cluster.
NAMESPACE = "local"


def targets_of(lines: list[str]) -> dict[str, str]:
    """Process name -> host:port of its metrics, from the `Metrics (Prometheus):` block `kubecast up` prints."""
    found = {}
    for line in lines:
        if match := re.match(r"\s+(.+?):\s+http://([^/\s]+)/metrics$", line):
            found[match.group(1)] = match.group(2)
    return found


def target_labels(process: str) -> dict[str, str]:
    labels = {"namespace": NAMESPACE, "pod": process.replace(" ", "-").replace("/", "-").lower()}
    if process.startswith("ingest"):
        return {**labels, "container": "ingest", "kubecast_io_encoder": "B" if "secondary" in process else "A"}
    if match := re.fullmatch(r"encoder (\S+)/(\w)", process):
        return {
            **labels,
            "container": "encoder",
            "kubecast_io_channel": match.group(1),
            "kubecast_io_encoder": match.group(2),
        }
    if match := re.fullmatch(r"packager (\S+)", process):
        return {**labels, "container": "packager", "kubecast_io_channel": match.group(1)}
    return {**labels, "container": process, "kubecast_io_endpoint": process}


def scrape_config(targets: dict[str, str], rule_files: list[str]) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": rule_files,
        "scrape_configs": [
            {
                "job_name": "kubecast",
                "static_configs": [
                    {"targets": [address], "labels": target_labels(process)}
                    for process, address in sorted(targets.items())
                ],
            }
        ],
    }


class Prometheus:
    def __init__(self, work: Path, targets: dict[str, str], rule_groups: list[dict[str, Any]]) -> None:
        (work / "rules.yml").write_text(yaml.safe_dump({"groups": rule_groups}))
        (work / "prometheus.yml").write_text(yaml.safe_dump(scrape_config(targets, [str(work / "rules.yml")])))
        self.base = f"http://127.0.0.1:{free_port()}"
        self.proc = Proc(
            [
                "prometheus",
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'tsdb'}",
                f"--web.listen-address={self.base.removeprefix('http://')}",
                "--log.level=warn",
            ],
            name="prometheus",
        )
        try:
            wait_until(self._ready, timeout=30, interval=0.2, what="prometheus ready")
        except BaseException:
            self.proc.stop()
            raise

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base}/-/ready", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def query(self, expr: str) -> dict[str, Any]:
        """The API's answer (``status``, ``data`` or ``error``), also for a query it refuses."""
        url = f"{self.base}/api/v1/query?{urllib.parse.urlencode({'query': expr, 'time': f'{time.time():.3f}'})}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                answer: dict[str, Any] = json.load(response)
        except urllib.error.HTTPError as error:
            answer = json.load(error)
        return answer

    def get(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.base}{path}", timeout=10) as response:
            answer: dict[str, Any] = json.load(response)
        return answer

    def stop(self) -> None:
        self.proc.stop()

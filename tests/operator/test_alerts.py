"""The chart's PrometheusRule under `promtool test rules`: each alert fires on the series the
components would export in that trouble, and stays quiet on a healthy (or idle) channel.

The series names are checked against the metrics the code registers, so an alert cannot watch
a metric nothing exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY
from test_helm import render

import kubecast.encoder.metrics
import kubecast.endpoint.metrics
import kubecast.ingest.metrics
import kubecast.operator.metrics
import kubecast.packager.metrics  # noqa: F401 - registers the packager's metrics

pytestmark = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool (Debian package prometheus) is not installed"
)

NS = "media"
ENCODER = {"namespace": NS, "kubecast_io_channel": "news", "container": "encoder"}
REDUNDANCY_FOR = "5m"


def rule_groups(values: dict | None = None) -> dict:
    documents = render(
        {
            "serviceMonitor": {"enabled": True},
            "prometheusRule": {"enabled": True, "redundancyLostFor": REDUNDANCY_FOR, **(values or {})},
        }
    )
    rule = next(d for d in documents if d["kind"] == "PrometheusRule")
    return {"groups": rule["spec"]["groups"]}


def series(name: str, labels: dict, values: str) -> dict:
    return {"series": name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}", "values": values}


def alert(name: str, eval_time: str, expected: list[dict]) -> dict:
    return {"eval_time": eval_time, "alertname": name, "exp_alerts": expected}


def encoder(instance: str) -> dict:
    return {**ENCODER, "pod": f"news-encoder-{instance.lower()}-0", "kubecast_io_encoder": instance}


# Each case: input series (1 minute apart) and what must fire when; `[]` is "must not fire".
CASES = {
    "contribution lost": (
        [
            series("kubecast_ingest_publishers", {**encoder(i), "container": "ingest", "channel": "news"}, "1x5 0x10")
            for i in "AB"
        ]
        # A channel that never had a publisher is idle, not lost.
        + [
            series(
                "kubecast_ingest_publishers", {"namespace": NS, "pod": "idle-encoder-a-0", "channel": "idle"}, "0x15"
            )
        ]
        # One path lost: redundancy, not contribution.
        + [
            series("kubecast_ingest_publishers", {"namespace": NS, "pod": f"one-encoder-{i}-0", "channel": "one"}, v)
            for i, v in (("a", "1x15"), ("b", "1x5 0x10"))
        ],
        [
            alert("KubecastContributionLost", "4m", []),
            alert(
                "KubecastContributionLost",
                "10m",
                [
                    {
                        "exp_labels": {"severity": "critical", "namespace": NS, "channel": "news"},
                        "exp_annotations": {
                            "summary": "Channel media/news has lost its contribution",
                            "description": "No ingest of the Channel has a publisher, so the live edge has stopped. "
                            "Check the encoder on site and its network path.",
                        },
                    }
                ],
            ),
        ],
    ),
    "encoder slower than real time": (
        [
            series("kubecast_encoder_speed_ratio", encoder("A"), "0.8x15"),
            series("kubecast_encoder_frames_total", {**encoder("A"), "rendition": "720p"}, "0+1500x15"),
            # Slow by its last report, but no frames flow: a stale gauge of an idle encoder.
            series("kubecast_encoder_speed_ratio", encoder("B"), "0.8x15"),
            series("kubecast_encoder_frames_total", {**encoder("B"), "rendition": "720p"}, "1500x15"),
        ],
        [
            alert("KubecastEncoderSlowerThanRealTime", "1m", []),
            alert(
                "KubecastEncoderSlowerThanRealTime",
                "10m",
                [
                    {
                        "exp_labels": {"severity": "warning", **encoder("A")},
                        "exp_annotations": {
                            "summary": "Encoder media/news-encoder-a-0 runs at 0.80x real time",
                            "description": "The live edge falls behind. The encoder pod needs more CPU (its requests "
                            "follow the ladder's pixel rate) or a faster spec.encoding.x264Preset.",
                        },
                    }
                ],
            ),
        ],
    ),
    "encoder fast enough": (
        [
            series("kubecast_encoder_speed_ratio", encoder("A"), "1.4x15"),
            series("kubecast_encoder_frames_total", {**encoder("A"), "rendition": "720p"}, "0+1500x15"),
        ],
        [alert("KubecastEncoderSlowerThanRealTime", "10m", [])],
    ),
    "failover": (
        [
            series(
                "kubecast_packager_failovers_total",
                {"namespace": NS, "pod": "news-packager-0", "kubecast_io_channel": "news"},
                "0x5 1x20",
            )
        ],
        [
            alert("KubecastFailover", "4m", []),
            alert(
                "KubecastFailover",
                "7m",
                [
                    {
                        "exp_labels": {
                            "severity": "warning",
                            "namespace": NS,
                            "pod": "news-packager-0",
                            "kubecast_io_channel": "news",
                        },
                        "exp_annotations": {
                            "summary": "Channel media/news failed over to its other encoder",
                            "description": "The packager took the newest segments from the other encoder; the "
                            "Channel's Failover Events say when.",
                        },
                    }
                ],
            ),
            alert("KubecastFailover", "20m", []),
        ],
    ),
    "redundancy lost": (
        [
            series("kubecast_encoder_segments_total", {**encoder("A"), "rendition": r}, "0+30x30")
            for r in ("720p", "360p")
        ]
        + [
            series("kubecast_encoder_segments_total", {**encoder("B"), "rendition": r}, "0+30x10 300x20")
            for r in ("720p", "360p")
        ],
        [
            alert("KubecastRedundancyLost", "10m", []),
            alert("KubecastRedundancyLost", "15m", []),  # one encoder for ~3 minutes: not yet
            alert(
                "KubecastRedundancyLost",
                "20m",
                [
                    {
                        "exp_labels": {"severity": "warning", "namespace": NS, "kubecast_io_channel": "news"},
                        "exp_annotations": {
                            "summary": "Channel media/news runs on one encoder",
                            "description": f"Only one encoder has stored segments for {REDUNDANCY_FOR}; one more "
                            "failure takes the Channel off the air.",
                        },
                    }
                ],
            ),
        ],
    ),
    "endpoint errors": (
        [
            series(
                "kubecast_endpoint_requests_total",
                {
                    "namespace": NS,
                    "pod": "origin-endpoint-0",
                    "kubecast_io_endpoint": "origin",
                    "route": "/live",
                    "status": s,
                },
                v,
            )
            for s, v in (("200", "0+600x20"), ("503", "0+60x20"))
        ]
        + [
            series(
                "kubecast_endpoint_requests_total",
                {
                    "namespace": NS,
                    "pod": "quiet-endpoint-0",
                    "kubecast_io_endpoint": "quiet",
                    "route": "/live",
                    "status": s,
                },
                v,
            )
            for s, v in (("200", "0+600x20"), ("503", "0+6x20"), ("404", "0+100x20"))
        ],
        [
            alert("KubecastEndpointErrors", "3m", []),
            alert(
                "KubecastEndpointErrors",
                "15m",
                [
                    {
                        "exp_labels": {"severity": "warning", "namespace": NS, "kubecast_io_endpoint": "origin"},
                        "exp_annotations": {
                            "summary": "StreamingEndpoint media/origin answers 9.091% of requests with 5xx",
                            "description": "The endpoint logs each failed request; it answers 503 when a storage read "
                            "fails.",
                        },
                    }
                ],
            ),
        ],
    ),
    "operator errors": (
        [
            series(
                "kubecast_operator_reconciles_total",
                {"namespace": "kubecast-system", "pod": "kubecast-0", "kind": "Channel", "outcome": "error"},
                "0+2x30",
            ),
            series(
                "kubecast_operator_reconciles_total",
                {"namespace": "kubecast-system", "pod": "kubecast-0", "kind": "Channel", "outcome": "ok"},
                "0+10x30",
            ),
            # One failed reconcile that the retry fixed: not an alert.
            series(
                "kubecast_operator_reconciles_total",
                {"namespace": "kubecast-system", "pod": "kubecast-1", "kind": "Channel", "outcome": "error"},
                "0 1x30",
            ),
        ],
        [
            alert("KubecastOperatorErrors", "10m", []),
            alert(
                "KubecastOperatorErrors",
                "25m",
                [
                    {
                        "exp_labels": {"severity": "warning", "namespace": "kubecast-system", "pod": "kubecast-0"},
                        "exp_annotations": {
                            "summary": "Operator kubecast-system/kubecast-0 has failed reconciles for 15 minutes",
                            "description": "The operator's log names the resource and the error; "
                            "kubecast_operator_api_errors_total counts the Kubernetes API errors among them.",
                        },
                    }
                ],
            ),
        ],
    ),
}


def test_every_alert_has_a_case_that_fires_and_one_that_does_not():
    names = {rule["alert"] for group in rule_groups()["groups"] for rule in group["rules"]}
    fired = {test["alertname"] for _, tests in CASES.values() for test in tests if test["exp_alerts"]}
    quiet = {test["alertname"] for _, tests in CASES.values() for test in tests if not test["exp_alerts"]}
    assert names == fired == quiet


def test_alerts_watch_only_metrics_the_code_exports():
    exported = {metric.name for metric in REGISTRY.collect()}
    exported |= {f"{name}_total" for name in exported}
    used = {s["series"].split("{")[0] for inputs, _ in CASES.values() for s in inputs}
    assert used <= exported, used - exported
    expressions = " ".join(rule["expr"] for group in rule_groups()["groups"] for rule in group["rules"])
    names = set(re.findall(r"\bkubecast_[a-z0-9_]+", expressions)) - {
        "kubecast_io_channel",
        "kubecast_io_encoder",
        "kubecast_io_endpoint",
    }
    assert len(names) >= 6 and names <= exported, names - exported


def test_promtool_runs_every_case(tmp_path: Path):
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule_groups()))
    tests = [
        {"name": name, "interval": "1m", "input_series": inputs, "alert_rule_test": checks}
        for name, (inputs, checks) in CASES.items()
    ]
    (tmp_path / "tests.yaml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests})
    )
    check = subprocess.run(
        ["promtool", "check", "rules", "rules.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
    result = subprocess.run(
        ["promtool", "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_catches_a_wrong_expectation(tmp_path: Path):
    """The harness can fail: the same case expecting the wrong threshold's outcome does."""
    inputs, _ = CASES["endpoint errors"]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule_groups({"endpointErrorRatio": 0.2})))
    tests = [
        {
            "name": "errors below a 20% threshold",
            "interval": "1m",
            "input_series": inputs,
            "alert_rule_test": [alert("KubecastEndpointErrors", "15m", CASES["endpoint errors"][1][1]["exp_alerts"])],
        }
    ]
    (tmp_path / "tests.yaml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests})
    )
    result = subprocess.run(
        ["promtool", "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and "KubecastEndpointErrors" in result.stdout + result.stderr

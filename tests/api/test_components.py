"""The ingest's, the encoder's and the packager's configuration files are built by one function for
the operator and for local mode, and read back by the component with the same model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubecast.api import PRESETS, Manifests, load_text
from kubecast.encoder.main import main as encoder_main
from kubecast.ingest.config import ConfigError, load_config
from kubecast.local.plan import Ports, build_plan, metrics_names, write_run_files
from kubecast.operator.builders import build_channel_children
from kubecast.operator.settings import OperatorSettings
from kubecast.packager.main import main as packager_main

MANIFESTS = """
apiVersion: kubecast.io/v1alpha1
kind: Channel
metadata: {name: multi}
spec:
  ingest:
    protocols: [RTMP, SRT, UDP]
    redundancy: Relay
    allowedIps: [192.0.2.0/24]
    streamKeySecretRef: {name: keys, key: stream}
    srt: {passphraseSecretRef: {name: keys, key: srt}, latencyMs: 300}
    udp: {multicastGroup: 239.1.1.1}
---
apiVersion: v1
kind: Secret
metadata: {name: keys}
stringData: {stream: the-key, srt: a-long-passphrase}
"""
# Where a pod and a laptop differ: addresses and the files the secrets land in.
PLACES = {"encoders", "relays", "udpListen", "streamKeyFile", "srtPassphraseFile"}


def local_ports(manifests: Manifests) -> Ports:
    """The ports ``kubecast up`` would give MANIFESTS' channel "multi" (fixed: only the files are compared)."""
    return Ports(
        rtmp=1935,
        http=8080,
        rtmp_secondary=1936,
        contribution={("multi", "A"): 7001, ("multi", "B"): 7002},
        metrics={name: 9000 + i for i, name in enumerate(metrics_names(manifests))},
        udp={("multi", "A"): 5000, ("multi", "B"): 5001},
    )


def test_the_operator_and_local_mode_write_the_same_route_but_for_addresses_and_files(tmp_path: Path):
    manifests = load_text(MANIFESTS)
    channel = manifests.channels["multi"]
    children = build_channel_children(channel, uid="u", namespace="media", settings=OperatorSettings())
    config_map = next(c for c in children if c["kind"] == "ConfigMap" and c["metadata"]["name"] == "multi-encoder-a")
    in_pod = json.loads(config_map["data"]["ingest.json"])
    ports = local_ports(manifests)
    local = json.loads(
        build_plan(manifests=manifests, store_url="/s", run_dir=tmp_path, host="127.0.0.1", ports=ports)
        .ingest_config["A"]
        .to_json()
    )
    assert {k: v for k, v in in_pod.items() if k != "channels"} == {k: v for k, v in local.items() if k != "channels"}
    pod_route, local_route = in_pod["channels"]["multi"], local["channels"]["multi"]
    assert {k: v for k, v in pod_route.items() if k not in PLACES} == {
        k: v for k, v in local_route.items() if k not in PLACES
    }
    assert (
        pod_route["protocols"] == ["RTMP", "SRT", "UDP"]
        and pod_route["srtLatencyMs"] == 300
        and pod_route["udpGroup"] == "239.1.1.1"
    )
    assert all(pod_route[k] and local_route[k] for k in PLACES), "every place is set on both sides for this channel"
    assert local_route["udpListen"] == "127.0.0.1:5000" and local_route["relays"] == ["127.0.0.1:7002"]


def test_an_ingest_file_with_an_unknown_or_mistyped_field_is_refused(tmp_path: Path):
    for route in (
        {"encoders": ["127.0.0.1:7000"], "streamKey": "inline"},
        {"encoders": ["127.0.0.1:7000"], "srtLatencyMs": "soon"},
    ):
        (tmp_path / "ingest.json").write_text(json.dumps({"channels": {"news": route}}))
        with pytest.raises(ConfigError, match="ingest.json"):
            load_config(tmp_path / "ingest.json")


def test_the_operator_and_local_mode_give_the_packager_the_same_config(tmp_path: Path):
    manifests = load_text(MANIFESTS.replace("ingest:", "liveWindow: 30\n  segmentDuration: 4\n  ingest:", 1))
    channel = manifests.channels["multi"]
    children = build_channel_children(channel, uid="u", namespace="media", settings=OperatorSettings())
    packager = next(c for c in children if c["kind"] == "Deployment" and c["metadata"]["name"] == "multi-packager")
    container = packager["spec"]["template"]["spec"]["containers"][0]
    mounted = next(
        c
        for c in children
        if c["kind"] == "ConfigMap"
        and c["metadata"]["name"] == packager["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"]
    )
    assert container["args"][container["args"].index("--config") + 1] == "/etc/kubecast/packager.json"
    in_pod = json.loads(mounted["data"]["packager.json"])
    assert in_pod == {
        "channel": "multi",
        "segmentDurationMs": 4000,
        "windowMs": 30000,
        "instances": ["A", "B"],
        "hlsStartOffsetMs": None,
    }
    ports = local_ports(manifests)
    plan = build_plan(manifests=manifests, store_url="/s", run_dir=tmp_path, host="127.0.0.1", ports=ports)
    write_run_files(plan, tmp_path)
    process = next(p for p in plan.processes if p.name == "packager multi")
    assert json.loads(Path(process.argv[process.argv.index("--config") + 1]).read_text()) == in_pod


def test_the_packager_refuses_a_config_it_cannot_read(tmp_path: Path, capsys):
    (tmp_path / "packager.json").write_text(json.dumps({"channel": "multi", "segmentDurationMs": 2000}))
    assert packager_main(["--config", str(tmp_path / "packager.json"), "--store", str(tmp_path / "store")]) == 2
    assert "windowMs" in capsys.readouterr().err


def test_the_operator_and_local_mode_give_the_encoders_the_same_config(tmp_path: Path):
    encoding = "encoding: {preset: Default1080p, x264Preset: veryfast, audioBitrate: 96000}"
    low_latency = "lowLatency: {partDuration: 0.5}"
    manifests = load_text(
        MANIFESTS.replace("ingest:", f"segmentDuration: 4\n  {encoding}\n  {low_latency}\n  ingest:", 1)
    )
    channel = manifests.channels["multi"]
    children = build_channel_children(channel, uid="u", namespace="media", settings=OperatorSettings())
    in_pods = []
    for instance in ("a", "b"):
        name = f"multi-encoder-{instance}"
        deployment = next(c for c in children if c["kind"] == "Deployment" and c["metadata"]["name"] == name)
        pod = deployment["spec"]["template"]["spec"]
        encoder = next(c for c in pod["containers"] if c["name"] == "encoder")
        assert encoder["args"][encoder["args"].index("--config") + 1] == "/etc/kubecast/encoder.json"
        config_map = pod["volumes"][0]["configMap"]["name"]
        mounted = next(c for c in children if c["kind"] == "ConfigMap" and c["metadata"]["name"] == config_map)
        in_pods.append(json.loads(mounted["data"]["encoder.json"]))
    assert in_pods[0] == in_pods[1]
    assert {k: v for k, v in in_pods[0].items() if k != "renditions"} == {
        "channel": "multi",
        "segmentDurationMs": 4000,
        "x264Preset": "veryfast",
        "audioBitrate": 96000,
        "slateAfterMs": None,
        "partDurationMs": 500,
        "slateLimitMs": None,
    }
    assert [r["name"] for r in in_pods[0]["renditions"]] == [r.name for r in PRESETS["Default1080p"]]
    ports = local_ports(manifests)
    plan = build_plan(manifests=manifests, store_url="/s", run_dir=tmp_path, host="127.0.0.1", ports=ports)
    write_run_files(plan, tmp_path)
    for instance in ("A", "B"):
        process = next(p for p in plan.processes if p.name == f"encoder multi/{instance}")
        assert json.loads(Path(process.argv[process.argv.index("--config") + 1]).read_text()) == in_pods[0]


def test_the_encoder_refuses_a_config_it_cannot_read(tmp_path: Path, capsys):
    incomplete = {"channel": "multi", "segmentDurationMs": 2000, "renditions": []}
    (tmp_path / "encoder.json").write_text(json.dumps(incomplete))
    assert encoder_main(["--config", str(tmp_path / "encoder.json"), "--store", str(tmp_path / "store")]) == 2
    assert "audioBitrate" in capsys.readouterr().err

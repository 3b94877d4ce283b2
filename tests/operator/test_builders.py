"""Pure builders and aggregators, called directly; every manifest checked against Kubernetes' own schemas."""

from __future__ import annotations

import ast
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import kubernetes_validate
import pytest

from kubecast.api import Channel, load_text
from kubecast.operator.builders import build_channel_children, build_endpoint_children
from kubecast.operator.rollout import DeploymentState
from kubecast.operator.settings import OperatorSettings
from kubecast.operator.status import aggregate_channel, aggregate_endpoint, aggregate_program

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
SETTINGS = OperatorSettings(store_url="s3://media/live", store_credentials_secret="store-credentials")
DOCS = load_text("""
apiVersion: kubecast.io/v1alpha1
kind: Channel
metadata: {name: news}
spec:
  ingest: {streamKeySecretRef: {name: news-key, key: streamKey}, serviceType: NodePort}
  encoding: {preset: Default720p}
---
apiVersion: kubecast.io/v1alpha1
kind: StreamingEndpoint
metadata: {name: origin}
spec: {scaling: {minReplicas: 2, maxReplicas: 8}, hostNames: [live.example.com]}
---
apiVersion: kubecast.io/v1alpha1
kind: StreamingEndpoint
metadata: {name: fixed}
spec: {replicas: 3}
---
apiVersion: kubecast.io/v1alpha1
kind: Program
metadata: {name: match}
spec: {channelName: news, archiveWindow: PT1H}
""")


def channel_children():
    return build_channel_children(DOCS.channels["news"], uid="uid-1", namespace="media", settings=SETTINGS)


def children_by_name(channel: Channel, uid: str = "u") -> dict[tuple[str, str], dict]:
    """The children the operator builds for ``channel`` in namespace media, by (kind, name)."""
    children = build_channel_children(channel, uid=uid, namespace="media", settings=SETTINGS)
    return {(c["kind"], c["metadata"]["name"]): c for c in children}


def test_channel_children_are_valid_kubernetes_objects():
    children = channel_children()
    assert sorted((c["kind"], c["metadata"]["name"]) for c in children) == [
        ("ConfigMap", "news-encoder-a"),
        ("ConfigMap", "news-encoder-b"),
        ("Deployment", "news-encoder-a"),
        ("Deployment", "news-encoder-b"),
        ("Deployment", "news-packager"),
        ("PodDisruptionBudget", "news-encoders"),
        ("Service", "news-ingest-a"),
        ("Service", "news-ingest-b"),
    ]
    for child in children:
        kubernetes_validate.validate(child, "1.30", strict=True)
        assert child["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "kubecast.io/v1alpha1",
                "kind": "Channel",
                "name": "news",
                "uid": "uid-1",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        assert child["metadata"]["labels"]["kubecast.io/channel"] == "news"
        assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kubecast-operator"


def test_encoder_pair_is_spread_and_protected():
    children = {(c["kind"], c["metadata"]["name"]): c for c in channel_children()}
    pod = children[("Deployment", "news-encoder-a")]["spec"]["template"]["spec"]
    term = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == {
        "kubecast.io/channel": "news",
        "app.kubernetes.io/component": "encoder",
    }
    assert children[("PodDisruptionBudget", "news-encoders")]["spec"]["minAvailable"] == 1
    assert children[("Service", "news-ingest-b")]["spec"]["type"] == "NodePort"
    encoder = next(c for c in pod["containers"] if c["name"] == "encoder")
    assert encoder["args"][:3] == ["encoder", "--config", "/etc/kubecast/encoder.json"] and "B" not in encoder["args"]
    assert encoder["envFrom"] == [{"secretRef": {"name": "store-credentials"}}]
    assert encoder["resources"]["requests"]["cpu"] == "1510m"  # Default720p: 2.0 Mpx per frame
    assert children[("Deployment", "news-packager")]["spec"]["strategy"] == {"type": "Recreate"}


def test_stream_key_travels_only_as_a_secret_reference():
    children = channel_children()
    text = repr(children)
    assert "news-key" in text  # the Secret's name, mounted as a file
    volume = next(v for v in children[1]["spec"]["template"]["spec"]["volumes"] if v["name"] == "ingest-secrets")
    assert volume["projected"]["sources"] == [
        {"secret": {"name": "news-key", "items": [{"key": "streamKey", "path": "stream-key"}]}}
    ]


def test_every_accepted_protocol_gets_its_port_service_and_config():
    from kubecast.api import Channel

    channel = Channel.model_validate(
        {
            "metadata": {"name": "multi"},
            "spec": {
                "ingest": {
                    "protocols": ["RTMP", "FragmentedMP4", "SRT", "UDP"],
                    "srt": {"passphraseSecretRef": {"name": "srt", "key": "passphrase"}},
                }
            },
        }
    )
    children = children_by_name(channel)
    service = children[("Service", "multi-ingest-a")]
    assert [(p["name"], p["port"], p["protocol"]) for p in service["spec"]["ports"]] == [
        ("rtmp", 1935, "TCP"),
        ("http-ingest", 8081, "TCP"),
        ("srt", 9000, "UDP"),
        ("mpegts", 5000, "UDP"),
    ]
    pod = children[("Deployment", "multi-encoder-a")]["spec"]["template"]["spec"]
    ingest = next(c for c in pod["containers"] if c["name"] == "ingest")
    assert "--http-listen" in ingest["args"] and "--srt-listen" in ingest["args"]
    config = json.loads(children[("ConfigMap", "multi-encoder-a")]["data"]["ingest.json"])["channels"]["multi"]
    assert config["udpListen"] == "0.0.0.0:5000" and config["srtPassphraseFile"].endswith("/srt-passphrase")
    assert config["protocols"] == ["RTMP", "FragmentedMP4", "SRT", "UDP"]
    for child in children.values():
        kubernetes_validate.validate(child, "1.30", strict=True)


def test_an_encoder_pods_ingest_follows_the_control_record_and_stays_routable_while_it_goes():
    """The ingest reads the channel's state from the store (the pod's store URL and credentials), keeps
    refusing for less than the pod's grace period when its channel stopped, and its Service keeps
    routing publishers to the terminating pod meanwhile."""
    from kubecast.api import Channel
    from kubecast.operator.builders.encoder import STOPPED_LINGER_SECONDS

    channel = Channel.model_validate({"metadata": {"name": "news"}, "spec": {}})
    children = children_by_name(channel)
    pod = children[("Deployment", "news-encoder-a")]["spec"]["template"]["spec"]
    ingest, encoder = (next(c for c in pod["containers"] if c["name"] == name) for name in ("ingest", "encoder"))
    args = ingest["args"]
    assert args[args.index("--store") + 1] == "$(KUBECAST_STORE_URL)"
    assert float(args[args.index("--stopped-linger") + 1]) == STOPPED_LINGER_SECONDS
    assert STOPPED_LINGER_SECONDS + 5 <= pod["terminationGracePeriodSeconds"]
    assert (ingest["env"], ingest["envFrom"]) == (encoder["env"], encoder["envFrom"])
    for instance in ("a", "b"):
        assert children[("Service", f"news-ingest-{instance}")]["spec"]["publishNotReadyAddresses"] is True


def test_autoscaled_endpoint_never_gets_replicas():
    children = build_endpoint_children(DOCS.endpoints["origin"], uid="u", namespace="media", settings=SETTINGS)
    kinds = {c["kind"]: c for c in children}
    assert set(kinds) == {
        "ConfigMap",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "Ingress",
    }
    assert "replicas" not in kinds["Deployment"]["spec"]
    assert kinds["HorizontalPodAutoscaler"]["spec"]["minReplicas"] == 2
    for child in children:
        kubernetes_validate.validate(child, "1.30", strict=True)
    fixed = {
        c["kind"]: c
        for c in build_endpoint_children(DOCS.endpoints["fixed"], uid="u", namespace="media", settings=SETTINGS)
    }
    assert fixed["Deployment"]["spec"]["replicas"] == 3 and "HorizontalPodAutoscaler" not in fixed


def ready(n=1):
    return DeploymentState.of({"status": {"replicas": 1, "readyReplicas": n, "updatedReplicas": n}})


def test_channel_status_moves_from_starting_to_ready():
    channel = DOCS.channels["news"]
    starting = aggregate_channel(
        channel, generation=2, deployments={}, services={}, secret_error=None, previous=None, now=NOW
    )
    assert {c["type"]: c["status"] for c in starting["conditions"]} == {
        "Ready": "False",
        "Reconciling": "True",
        "Stalled": "False",
    }
    services = {
        "news-ingest-a": {
            "metadata": {"name": "news-ingest-a", "namespace": "media"},
            "spec": {"type": "LoadBalancer"},
            "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}},
        }
    }
    deployments = {"news-encoder-a": ready(), "news-encoder-b": ready(), "news-packager": ready()}
    later = NOW + timedelta(minutes=1)
    status = aggregate_channel(
        channel,
        generation=2,
        deployments=deployments,
        services=services,
        secret_error=None,
        previous=starting,
        now=later,
    )
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "True" and conditions["Ready"]["reason"] == "Redundant"
    assert conditions["Ready"]["lastTransitionTime"] == "2026-01-01T00:01:00Z"
    assert conditions["Stalled"]["lastTransitionTime"] == "2026-01-01T00:00:00Z", "unchanged status keeps its time"
    assert status["observedGeneration"] == 2 and status["ingest"]["primary"] == "rtmp://203.0.113.7:1935/live/news"
    degraded = aggregate_channel(
        channel,
        generation=2,
        deployments={**deployments, "news-encoder-b": None},
        services={},
        secret_error=None,
        previous=status,
        now=later,
    )
    assert {c["type"]: c["reason"] for c in degraded["conditions"]}["Ready"] == "Degraded"


def test_missing_secret_stalls_without_leaking():
    status = aggregate_channel(
        DOCS.channels["news"],
        generation=1,
        deployments={},
        services={},
        secret_error="Secret news-key has no key streamKey",
        previous=None,
        now=NOW,
    )
    conditions = {c["type"]: c for c in status["conditions"]}
    assert (
        conditions["Ready"]["status"] == "False"
        and conditions["Stalled"]["status"] == "True"
        and conditions["Ready"]["reason"] == "SecretMissing"
    )


def test_endpoint_and_program_status():
    status = aggregate_endpoint(
        DOCS.endpoints["origin"],
        generation=1,
        deployment=DeploymentState.of({"status": {"replicas": 2, "readyReplicas": 2}}),
        namespace="media",
        previous=None,
        now=NOW,
    )
    assert status["hostName"] == "live.example.com" and status["readyReplicas"] == 2
    program = aggregate_program(
        DOCS.programs["match"],
        generation=1,
        channel=DOCS.channels["news"],
        endpoints=[DOCS.endpoints["origin"]],
        namespace="media",
        previous=None,
        now=NOW,
    )
    urls = {u["format"]: u["url"] for u in program["playbackUrls"]}
    assert set(urls) == {"hls", "hls-startover", "dash", "smooth", "hls-cmaf", "hls-ts", "dash-cmaf", "dash-csf"}
    locator = DOCS.programs["match"].spec.locator or "match"
    assert (
        urls["hls-ts"]
        == f"http://live.example.com/{locator}/{DOCS.programs['match'].spec.manifest_name}.ism/manifest(format=m3u8-aapl)"
    )
    missing = aggregate_program(
        DOCS.programs["match"], generation=1, channel=None, endpoints=[], namespace="media", previous=None, now=NOW
    )
    assert {c["type"]: c["reason"] for c in missing["conditions"]}["Stalled"] == "ChannelNotFound"


def test_program_recording_merges_into_a_valid_program_status():
    from kubecast.api.status import ProgramStatus
    from kubecast.operator.status import aggregate_recording

    program = aggregate_program(
        DOCS.programs["match"],
        generation=1,
        channel=DOCS.channels["news"],
        endpoints=[DOCS.endpoints["origin"]],
        namespace="media",
        previous=None,
        now=NOW,
    )
    waiting = aggregate_recording(None, program_stopped=False)
    assert waiting == {
        "recording": {"state": "Waiting", "start": None, "end": None, "durationSeconds": 0.0, "segments": 0}
    }
    assert ProgramStatus.model_validate({**program, **waiting}).recording.state == "Waiting"
    assert aggregate_recording(None, program_stopped=True)["recording"]["state"] == "Stopped", (
        "stopped before it recorded: it never will"
    )


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(
                node.module.split(".")[0]
                if not node.module.startswith("kubecast.")
                else ".".join(node.module.split(".")[:2])
            )
    return names


PACKAGE = Path(__file__).parents[2] / "kubecast"


@pytest.mark.parametrize(
    "module",
    [
        *(f"builders/{path.name}" for path in (PACKAGE / "operator" / "builders").glob("*.py")),
        *(f"status/{path.name}" for path in (PACKAGE / "operator" / "status").glob("*.py")),
        "crds.py",
        "settings.py",
    ],
)
def test_pure_operator_modules_import_neither_kopf_nor_kubernetes(module):
    assert not imports_of(PACKAGE / "operator" / module) & {"kopf", "kubernetes"}


@pytest.mark.parametrize("folder", ["ingest", "encoder", "storage", "packager", "endpoint", "media", "local", "api"])
def test_data_plane_does_not_depend_on_the_operator(folder):
    for path in (PACKAGE / folder).rglob("*.py"):
        assert not imports_of(path) & {"kopf", "kubernetes", "kubecast.operator"}, path


def test_every_metrics_port_listens_where_prometheus_can_reach_it():
    """A component's metrics default to loopback (right locally, unreachable in a pod)."""
    containers = [
        c
        for child in channel_children()
        if child["kind"] == "Deployment"
        for c in child["spec"]["template"]["spec"]["containers"]
    ]
    with_metrics = [c for c in containers if "--metrics-port" in c["args"]]
    assert len(with_metrics) == 5  # ingest + encoder in A and B, and the packager
    for container in with_metrics:
        assert container["args"][container["args"].index("--metrics-address") + 1] == "0.0.0.0", container["name"]
        port = int(container["args"][container["args"].index("--metrics-port") + 1])
        assert port in [p["containerPort"] for p in container["ports"]], container["name"]


def test_relay_mode_forwards_each_ingest_to_the_other_encoder_and_fences_the_port():
    relay = load_text(DOCS_TEXT_RELAY).channels["news"]
    children = children_by_name(relay, uid="uid-1")
    for child in children.values():
        kubernetes_validate.validate(child, "1.30", strict=True)
    config_a = json.loads(children[("ConfigMap", "news-encoder-a")]["data"]["ingest.json"])["channels"]["news"]
    assert config_a["encoders"] == ["127.0.0.1:7000"] and config_a["relays"] == ["news-contribution-b.media.svc:7000"]
    service = children[("Service", "news-contribution-b")]["spec"]
    assert service["type"] == "ClusterIP" and service["selector"]["kubecast.io/encoder"] == "B"
    encoder = next(
        c
        for c in children[("Deployment", "news-encoder-b")]["spec"]["template"]["spec"]["containers"]
        if c["name"] == "encoder"
    )
    assert "0.0.0.0:7000" in encoder["args"], "the contribution port must be reachable through the Service"
    policy = children[("NetworkPolicy", "news-encoders")]["spec"]
    fenced = next(rule for rule in policy["ingress"] if "from" in rule)
    assert (
        fenced["ports"] == [{"port": 7000, "protocol": "TCP"}]
        and fenced["from"][0]["podSelector"]["matchLabels"]["kubecast.io/channel"] == "news"
    )
    assert all(p["port"] != 7000 for p in next(rule for rule in policy["ingress"] if "from" not in rule)["ports"])
    # dual push (the default) keeps the port on the pod's loopback: no Service, no policy
    dual = {(c["kind"], c["metadata"]["name"]) for c in channel_children()}
    assert ("Service", "news-contribution-b") not in dual and ("NetworkPolicy", "news-encoders") not in dual


def test_every_namespace_gets_its_own_store_folder_and_encoders_prefer_other_zones():
    pod = next(
        c for c in channel_children() if c["metadata"]["name"] == "news-encoder-a" and c["kind"] == "Deployment"
    )["spec"]["template"]["spec"]
    encoder = next(c for c in pod["containers"] if c["name"] == "encoder")
    assert {"name": "KUBECAST_STORE_URL", "value": "s3://media/live/media"} in encoder["env"]
    preferred = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0][
        "podAffinityTerm"
    ]
    assert preferred["topologyKey"] == "topology.kubernetes.io/zone"


DOCS_TEXT_RELAY = """
apiVersion: kubecast.io/v1alpha1
kind: Channel
metadata: {name: news}
spec:
  ingest: {redundancy: Relay, streamKeySecretRef: {name: news-key, key: streamKey}}
  encoding: {preset: Default720p}
"""


def test_stream_status_comes_from_the_timeline_and_only_a_new_failover_is_an_event():
    from kubecast.media.timeline import EncoderHealth, Timeline
    from kubecast.operator.status import aggregate_stream, contained, failover_message

    timeline = Timeline(
        channel="news",
        state="live",
        updated=NOW,
        segment_duration_ms=2000,
        window_ms=60000,
        active_source="B",
        failovers=2,
        last_failover=NOW,
        encoders={
            "A": EncoderHealth(state="absent", last_segment=9, segments_taken=10),
            "B": EncoderHealth(state="live", ingest_connected=True, last_segment=30, segments_taken=21),
        },
    )
    media = aggregate_stream(timeline)
    assert media["stream"] == {
        "state": "live",
        "activeEncoder": "B",
        "failovers": 2,
        "lastFailoverTime": "2026-01-01T00:00:00Z",
        "updated": "2026-01-01T00:00:00Z",
    }
    assert media["encoders"]["A"] == {"live": False, "ingestConnected": False, "lastSegment": 9, "segmentsTaken": 10}
    assert failover_message(None, media) is None, "the first report repeats no old failover"
    assert failover_message({"stream": {"failovers": 2}}, media) is None
    assert (
        failover_message({"stream": {"failovers": 1}}, media)
        == "segments now come from encoder B (1 failover since the last report, 2 in all)"
    )
    status = {
        "stream": dict(media["stream"]),
        "encoders": {"A": {"ready": True, **media["encoders"]["A"]}, "B": {"ready": True, **media["encoders"]["B"]}},
    }
    assert contained(media, status) and not contained({"encoders": {"B": {"lastSegment": 31}}}, status)


def misaligned_timeline(now, *, aligned: bool = False):
    from kubecast.media.timeline import Timeline

    stamp = now.isoformat().replace("+00:00", "Z")
    message = (
        "rendition video1 is not key-frame aligned with video: segment 12 starts 40 ms away from the primary"
        " rendition's; it is not published"
    )
    return Timeline(
        channel="news",
        state="live",
        updated=now,
        segment_duration_ms=2000,
        window_ms=60000,
        conditions=[
            {
                "type": "IngestConnected",
                "status": "True",
                "reason": "ContributionReceived",
                "message": "",
                "lastTransitionTime": stamp,
            },
            {
                "type": "InitSegmentsConsistent",
                "status": "True",
                "reason": "InitSegmentsMatch",
                "message": "all encoders produce identical init segments",
                "lastTransitionTime": stamp,
            },
            {
                "type": "KeyframesAligned",
                "status": "True" if aligned else "False",
                "reason": "RenditionsAligned" if aligned else "RenditionsMisaligned",
                "message": "aligned" if aligned else message,
                "lastTransitionTime": stamp,
            },
            {
                "type": "Ready",
                "status": "True",
                "reason": "Live",
                "message": "segments are being published",
                "lastTransitionTime": stamp,
            },
        ],
    )


def test_data_plane_conditions_join_the_channels_own_and_a_misalignment_is_announced_once():
    from kubecast.api.status import ChannelStatus
    from kubecast.operator.status import channel_conditions, initial_conditions, stream_report

    channel = DOCS.channels["news"]
    deployments = {"news-encoder-a": ready(), "news-encoder-b": ready(), "news-packager": ready()}
    status = aggregate_channel(
        channel, generation=2, deployments=deployments, services={}, secret_error=None, previous=None, now=NOW
    )
    later = NOW + timedelta(minutes=1)
    report = stream_report(misaligned_timeline(NOW), status=status, reported=None, generation=2, now=later)
    sent = {c["type"]: c for c in report.status["conditions"]}
    assert [c["type"] for c in report.status["conditions"]] == [
        "Ready",
        "Reconciling",
        "Stalled",
        "KeyframesAligned",
        "InitSegmentsConsistent",
    ]
    assert sent["Ready"] == next(c for c in status["conditions"] if c["type"] == "Ready"), (
        "the packager's Ready is not the Channel's"
    )
    aligned = sent["KeyframesAligned"]
    assert (
        aligned["status"] == "False"
        and aligned["reason"] == "RenditionsMisaligned"
        and "rendition video1" in aligned["message"]
    )
    assert aligned["observedGeneration"] == 2 and aligned["lastTransitionTime"] == "2026-01-01T00:01:00Z"
    assert report.warnings == [("RenditionsMisaligned", aligned["message"])]
    assert report.status["stream"]["state"] == "live"
    status = {**status, **report.status}  # the merge patch
    ChannelStatus.model_validate(status)

    # the next report changes nothing: no list is sent, no second event, the time stays
    again = stream_report(
        misaligned_timeline(NOW),
        status=status,
        reported=report.data_plane,
        generation=2,
        now=later + timedelta(minutes=1),
    )
    assert "conditions" not in again.status and again.warnings == [] and again.data_plane == report.data_plane
    # nor after an operator restart (nothing remembered: the Channel's status stands in)
    assert stream_report(misaligned_timeline(NOW), status=status, reported=None, generation=2, now=later).warnings == []

    # the reconcile side keeps them: from the status it read, or from the newer report when the status predates it
    stale = aggregate_channel(
        channel, generation=2, deployments=deployments, services={}, secret_error=None, previous=status, now=later
    )
    assert {c["type"]: c for c in stale["conditions"]}["KeyframesAligned"] == aligned
    before_report = aggregate_channel(
        channel,
        generation=2,
        deployments=deployments,
        services={},
        secret_error=None,
        previous={"conditions": [c for c in status["conditions"] if c["type"] in ("Ready", "Reconciling", "Stalled")]},
        now=later,
        data_plane=report.data_plane,
    )
    assert before_report["conditions"] == status["conditions"]
    first_sight = channel_conditions(
        initial_conditions(2, later), None, report.data_plane
    )  # observe, after the first report
    assert [c["type"] for c in first_sight] == [
        "Ready",
        "Reconciling",
        "Stalled",
        "KeyframesAligned",
        "InitSegmentsConsistent",
    ]

    # a list sent from a status read before the report's patch loses them: the next report puts them back
    # unchanged, silently
    clobbered = {**status, "conditions": [c for c in status["conditions"] if c["type"] == "Ready"]}
    healed = stream_report(
        misaligned_timeline(NOW),
        status=clobbered,
        reported=report.data_plane,
        generation=2,
        now=later + timedelta(minutes=2),
    )
    assert {c["type"]: c for c in healed.status["conditions"]}["KeyframesAligned"] == aligned and healed.warnings == []

    # realigned (a new contribution), then misaligned again: a second event
    fixed = stream_report(
        misaligned_timeline(NOW, aligned=True),
        status=status,
        reported=report.data_plane,
        generation=2,
        now=later + timedelta(minutes=3),
    )
    assert {c["type"]: c["status"] for c in fixed.status["conditions"]}[
        "KeyframesAligned"
    ] == "True" and fixed.warnings == []
    status = {**status, **fixed.status}
    broken = stream_report(
        misaligned_timeline(NOW),
        status=status,
        reported=fixed.data_plane,
        generation=2,
        now=later + timedelta(minutes=4),
    )
    assert [reason for reason, _ in broken.warnings] == ["RenditionsMisaligned"]


def test_a_misalignment_does_not_touch_ready():
    from kubecast.operator.status import stream_report

    status = aggregate_channel(
        DOCS.channels["news"],
        generation=1,
        deployments={"news-encoder-a": ready(), "news-encoder-b": ready(), "news-packager": ready()},
        services={},
        secret_error=None,
        previous=None,
        now=NOW,
    )
    merged = {
        **status,
        **stream_report(misaligned_timeline(NOW), status=status, reported=None, generation=1, now=NOW).status,
    }
    ready_condition = {c["type"]: c for c in merged["conditions"]}["Ready"]
    assert ready_condition["status"] == "True" and ready_condition["reason"] == "Redundant"


def test_every_secret_a_channel_mounts_is_checked_and_named_never_its_value():
    from kubecast.api import Channel
    from kubecast.operator.builders import secret_references
    from kubecast.operator.status import secret_problems

    channel = Channel.model_validate(
        {
            "metadata": {"name": "srt"},
            "spec": {
                "ingest": {
                    "protocols": ["RTMP", "SRT"],
                    "streamKeySecretRef": {"name": "srt-key", "key": "streamKey"},
                    "srt": {"passphraseSecretRef": {"name": "srt-pass", "key": "passphrase"}},
                }
            },
        }
    )
    references = secret_references(channel)
    assert [(purpose, ref.name, path) for purpose, ref, path in references] == [
        ("stream key", "srt-key", "stream-key"),
        ("SRT passphrase", "srt-pass", "srt-passphrase"),
    ]
    key = {"data": {"streamKey": "c2VjcmV0"}}
    assert (
        secret_problems(references, {"srt-key": key, "srt-pass": None})
        == "Secret srt-pass (SRT passphrase) does not exist"
    )
    wrong_key = secret_problems(references, {"srt-key": key, "srt-pass": {"data": {"pass": "dG9wc2VjcmV0cGFzcw=="}}})
    assert wrong_key == "Secret srt-pass (SRT passphrase) has no key passphrase" and "dG9w" not in wrong_key
    assert (
        secret_problems(references, {"srt-key": None, "srt-pass": None})
        == "Secret srt-key (stream key) does not exist; Secret srt-pass (SRT passphrase) does not exist"
    )
    assert secret_problems(references, {"srt-key": key, "srt-pass": {"stringData": {"passphrase": "x" * 16}}}) is None
    # the pods mount exactly what is checked
    pod = next(
        c
        for c in build_channel_children(channel, uid="u", namespace="media", settings=SETTINGS)
        if c["kind"] == "Deployment"
    )["spec"]["template"]["spec"]
    sources = next(v for v in pod["volumes"] if v["name"] == "ingest-secrets")["projected"]["sources"]
    assert [s["secret"]["name"] for s in sources] == [ref.name for _, ref, _ in references]
    assert (
        secret_references(DOCS.channels["news"])[0][1].name == "news-key"
        and len(secret_references(DOCS.channels["news"])) == 1
    )


def test_operator_replicas_never_share_a_peering_priority(monkeypatch):
    """kopf freezes every operator that sees a peer of its own priority: the default gives the
    longest-running replica the highest, and replicas started in one millisecond still differ."""
    import kopf

    from kubecast.operator import main as operator_main

    assert operator_main.seniority_priority(1_000, 5) > operator_main.seniority_priority(1_001, 999_999), (
        "the older replica stays active"
    )
    assert operator_main.seniority_priority(1_000, 1) != operator_main.seniority_priority(1_000, 2)
    # a replica started a fraction of a second later never outranks the older one (seen in CI)
    assert operator_main.seniority_priority(1_000.2, 0) > operator_main.seniority_priority(1_000.7, 999)
    assert operator_main.seniority_priority(2_000_000_000, 999) < 2**53  # exact in JSON numbers
    seen = []

    async def fake_operator(**kwargs):
        seen.append(kwargs["priority"])

    monkeypatch.setattr(kopf, "operator", fake_operator)
    for _ in range(2):
        operator_main.main(["--namespace", "media"])
    operator_main.main(["--priority", "7"])
    assert seen[0] != seen[1] and seen[2] == 7


def test_a_tls_channel_mounts_its_tls_secret_and_opens_rtmps_and_https_ports() -> None:
    from kubecast.api import Channel
    from kubecast.operator.builders.encoder import secret_references
    from kubecast.operator.status import protocol_urls, secret_problems

    channel = Channel.model_validate(
        {
            "metadata": {"name": "secure"},
            "spec": {
                "ingest": {
                    "protocols": ["RTMP", "CMAF", "SRT"],
                    "tls": {"secretName": "ingest-tls"},
                    "redundancy": "Relay",
                }
            },
        }
    )
    children = children_by_name(channel)
    service = children[("Service", "secure-ingest-a")]
    assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
        ("rtmp", 1935, "rtmp"),
        ("rtmps", 443, "rtmps"),
        ("http-ingest", 8081, "http-ingest"),
        ("https-ingest", 8443, "https-ingest"),
        ("srt", 9000, "srt"),
    ]
    pod = children[("Deployment", "secure-encoder-a")]["spec"]["template"]["spec"]
    ingest = next(c for c in pod["containers"] if c["name"] == "ingest")
    assert {p["name"]: p["containerPort"] for p in ingest["ports"]}["rtmps"] == 1943
    args = " ".join(ingest["args"])
    assert "--rtmps-listen 0.0.0.0:1943" in args and "--https-listen 0.0.0.0:8443" in args
    assert "--tls-cert /var/run/secrets/kubecast/tls/tls.crt --tls-key /var/run/secrets/kubecast/tls/tls.key" in args
    volume = next(v for v in pod["volumes"] if v["name"] == "ingest-secrets")
    assert volume["projected"]["sources"] == [
        {"secret": {"name": "ingest-tls", "items": [{"key": "tls.crt", "path": "tls/tls.crt"}]}},
        {"secret": {"name": "ingest-tls", "items": [{"key": "tls.key", "path": "tls/tls.key"}]}},
    ]
    mount = next(m for m in ingest["volumeMounts"] if m["name"] == "ingest-secrets")
    assert mount["mountPath"] == "/var/run/secrets/kubecast"
    encoder = next(c for c in pod["containers"] if c["name"] == "encoder")
    assert all(m["name"] != "ingest-secrets" for m in encoder["volumeMounts"]), "only the ingest sees the key"
    policy = children[("NetworkPolicy", "secure-encoders")]["spec"]["ingress"][0]["ports"]
    assert {"port": 1943, "protocol": "TCP"} in policy and {"port": 8443, "protocol": "TCP"} in policy
    route = json.loads(children[("ConfigMap", "secure-encoder-a")]["data"]["ingest.json"])["channels"]["secure"]
    assert route["tls"] is True and route["plaintext"] is False
    for child in children.values():
        kubernetes_validate.validate(child, "1.30", strict=True)
    # The Secret check names what is missing, never a value.
    half = {"ingest-tls": {"type": "kubernetes.io/tls", "data": {"tls.crt": "Y2VydA=="}}}
    problem = secret_problems(secret_references(channel), half)
    assert problem == "Secret ingest-tls (TLS private key) has no key tls.key"
    assert secret_problems(secret_references(channel), {}) == (
        "Secret ingest-tls (TLS certificate) does not exist; Secret ingest-tls (TLS private key) does not exist"
    )
    # Publishers' URLs: TLS only, so no plain RTMP or HTTP URL is offered.
    loaded = {**service, "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}}
    assert protocol_urls(channel, loaded, None) == {
        "RTMP-TLS": "rtmps://203.0.113.7:443/live/secure/any",
        "CMAF-TLS": "https://203.0.113.7:8443/ingest/secure.cmaf/manifest.mpd",
        "SRT": "srt://203.0.113.7:9000?streamid=secure",
    }
    status = aggregate_channel(
        channel,
        generation=1,
        deployments={},
        services={"secure-ingest-a": loaded},
        secret_error=None,
        previous=None,
        now=NOW,
    )
    assert status["ingest"]["primary"] == "rtmps://203.0.113.7:443/live/secure"


def test_a_stopped_channel_scales_its_encoders_and_packager_to_zero_and_keeps_their_pods_spec():
    def deployments(state: str) -> dict[str, dict]:
        text = f"apiVersion: kubecast.io/v1alpha1\nkind: Channel\nmetadata: {{name: news}}\nspec: {{state: {state}}}\n"
        channel = load_text(text).channels["news"]
        children = build_channel_children(channel, uid="u1", namespace="media", settings=SETTINGS)
        return {c["metadata"]["name"]: c["spec"] for c in children if c["kind"] == "Deployment"}

    running, stopped = deployments("Running"), deployments("Stopped")
    assert sorted(stopped) == ["news-encoder-a", "news-encoder-b", "news-packager"]
    assert {name: spec["replicas"] for name, spec in running.items()} == dict.fromkeys(running, 1)
    assert {name: spec["replicas"] for name, spec in stopped.items()} == dict.fromkeys(stopped, 0)
    # Stopping and starting again rolls nothing: the pods come back as they were.
    assert all(stopped[name]["template"] == running[name]["template"] for name in running)

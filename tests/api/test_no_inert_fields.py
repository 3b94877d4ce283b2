"""No field that does nothing: every spec field of every resource, set to something other than
its default, changes what is built from the resource (the operator's child objects, the local
plan's processes and their config files, a Program's record and status).

The encoder pods' spec hash is made from every Channel field, so it is left out of the comparison:
a field proves nothing by changing it.  What the data-plane components read is in their own
config files (``encoder.json``, ``packager.json``, ``ingest.json``), which are compared.
"""

from __future__ import annotations

import copy
import json
import typing
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pydantic import BaseModel

from kubecast.api import Channel, Program, StreamingEndpoint, load_text
from kubecast.api.common import SecretKeyRef
from kubecast.local.plan import Ports, build_plan, metrics_names
from kubecast.operator.builders import build_channel_children, build_endpoint_children
from kubecast.operator.settings import OperatorSettings
from kubecast.operator.status import aggregate_program
from kubecast.storage import ProgramRecord

# Read by the operator when the resource is deleted, so nothing built differs.
READ_AT_DELETION = {
    "Channel.deletionPolicy": "tests/operator/test_operator_lifecycle.py (Delete: a finalizer, and the media goes; "
    "Retain: neither)",
}
# Informational by design: none.  (A field here would say so in its description.)
INFORMATIONAL: dict[str, str] = {}

KEY = {"name": "some-secret", "key": "value"}
CPIX_BASE = {
    "contentProtection": {
        "masterKeySecretRef": KEY,
        "cpix": {"url": "https://a.example/cpix", "drmSystems": ["Widevine"]},
    }
}
# Field path -> (spec patch of the baseline, spec patch with the field set to a non-default value).
RENDITION = {"name": "v1", "width": 640, "height": 360, "bitrate": 800_000}
VARIANTS: dict[str, tuple[dict, dict]] = {
    "Channel.encoding.preset": ({}, {"encoding": {"preset": "Default1080p"}}),
    "Channel.encoding.renditions": (
        {"encoding": {"preset": "Custom", "renditions": [RENDITION]}},
        {"encoding": {"renditions": [{**RENDITION, "width": 480}]}},
    ),
    "Channel.encoding.x264Preset": ({}, {"encoding": {"x264Preset": "fast"}}),
    "Channel.encoding.audioBitrate": ({}, {"encoding": {"audioBitrate": 96_000}}),
    "Channel.segmentDuration": ({}, {"segmentDuration": 4}),
    "Channel.liveWindow": ({}, {"liveWindow": 600}),
    "Channel.ingest.protocols": ({}, {"ingest": {"protocols": ["RTMP", "SRT"]}}),
    "Channel.ingest.streamKeySecretRef": ({}, {"ingest": {"streamKeySecretRef": KEY}}),
    "Channel.ingest.srt.passphraseSecretRef": (
        {"ingest": {"protocols": ["SRT"]}},
        {"ingest": {"protocols": ["SRT"], "srt": {"passphraseSecretRef": KEY}}},
    ),
    "Channel.ingest.srt.latencyMs": (
        {"ingest": {"protocols": ["SRT"]}},
        {"ingest": {"protocols": ["SRT"], "srt": {"latencyMs": 800}}},
    ),
    "Channel.ingest.udp.multicastGroup": (
        {"ingest": {"protocols": ["UDP"]}},
        {"ingest": {"protocols": ["UDP"], "udp": {"multicastGroup": "239.1.1.1"}}},
    ),
    "Channel.ingest.allowedIps": ({}, {"ingest": {"allowedIps": ["192.0.2.0/24"]}}),
    "Channel.ingest.redundancy": ({}, {"ingest": {"redundancy": "Relay"}}),
    "Channel.ingest.serviceType": ({}, {"ingest": {"serviceType": "NodePort"}}),
    "Channel.ingest.tls.secretName": (
        {"ingest": {"tls": {"secretName": "ingest-tls"}}},
        {"ingest": {"tls": {"secretName": "other-tls"}}},
    ),
    "Channel.ingest.tls.plaintext": (
        {"ingest": {"tls": {"secretName": "ingest-tls"}}},
        {"ingest": {"tls": {"plaintext": True}}},
    ),
    "Channel.state": ({}, {"state": "Stopped"}),
    "Channel.idleTimeout": ({}, {"idleTimeout": "PT30M"}),
    "Channel.slate.after": ({}, {"slate": {"after": "PT5S"}}),
    "Channel.lowLatency.partDuration": ({"lowLatency": {}}, {"lowLatency": {"partDuration": 0.25}}),
    "Channel.hlsStartOffset": ({}, {"hlsStartOffset": 4}),
    "Channel.preview.allowedIps": ({}, {"preview": {"allowedIps": ["10.0.0.0/8"]}}),
    "StreamingEndpoint.replicas": ({}, {"replicas": 5}),
    "StreamingEndpoint.scaling.minReplicas": ({"scaling": {}}, {"scaling": {"minReplicas": 3}}),
    "StreamingEndpoint.scaling.maxReplicas": ({"scaling": {}}, {"scaling": {"maxReplicas": 20}}),
    "StreamingEndpoint.scaling.targetCpuUtilization": ({"scaling": {}}, {"scaling": {"targetCpuUtilization": 50}}),
    "StreamingEndpoint.cdn.originAuthentication.headerName": (
        {"cdn": {"originAuthentication": {"secretRef": KEY}}},
        {"cdn": {"originAuthentication": {"secretRef": KEY, "headerName": "X-Cdn"}}},
    ),
    "StreamingEndpoint.cdn.originAuthentication.secretRef": (
        {"cdn": {"originAuthentication": {"secretRef": KEY}}},
        {"cdn": {"originAuthentication": {"secretRef": {"name": "other", "key": "value"}}}},
    ),
    "StreamingEndpoint.accessControl.allowedIps": ({}, {"accessControl": {"allowedIps": ["2001:db8::/32"]}}),
    "StreamingEndpoint.accessControl.trustedProxies": ({}, {"accessControl": {"trustedProxies": ["10.0.0.0/8"]}}),
    "StreamingEndpoint.accessControl.signingKeys": (
        {},
        {"accessControl": {"signingKeys": [{"id": "k1", "secretRef": KEY}]}},
    ),
    "StreamingEndpoint.crossSiteOrigins": ({}, {"crossSiteOrigins": ["https://player.example.com"]}),
    "StreamingEndpoint.hostNames": ({}, {"hostNames": ["tv.example.com"]}),
    "StreamingEndpoint.hlsCueTags": ({}, {"hlsCueTags": True}),
    "StreamingEndpoint.contentProtection.masterKeySecretRef": ({}, {"contentProtection": {"masterKeySecretRef": KEY}}),
    "StreamingEndpoint.contentProtection.keyRotationSegments": (
        {"contentProtection": {"masterKeySecretRef": KEY}},
        {"contentProtection": {"keyRotationSegments": 10}},
    ),
    "StreamingEndpoint.contentProtection.cencScheme": (
        {"contentProtection": {"masterKeySecretRef": KEY}},
        {"contentProtection": {"cencScheme": "cbcs"}},
    ),
    "StreamingEndpoint.contentProtection.keyDelivery.jwtSecretRef": (
        {"contentProtection": {"masterKeySecretRef": KEY}},
        {"contentProtection": {"keyDelivery": {"jwtSecretRef": KEY}}},
    ),
    "StreamingEndpoint.contentProtection.keyDelivery.issuer": (
        {"contentProtection": {"masterKeySecretRef": KEY, "keyDelivery": {"jwtSecretRef": KEY}}},
        {"contentProtection": {"keyDelivery": {"issuer": "me"}}},
    ),
    "StreamingEndpoint.contentProtection.keyDelivery.audience": (
        {"contentProtection": {"masterKeySecretRef": KEY, "keyDelivery": {"jwtSecretRef": KEY}}},
        {"contentProtection": {"keyDelivery": {"audience": "tv"}}},
    ),
    "StreamingEndpoint.contentProtection.cpix.url": (
        CPIX_BASE,
        {"contentProtection": {"cpix": {"url": "https://b.example/cpix"}}},
    ),
    "StreamingEndpoint.contentProtection.cpix.drmSystems": (
        CPIX_BASE,
        {"contentProtection": {"cpix": {"drmSystems": ["Widevine", "PlayReady"]}}},
    ),
    "StreamingEndpoint.contentProtection.cpix.credentialsSecretRef": (
        CPIX_BASE,
        {"contentProtection": {"cpix": {"credentialsSecretRef": KEY}}},
    ),
    "Program.channelName": ({}, {"channelName": "sport"}),
    "Program.archiveWindow": ({}, {"archiveWindow": "PT2H"}),
    "Program.manifestName": ({}, {"manifestName": "show"}),
    "Program.locator": ({}, {"locator": "evening"}),
    "Program.state": ({}, {"state": "Stopped"}),
}
# Models below these are values, not groups of fields.
VALUES = (SecretKeyRef,)


def _model_in(annotation) -> type[BaseModel] | None:
    """The model a field holds (itself or optional), None for a value (lists included)."""
    if typing.get_origin(annotation) in (list, dict):
        return None
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel) and not issubclass(candidate, VALUES):
            return candidate
    return None


def spec_fields(model: type[BaseModel], prefix: str) -> list[str]:
    fields = []
    for name, info in model.model_fields.items():
        path = f"{prefix}.{info.alias or name}"
        inner = _model_in(info.annotation)
        fields += spec_fields(inner, path) if inner else [path]
    return fields


RESOURCES = {"Channel": Channel, "StreamingEndpoint": StreamingEndpoint, "Program": Program}


def every_field() -> list[str]:
    return [
        path for kind, model in RESOURCES.items() for path in spec_fields(model.model_fields["spec"].annotation, kind)
    ]


def test_every_field_has_a_variant_or_a_reason():
    assert sorted(every_field()) == sorted([*VARIANTS, *READ_AT_DELETION, *INFORMATIONAL])


def _merge(base: dict, patch: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in patch.items():
        out[key] = (
            _merge(out.get(key, {}), value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


SETTINGS = OperatorSettings(store_url="s3://bucket/kubecast", encoder_image="encoder:1", packager_image="packager:1")
SECRETS = "".join(
    f"---\napiVersion: v1\nkind: Secret\nmetadata: {{name: {name}}}\nstringData: {{value: x}}\n"
    for name in ("some-secret", "other")
)
SECRETS += "".join(
    f"---\napiVersion: v1\nkind: Secret\nmetadata: {{name: {name}}}\ntype: kubernetes.io/tls\n"
    f"stringData: {{tls.crt: {name} certificate, tls.key: {name} key}}\n"
    for name in ("ingest-tls", "other-tls")
)


def _without_spec_hash(children: list[dict]) -> list[dict]:
    out = copy.deepcopy(children)
    for child in out:
        annotations = ((child.get("spec") or {}).get("template") or {}).get("metadata", {}).get("annotations") or {}
        annotations.pop("kubecast.io/spec-hash", None)
    return out


def built(kind: str, spec: dict, tmp_path: Path) -> str:
    """Everything built from a resource of ``kind`` with ``spec`` (and a default Channel
    ``news`` and StreamingEndpoint ``default`` beside it), as one comparable text."""
    channel_spec = spec if kind == "Channel" else {}
    endpoint_spec = spec if kind == "StreamingEndpoint" else {}
    channel = Channel.model_validate({"metadata": {"name": "news"}, "spec": channel_spec})
    endpoint = StreamingEndpoint.model_validate({"metadata": {"name": "default"}, "spec": endpoint_spec})
    parts: dict = {
        "channel children": _without_spec_hash(
            build_channel_children(channel, uid="u1", namespace="media", settings=SETTINGS)
        ),
        "endpoint children": build_endpoint_children(
            endpoint, uid="u2", namespace="media", settings=SETTINGS, channels=[channel]
        ),
    }
    if kind == "Program":
        program = Program.model_validate({"metadata": {"name": "show"}, "spec": {"channelName": "news", **spec}})
        now = datetime(2026, 1, 1, tzinfo=timezone.utc)
        parts["program status"] = aggregate_program(
            program, generation=1, channel=channel, endpoints=[endpoint], namespace="media", previous=None, now=now
        )
        parts["program record"] = ProgramRecord.of(program).to_json().decode()
    text = (
        "".join(
            f"---\n{doc}\n"
            for doc in (
                json.dumps(
                    {
                        "apiVersion": "kubecast.io/v1alpha1",
                        "kind": "Channel",
                        "metadata": {"name": "news"},
                        "spec": channel_spec,
                    }
                ),
                json.dumps(
                    {
                        "apiVersion": "kubecast.io/v1alpha1",
                        "kind": "StreamingEndpoint",
                        "metadata": {"name": "default"},
                        "spec": endpoint_spec,
                    }
                ),
            )
        )
        + SECRETS
    )
    manifests = load_text(text)
    ports = Ports(
        rtmp=1935,
        http=8080,
        rtmp_secondary=1936,
        contribution={("news", "A"): 7001, ("news", "B"): 7002},
        metrics={name: 9000 + i for i, name in enumerate(metrics_names(manifests))},
        ingest_http={"A": 8081, "B": 8082},
        srt={"A": 9000, "B": 9001},
        udp={("news", "A"): 5000, ("news", "B"): 5001},
        rtmps={"A": 1943, "B": 1944},
        ingest_https={"A": 8443, "B": 8444},
    )
    plan = build_plan(manifests=manifests, store_url="/store", run_dir=tmp_path, host="127.0.0.1", ports=ports)
    parts["local plan"] = {
        "argv": [p.argv for p in plan.processes],
        "ingest": plan.ingest_config,
        "endpoint": plan.endpoint_config,
        "encoder": plan.encoder_config,
        "packager": plan.packager_config,
        "files": sorted(plan.key_files),
        "running": [p.name for p in plan.running(frozenset(plan.states.stopped))],
        "states": plan.states,
        "idle": plan.idle_timeouts,
    }
    return json.dumps(parts, sort_keys=True, default=str)


@pytest.mark.parametrize("field", sorted(VARIANTS))
def test_setting_the_field_changes_what_is_built(field, tmp_path):
    kind = field.split(".")[0]
    base, changed = VARIANTS[field]
    assert built(kind, base, tmp_path) != built(kind, _merge(base, changed), tmp_path), (
        f"{field} changes nothing that is built"
    )

"""Every CEL rule of every CRD, evaluated with a CEL implementation (cel-python) the way the API
server does it: after the schema's defaults are applied, at each node that is present and not
null.  The emulator runs none of them, so this is where they are proven: valid objects pass all
rules, each invalid object breaks exactly the rule it is written against (and the models refuse
it too), and every rule is broken by at least one object here."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator

import celpy
import pydantic
import pytest
from celpy import celtypes

from kubecast.api import Channel, ObjectMeta, Program, StreamingEndpoint, load_text
from kubecast.api.channel import NAME_RULES as CHANNEL_NAMES
from kubecast.api.endpoint import NAME_RULES as ENDPOINT_NAMES
from kubecast.operator.builders import build_channel_children, build_endpoint_children
from kubecast.operator.crds import all_crds
from kubecast.operator.settings import OperatorSettings

CRDS = {crd["spec"]["names"]["kind"]: crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"] for crd in all_crds()}
ENV = celpy.Environment()


def _is_sorted(values) -> celtypes.BoolType:
    """Kubernetes' CEL list library ``isSorted()``, which cel-python does not have."""
    items = list(values)
    return celtypes.BoolType(all(a <= b for a, b in zip(items, items[1:])))


FUNCTIONS = {"isSorted": _is_sorted}


def rules(schema: dict, path: str = "") -> Iterator[tuple[str, dict]]:
    """(schema path, rule) of every x-kubernetes-validations entry under ``schema``."""
    for rule in schema.get("x-kubernetes-validations", []):
        yield path or ".", rule
    for name, child in schema.get("properties", {}).items():
        yield from rules(child, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from rules(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from rules(schema["additionalProperties"], f"{path}{{}}")


ALL_RULES = [(kind, path, rule["rule"]) for kind, schema in CRDS.items() for path, rule in rules(schema)]


def apply_defaults(schema: dict, value):
    """Structural defaulting: a missing property with a default gets it, recursively."""
    if isinstance(value, dict) and "properties" in schema:
        for name, child in schema["properties"].items():
            if name not in value and "default" in child:
                value[name] = copy.deepcopy(child["default"])
            if name in value:
                value[name] = apply_defaults(child, value[name])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        value = [apply_defaults(schema["items"], item) for item in value]
    return value


def to_cel(schema: dict, value):
    """JSON -> CEL by the schema's types, as the API server converts: a ``number`` is a double
    even when written as 4, an ``integer`` an int."""
    if value is None:
        return None
    kind = schema.get("type")
    if kind == "number":
        return celtypes.DoubleType(value)
    if kind == "integer":
        return celtypes.IntType(value)
    if kind == "object" and "properties" in schema:
        return celtypes.MapType(
            {celtypes.StringType(k): to_cel(schema["properties"].get(k, {}), v) for k, v in value.items()}
        )
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return celtypes.MapType(
            {celtypes.StringType(k): to_cel(schema["additionalProperties"], v) for k, v in value.items()}
        )
    if kind == "array":
        return celtypes.ListType([to_cel(schema.get("items", {}), v) for v in value])
    return celpy.json_to_cel(value)


def failures(kind: str, obj: dict) -> list[tuple[str, str]]:
    """(schema path, message) of every rule ``obj`` breaks, as the API server would evaluate them."""
    schema = CRDS[kind]
    obj = apply_defaults(schema, copy.deepcopy(obj))
    broken = []

    def visit(node: dict, value, path: str):
        if value is None:
            return
        for rule in node.get("x-kubernetes-validations", []):
            program = ENV.program(ENV.compile(rule["rule"]), functions=FUNCTIONS)
            result = program.evaluate({"self": to_cel(node, value)})
            if isinstance(result, Exception) or not isinstance(result, celtypes.BoolType):
                raise AssertionError(f"{kind} {path}: {rule['rule']} did not evaluate to a bool: {result!r}")
            if not result:
                broken.append((path or ".", rule["message"]))
        if isinstance(value, dict):
            for name, child in node.get("properties", {}).items():
                visit(child, value.get(name), f"{path}.{name}")
        if isinstance(value, list) and isinstance(node.get("items"), dict):
            for item in value:
                visit(node["items"], item, f"{path}[]")

    visit(schema, obj, "")
    return broken


def channel(name="news", **spec) -> dict:
    return {"apiVersion": "kubecast.io/v1alpha1", "kind": "Channel", "metadata": {"name": name}, "spec": spec}


def endpoint(name="origin", **spec) -> dict:
    return {"apiVersion": "kubecast.io/v1alpha1", "kind": "StreamingEndpoint", "metadata": {"name": name}, "spec": spec}


def program(name="match", **spec) -> dict:
    return {
        "apiVersion": "kubecast.io/v1alpha1",
        "kind": "Program",
        "metadata": {"name": name},
        "spec": {"channelName": "news", **spec},
    }


LADDER = [
    {"name": "hd", "width": 1280, "height": 720, "bitrate": 3_000_000},
    {"name": "sd", "width": 640, "height": 360, "bitrate": 800_000},
]
VALID = [
    channel(),
    channel("a" * 48),
    channel("n1-news"),
    channel(encoding={"preset": "Custom", "renditions": LADDER}),
    channel(encoding={"preset": "None"}),
    channel(segmentDuration=4, liveWindow=12),
    channel(slate={"after": "PT5S"}),
    channel(slate={}, encoding={"preset": "Custom", "renditions": LADDER}),
    channel(lowLatency={}),
    channel(lowLatency={"partDuration": 1.0}),
    channel(hlsStartOffset=2),
    channel(hlsStartOffset=4, segmentDuration=1),
    channel(ingest={"protocols": ["SRT", "CMAF"], "tls": {"secretName": "ingest-tls", "plaintext": True}}),
    endpoint(),
    endpoint("e" * 63),
    endpoint(scaling={"minReplicas": 3, "maxReplicas": 3}),
    endpoint(replicas=2),
    program(),
    program("1st-half"),
    program("p" * 63),
    endpoint(
        contentProtection={
            "masterKeySecretRef": {"name": "k", "key": "m"},
            "cencScheme": "cbcs",
            "cpix": {"url": "https://keys.example/cpix", "drmSystems": ["Widevine", "PlayReady", "FairPlay"]},
        }
    ),
]
CPIX = {"url": "https://keys.example/cpix", "drmSystems": ["FairPlay"]}
# (object, the message of the one rule it breaks)
INVALID = [
    (channel("a" * 49), CHANNEL_NAMES.cel()[0]["message"]),
    (channel("News"), CHANNEL_NAMES.cel()[1]["message"]),
    (channel("news-"), CHANNEL_NAMES.cel()[1]["message"]),
    (channel("1news"), CHANNEL_NAMES.cel()[2]["message"]),
    (channel(encoding={"preset": "Custom"}), "preset Custom needs at least one entry in renditions"),
    (channel(encoding={"preset": "Default720p", "renditions": LADDER}), "renditions are only read with preset Custom"),
    (
        channel(encoding={"preset": "Custom", "renditions": LADDER[::-1]}),
        "renditions must be listed in descending bitrate",
    ),
    (
        channel(encoding={"preset": "Custom", "renditions": [LADDER[0], dict(LADDER[1], name="hd")]}),
        "rendition names and bitrates must be unique",
    ),
    (channel(segmentDuration=6, liveWindow=12), "liveWindow must hold at least three segments"),
    (channel(slate={}, encoding={"preset": "None"}), "a slate needs live encoding (encoding.preset other than None)"),
    (
        channel(lowLatency={}, encoding={"preset": "None"}),
        "lowLatency needs live encoding (encoding.preset other than None)",
    ),
    (
        channel(lowLatency={"partDuration": 1.0}, segmentDuration=1.5, liveWindow=6),
        "lowLatency.partDuration must be at most half the segmentDuration",
    ),
    (
        channel(hlsStartOffset=3, segmentDuration=4),
        "hlsStartOffset must be at least one segmentDuration",
    ),
    (
        channel(ingest={"protocols": ["SRT"], "tls": {"secretName": "ingest-tls"}}),
        "tls needs RTMP, FragmentedMP4 or CMAF among the protocols",
    ),
    (endpoint("e" * 64), ENDPOINT_NAMES.cel()[0]["message"]),
    (endpoint("Origin"), ENDPOINT_NAMES.cel()[1]["message"]),
    (endpoint("9origin"), ENDPOINT_NAMES.cel()[2]["message"]),
    (endpoint(scaling={"minReplicas": 4, "maxReplicas": 3}), "maxReplicas must be at least minReplicas"),
    (
        endpoint(
            accessControl={
                "signingKeys": [
                    {"id": "a", "secretRef": {"name": "k", "key": "a"}},
                    {"id": "a", "secretRef": {"name": "k", "key": "b"}},
                ]
            }
        ),
        "signing key ids must be unique",
    ),
    (
        endpoint(contentProtection={"masterKeySecretRef": {"name": "k", "key": "m"}, "cpix": CPIX}),
        "FairPlay needs cencScheme cbcs",
    ),
    (
        endpoint(
            contentProtection={
                "masterKeySecretRef": {"name": "k", "key": "m"},
                "cencScheme": "cbcs",
                "cpix": dict(CPIX, drmSystems=["Widevine", "Widevine"]),
            }
        ),
        "drmSystems must not repeat",
    ),
    (program("p" * 64), "a Program name may have at most 63 characters: it is a URL path element and a storage key"),
    (
        program("half_time"),
        "a Program name must be lower-case letters, digits and '-', starting and ending with a letter or digit",
    ),
]


@pytest.mark.parametrize("obj", VALID, ids=lambda o: f"{o['kind']}-{o['metadata']['name'][:12]}")
def test_valid_objects_pass_every_rule_and_the_model(obj):
    assert failures(obj["kind"], obj) == []
    load_text_of(obj)


@pytest.mark.parametrize(("obj", "message"), INVALID, ids=[f"{o['kind']}-{i}" for i, (o, _) in enumerate(INVALID)])
def test_invalid_objects_break_exactly_their_rule(obj, message):
    assert [m for _, m in failures(obj["kind"], obj)] == [message]
    with pytest.raises(pydantic.ValidationError):  # the model refuses it too (kubecast up), in its own words
        load_text_of(obj)


def test_every_rule_of_every_crd_is_broken_by_some_object_here():
    broken = {(obj["kind"], message) for obj, message in INVALID}
    messages = {(kind, rule["message"]) for kind, schema in CRDS.items() for _, rule in rules(schema)}
    assert len(ALL_RULES) == len(messages) >= 14
    assert messages == broken


def load_text_of(obj: dict):
    """The model of the object's kind, as ``kubecast up`` reads it."""
    return {"Channel": Channel, "Program": Program, "StreamingEndpoint": StreamingEndpoint}[obj["kind"]].model_validate(
        obj
    )


# What Kubernetes requires of each child's name (apimachinery's validation): Services are
# RFC 1035 labels, every other kind here an RFC 1123 subdomain; label values at most 63.
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def invalid_child_names(children: list[dict]) -> list[str]:
    bad = []
    for child in children:
        name = child["metadata"]["name"]
        if child["kind"] == "Service":
            if not (DNS1035.match(name) and len(name) <= 63):
                bad.append(f"Service {name}")
        elif not (DNS1123_SUBDOMAIN.match(name) and len(name) <= 253):
            bad.append(f"{child['kind']} {name}")
        for value in child["metadata"]["labels"].values():
            if not (LABEL_VALUE.match(value) and len(value) <= 63):
                bad.append(f"label {value} of {name}")
    return bad


def all_children(kind: str, name: str) -> list[dict]:
    """The children of the shape with the longest names (relay: the contribution Services).
    Built with model_construct: the models would refuse the names under test."""
    settings = OperatorSettings(store_url="s3://media/live")
    meta = ObjectMeta.model_construct(name=name, namespace="media")
    if kind == "Channel":
        resource = Channel.model_construct(metadata=meta, spec=load_text(RELAY).channels["news"].spec)
        return build_channel_children(resource, uid="uid", namespace="media", settings=settings)
    resource = StreamingEndpoint.model_construct(metadata=meta, spec=load_text(SCALED).endpoints["origin"].spec)
    return build_endpoint_children(resource, uid="uid", namespace="media", settings=settings)


RELAY = """
apiVersion: kubecast.io/v1alpha1
kind: Channel
metadata: {name: news}
spec: {ingest: {redundancy: Relay, protocols: [RTMP, SRT, CMAF, UDP]}}
"""
SCALED = """
apiVersion: kubecast.io/v1alpha1
kind: StreamingEndpoint
metadata: {name: origin}
spec: {scaling: {minReplicas: 2, maxReplicas: 4}, hostNames: [live.example.com]}
"""


@pytest.mark.parametrize(("kind", "rules_"), [("Channel", CHANNEL_NAMES), ("StreamingEndpoint", ENDPOINT_NAMES)])
def test_the_name_limit_is_exactly_what_the_children_allow(kind, rules_):
    """At the limit every child name is valid; one character more, or a digit first, and some
    child would be refused by the API server: so the CRD refuses the parent instead."""
    make = channel if kind == "Channel" else endpoint
    longest = "x" * rules_.max_length
    assert invalid_child_names(all_children(kind, longest)) == []
    assert failures(kind, make(longest)) == []
    too_long = longest + "x"
    assert invalid_child_names(all_children(kind, too_long)), "the limit could be higher"
    assert [m for _, m in failures(kind, make(too_long))] == [rules_.cel()[0]["message"]]
    digit = "1" + longest[1:]
    assert invalid_child_names(all_children(kind, digit))
    assert [m for _, m in failures(kind, make(digit))] == [rules_.cel()[2]["message"]]
    if kind == "Channel":  # the model says the same (for a StreamingEndpoint, ObjectMeta's 63 speaks first)
        for name, rule in ((too_long, 0), (digit, 2)):
            with pytest.raises(pydantic.ValidationError, match=re.escape(rules_.cel()[rule]["message"])):
                load_text_of(make(name))

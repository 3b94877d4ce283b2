"""The CRDs: generated from the models, up to date, structural, and accepting what the models accept."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from kubecast.operator.crds import all_crds, render

ROOT = Path(__file__).parents[2]


def test_crds_folder_is_up_to_date():
    assert (ROOT / "crds" / "kubecast.io.yaml").read_text() == render(), "run: kubecast crds > crds/kubecast.io.yaml"


def walk(node, path="$"):
    yield path, node
    for key in ("properties",):
        for name, child in node.get(key, {}).items():
            yield from walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("crd", all_crds(), ids=lambda crd: crd["spec"]["names"]["kind"])
def test_schemas_are_structural(crd):
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in walk(schema):
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), f"{path} has no type"
        for forbidden in ("$ref", "anyOf", "oneOf", "allOf", "title", "const", "$defs"):
            assert forbidden not in node, f"{path} has {forbidden}"
        assert not ("properties" in node and "additionalProperties" in node), f"{path}"


@pytest.mark.parametrize("crd", all_crds(), ids=lambda crd: crd["spec"]["names"]["kind"])
def test_crds_are_valid_kubernetes_objects(crd):
    kubernetes_validate.validate(crd, "1.30", strict=True)
    names = crd["spec"]["names"]
    assert "kubecast" in names["categories"] and names["shortNames"]
    version = crd["spec"]["versions"][0]
    scale = {
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        }
    }
    assert version["subresources"] == {"status": {}, **(scale if names["kind"] == "StreamingEndpoint" else {})}
    assert [c["name"] for c in version["additionalPrinterColumns"]][-1] == "Age"


def to_jsonschema(node):
    """OpenAPI's nullable -> JSON Schema, to validate documents against the CRD schema here."""
    node = copy.deepcopy(node)
    if node.pop("nullable", False):
        node["type"] = [node["type"], "null"]
        if "enum" in node:
            node["enum"] = [*node["enum"], None]
    for key in ("properties",):
        for name in node.get(key, {}):
            node[key][name] = to_jsonschema(node[key][name])
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            node[key] = to_jsonschema(node[key])
    return node


def spec_schema(kind: str):
    crd = next(c for c in all_crds() if c["spec"]["names"]["kind"] == kind)
    return to_jsonschema(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"])


def test_examples_validate_against_the_crd_schema():
    for doc in yaml.safe_load_all((ROOT / "examples" / "channel.yaml").read_text()):
        if doc["kind"] == "Channel":
            jsonschema.validate(doc["spec"], spec_schema("Channel"))


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"segmentDuration": 12}, "segmentDuration"),
        ({"encoding": {"preset": "Default4k"}}, "preset"),
        (
            {
                "encoding": {
                    "preset": "Custom",
                    "renditions": [{"name": "a", "width": 641, "height": 360, "bitrate": 800000}],
                }
            },
            "width",
        ),
    ],
)
def test_schema_refuses_what_the_models_refuse(spec, field):
    with pytest.raises(jsonschema.ValidationError) as raised:
        jsonschema.validate(spec, spec_schema("Channel"))
    assert (
        field in str(raised.value.path)
        or field in raised.value.message
        or field in str(list(raised.value.absolute_path))
    )


def test_cel_rules_travel_with_the_models():
    schema = spec_schema("Channel")
    rules = [r["rule"] for r in schema["properties"]["encoding"]["x-kubernetes-validations"]]
    assert any("isSorted" in rule for rule in rules)
    assert schema["x-kubernetes-validations"][0]["rule"] == "self.liveWindow >= 3.0 * self.segmentDuration"
    conditions = next(c for c in all_crds() if c["spec"]["names"]["kind"] == "Channel")["spec"]["versions"][0][
        "schema"
    ]["openAPIV3Schema"]["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map" and conditions["x-kubernetes-list-map-keys"] == ["type"]


def test_endpoint_scale_subresource_paths_name_fields_the_operator_fills():
    """/scale reads spec.replicas (always set: it has a default), status.replicas and
    status.selector; the operator writes both status fields and the builders honour a
    `kubectl scale` (a new spec.replicas) when no autoscaler owns the Deployment."""
    from kubecast.api import load_text
    from kubecast.operator.builders import build_endpoint_children
    from kubecast.operator.rollout import DeploymentState
    from kubecast.operator.settings import OperatorSettings
    from kubecast.operator.status import aggregate_endpoint

    crd = next(c for c in all_crds() if c["spec"]["names"]["kind"] == "StreamingEndpoint")
    version = crd["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]["properties"]
    scale = version["subresources"]["scale"]

    def field(path):
        node = {"properties": schema}
        for part in path.strip(".").split("."):
            node = node["properties"][part]
        return node

    assert field(scale["specReplicasPath"])["type"] == "integer" and field(scale["specReplicasPath"])["default"] == 2
    assert (
        field(scale["statusReplicasPath"])["type"] == "integer"
        and field(scale["labelSelectorPath"])["type"] == "string"
    )

    endpoint = load_text(
        "apiVersion: kubecast.io/v1alpha1\nkind: StreamingEndpoint\nmetadata: {name: origin}\nspec: {replicas: 5}\n"
    ).endpoints["origin"]
    deployment = build_endpoint_children(endpoint, uid="u", namespace="media", settings=OperatorSettings())[1]
    assert deployment["spec"]["replicas"] == 5
    status = aggregate_endpoint(
        endpoint,
        generation=1,
        deployment=DeploymentState.of({"status": {"replicas": 5, "readyReplicas": 4}}),
        namespace="media",
        previous=None,
        now=datetime(2026, 1, 1, tzinfo=timezone.utc),
    )
    assert status["replicas"] == 5
    # The selector an autoscaler reads selects exactly the Deployment's pods.
    parsed = dict(term.split("=") for term in status["selector"].split(","))
    assert parsed == deployment["spec"]["selector"]["matchLabels"]
    assert all(deployment["spec"]["template"]["metadata"]["labels"][k] == v for k, v in parsed.items())

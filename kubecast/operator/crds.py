"""CustomResourceDefinitions generated from the pydantic models: ``kubecast crds``.

The models in ``kubecast.api`` are the single source of the schemas, so the API server and
``kubecast up`` refuse the same documents.  Pydantic's JSON Schema is turned into a
*structural* OpenAPI v3 schema as Kubernetes requires: references inlined, ``Optional[X]``
as ``nullable``, no ``additionalProperties: false`` beside ``properties`` (pruning does
that job), CEL rules (``x-kubernetes-validations``) carried over from the models.
Pure: no kopf, no kubernetes client.
"""

from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel

from kubecast.api import GROUP, VERSION, Channel, Program, StreamingEndpoint
from kubecast.api.status import ChannelStatus, ProgramStatus, StreamingEndpointStatus

_DROP = {"title", "$defs", "additionalProperties", "discriminator", "examples"}


def _structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        target = _structural(defs[node["$ref"].split("/")[-1]], defs)
        extra = {k: v for k, v in node.items() if k != "$ref" and k not in _DROP}
        return {**target, **{k: _structural_value(v, defs) for k, v in extra.items()}}
    if "anyOf" in node:
        branches = [b for b in node["anyOf"] if b.get("type") != "null"]
        nullable = len(branches) < len(node["anyOf"])
        if len(branches) != 1:
            raise ValueError(f"cannot express a union of {len(branches)} types structurally: {node}")
        merged = _structural(branches[0], defs)
        merged.update({k: _structural_value(v, defs) for k, v in node.items() if k not in ("anyOf", *_DROP)})
        if nullable:
            merged["nullable"] = True
        return merged
    if "allOf" in node and len(node["allOf"]) == 1:
        merged = _structural(node["allOf"][0], defs)
        merged.update({k: _structural_value(v, defs) for k, v in node.items() if k not in ("allOf", *_DROP)})
        return merged
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "const":
            out["enum"] = [value]
            continue
        out[key] = _structural_value(value, defs)
    if "properties" in node:
        out["type"] = "object"
        out["properties"] = {name: _structural(prop, defs) for name, prop in node["properties"].items()}
    elif node.get("type") == "object" and isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = _structural(node["additionalProperties"], defs)
    elif node.get("type") == "object" and "additionalProperties" not in node:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "items" in node:
        out["items"] = _structural(node["items"], defs)
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    return out


def _structural_value(value: Any, defs: dict[str, Any]) -> Any:
    return copy.deepcopy(value)


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    return _structural(schema, schema.get("$defs", {}))


@dataclass(frozen=True)
class Kind:
    model: type[BaseModel]
    status: type[BaseModel]
    plural: str
    short_names: tuple[str, ...]
    columns: tuple[dict[str, Any], ...]
    spec_required: bool
    scale: dict[str, Any] | None = None


READY = {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'}
STATUS = {"name": "Status", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].reason'}
AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
# A Program's spec.state says what was asked; these say what the packager has recorded.
RECORDING = {"name": "Recording", "type": "string", "jsonPath": ".status.recording.state"}
RECORDED = {
    "name": "Recorded",
    "type": "number",
    "jsonPath": ".status.recording.durationSeconds",
    "description": "Seconds of media recorded.",
}

KINDS = (
    Kind(
        Channel,
        ChannelStatus,
        "channels",
        ("ch",),
        (
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            READY,
            STATUS,
            {"name": "Ingest", "type": "string", "jsonPath": ".status.ingest.primary"},
            AGE,
        ),
        False,
    ),
    Kind(
        Program,
        ProgramStatus,
        "programs",
        ("prog",),
        (
            {"name": "Channel", "type": "string", "jsonPath": ".spec.channelName"},
            READY,
            {"name": "State", "type": "string", "jsonPath": ".spec.state"},
            RECORDING,
            RECORDED,
            AGE,
        ),
        True,
    ),
    Kind(
        StreamingEndpoint,
        StreamingEndpointStatus,
        "streamingendpoints",
        ("se",),
        (
            READY,
            {"name": "Replicas", "type": "integer", "jsonPath": ".status.readyReplicas"},
            {"name": "Host", "type": "string", "jsonPath": ".status.hostName"},
            AGE,
        ),
        False,
        # `kubectl scale se/NAME --replicas=N` and autoscalers that speak /scale (HPA, KEDA).
        scale={
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    ),
)


def crd(kind: Kind) -> dict[str, Any]:
    name = kind.model.__name__
    spec_field = kind.model.model_fields["spec"]
    spec_model = spec_field.annotation
    assert isinstance(spec_model, type) and issubclass(spec_model, BaseModel)  # every kind's spec is a model
    spec = openapi_schema(spec_model)
    spec["description"] = (kind.model.__doc__ or name).strip().splitlines()[0]
    root = {
        "type": "object",
        "description": spec["description"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": openapi_schema(kind.status),
        },
    }
    if kind.spec_required:
        root["required"] = ["spec"]
    # Rules on the whole object (the name rules, which read metadata.name) sit on the model itself.
    rules = kind.model.model_json_schema(by_alias=True).get("x-kubernetes-validations")
    if rules:
        root["x-kubernetes-validations"] = rules
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{kind.plural}.{GROUP}", "labels": {"app.kubernetes.io/part-of": "kubecast"}},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": name,
                "listKind": f"{name}List",
                "plural": kind.plural,
                "singular": name.lower(),
                "shortNames": list(kind.short_names),
                "categories": ["kubecast"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}, **({"scale": dict(kind.scale)} if kind.scale else {})},
                    "additionalPrinterColumns": [dict(c) for c in kind.columns],
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def all_crds() -> list[dict[str, Any]]:
    return [crd(kind) for kind in KINDS]


def render() -> str:
    header = "# Generated by `kubecast crds` from the models in kubecast/api: do not edit by hand.\n"
    return header + yaml.safe_dump_all(all_crds(), sort_keys=False, width=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kubecast crds", description="Print the CRDs generated from the resource models."
    )
    parser.parse_args(argv)
    sys.stdout.write(render())
    return 0

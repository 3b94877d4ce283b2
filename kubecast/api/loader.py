"""Read Channel / Program / StreamingEndpoint (and Secret) documents from YAML.

Errors name the document and the field, e.g. ``channel.yaml, document 1 (Channel demo):
spec.segmentDuration: Input should be less than or equal to 10``.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from .channel import Channel
from .common import API_VERSION
from .endpoint import StreamingEndpoint
from .program import Program

KINDS: dict[str, type[Channel] | type[Program] | type[StreamingEndpoint]] = {
    "Channel": Channel,
    "Program": Program,
    "StreamingEndpoint": StreamingEndpoint,
}


class ManifestError(ValueError):
    """A document that is not a valid kubecast resource; the message names where and what."""


@dataclass
class Manifests:
    channels: dict[str, Channel] = field(default_factory=dict)
    programs: dict[str, Program] = field(default_factory=dict)
    endpoints: dict[str, StreamingEndpoint] = field(default_factory=dict)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)

    def secret_value(self, name: str, key: str) -> str:
        try:
            return self.secrets[name][key]
        except KeyError:
            raise ManifestError(f"Secret {name!r} with key {key!r} is not among the documents") from None


def _location(error: ErrorDetails) -> str:
    return ".".join(str(part) for part in error["loc"]) or "(document)"


def parse_document(doc: Any, where: str) -> Channel | Program | StreamingEndpoint:
    if not isinstance(doc, dict):
        raise ManifestError(f"{where}: expected a mapping, got {type(doc).__name__}")
    kind = doc.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise ManifestError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if doc.get("apiVersion") != API_VERSION:
        raise ManifestError(f"{where}: apiVersion must be {API_VERSION}, got {doc.get('apiVersion')!r}")
    metadata = doc.get("metadata")
    name = metadata.get("name", "?") if isinstance(metadata, dict) else "?"  # the model says what is wrong with it
    try:
        return KINDS[kind].model_validate(doc)
    except ValidationError as error:
        problems = "; ".join(f"{_location(e)}: {e['msg']}" for e in error.errors(include_url=False))
        raise ManifestError(f"{where} ({kind} {name}): {problems}") from None


def _mapping(doc: dict[str, Any], field: str, where: str) -> dict[Any, Any]:
    value = doc.get(field) or {}
    if not isinstance(value, dict):
        raise ManifestError(f"{where}: Secret {field} must be a mapping, got {type(value).__name__}")
    return value


def _secret_data(doc: dict[str, Any], where: str) -> dict[str, str]:
    values = {str(k): str(v) for k, v in _mapping(doc, "stringData", where).items()}
    for key, encoded in _mapping(doc, "data", where).items():
        try:
            decoded = base64.b64decode(encoded, validate=True).decode() if isinstance(encoded, str) else None
        except (ValueError, UnicodeDecodeError):
            decoded = None
        if decoded is None:
            raise ManifestError(f"{where}: Secret data.{key} is not valid base64 text")
        values[str(key)] = decoded
    return values


def load_text(text: str, source: str = "<manifests>") -> Manifests:
    manifests = Manifests()
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as error:
        raise ManifestError(f"{source}: not valid YAML: {error}") from None
    for index, doc in enumerate(docs, start=1):
        if doc is None:
            continue
        where = f"{source}, document {index}"
        if isinstance(doc, dict) and doc.get("kind") == "Secret" and doc.get("apiVersion") == "v1":
            name = _mapping(doc, "metadata", where).get("name")
            if not name or not isinstance(name, str):
                raise ManifestError(f"{where}: Secret without metadata.name")
            manifests.secrets[name] = _secret_data(doc, where)
            continue
        resource = parse_document(doc, where)
        targets: dict[type, dict[str, Any]] = {
            Channel: manifests.channels,
            Program: manifests.programs,
            StreamingEndpoint: manifests.endpoints,
        }
        target = targets[type(resource)]
        if resource.name in target:
            raise ManifestError(f"{where}: a {resource.kind} named {resource.name!r} is defined twice")
        target[resource.name] = resource
    for program in manifests.programs.values():
        if program.spec.channel_name not in manifests.channels:
            raise ManifestError(
                f"Program {program.name}: spec.channelName {program.spec.channel_name!r} names no Channel"
            )
    return manifests


def load_paths(paths: Sequence[str | Path]) -> Manifests:
    merged = Manifests()
    for path in paths:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as error:
            raise ManifestError(f"{path}: {error.strerror}") from None
        part = load_text(text, str(path))
        for attr in ("channels", "programs", "endpoints", "secrets"):
            getattr(merged, attr).update(getattr(part, attr))
    return merged


def load_channel(paths: Sequence[str | Path], name: str) -> Channel:
    """The named Channel from manifest files; ManifestError (naming the files) when absent."""
    channels = load_paths(paths).channels
    if name not in channels:
        raise ManifestError(f"no Channel named {name!r} in {', '.join(str(p) for p in paths)}")
    return channels[name]

"""Pydantic models of the kubecast resources: the single source of the CRD schemas."""

from .channel import (
    Channel,
    ChannelSpec,
    Encoding,
    EncodingPreset,
    Ingest,
    IngestProtocol,
    IngestTls,
    Preview,
    RedundancyMode,
)
from .common import API_VERSION, GROUP, VERSION, ObjectMeta, SecretKeyRef
from .endpoint import StreamingEndpoint, StreamingEndpointSpec
from .lifecycle import ChannelState, DeletionPolicy, stopped_refusal
from .loader import ManifestError, Manifests, load_channel, load_paths, load_text
from .presets import PRESETS
from .program import Program, ProgramSpec, ProgramState, parse_iso_duration
from .renditions import H264Profile, Rendition

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "Channel",
    "ChannelSpec",
    "ChannelState",
    "DeletionPolicy",
    "Encoding",
    "EncodingPreset",
    "H264Profile",
    "Ingest",
    "IngestProtocol",
    "IngestTls",
    "ManifestError",
    "Manifests",
    "ObjectMeta",
    "PRESETS",
    "Preview",
    "Program",
    "ProgramSpec",
    "ProgramState",
    "RedundancyMode",
    "Rendition",
    "SecretKeyRef",
    "StreamingEndpoint",
    "StreamingEndpointSpec",
    "load_channel",
    "load_paths",
    "load_text",
    "parse_iso_duration",
    "stopped_refusal",
]

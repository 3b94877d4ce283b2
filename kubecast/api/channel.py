"""The Channel resource: one live contribution in, one ABR set out."""

from __future__ import annotations

import enum
from typing import Literal

from pydantic import ConfigDict, Field, JsonValue, field_validator, model_validator

from .common import (
    API_VERSION,
    Cidr,
    Name,
    NamedResource,
    NameRules,
    ObjectMeta,
    SecretKeyRef,
    WireModel,
    whole_milliseconds,
)
from .lifecycle import ISO_DURATION, ChannelState, DeletionPolicy, Slate
from .low_latency import LowLatency
from .presets import PRESETS
from .program import parse_iso_duration
from .renditions import Rendition

# tests/operator checks the 48 against the names the builders make.
NAME_RULES = NameRules(
    "Channel",
    48,
    first_letter=True,
    why="the longest child name, <name>-contribution-a, is a Service name, which Kubernetes limits to 63",
)


class IngestProtocol(str, enum.Enum):
    RTMP = "RTMP"
    FRAGMENTED_MP4 = "FragmentedMP4"  # Smooth Streaming ingest (HTTP POST), as Azure Media Services named it
    CMAF = "CMAF"  # DASH-IF live media ingest, interface 1 (HTTP POST/PUT of CMAF segments)
    RTP = "RTP"  # MPEG-TS in RTP (payload type 33) over UDP
    UDP = "UDP"  # plain MPEG-TS over UDP
    SRT = "SRT"  # MPEG-TS over SRT, caller -> our listener


class RedundancyMode(str, enum.Enum):
    DUAL_PUSH = "DualPush"
    RELAY = "Relay"


class ServiceType(str, enum.Enum):
    LOAD_BALANCER = "LoadBalancer"
    NODE_PORT = "NodePort"
    CLUSTER_IP = "ClusterIP"


class EncodingPreset(str, enum.Enum):
    NONE = "None"  # pass-through: the contribution is published unchanged
    DEFAULT_720P = "Default720p"
    DEFAULT_1080P = "Default1080p"
    CUSTOM = "Custom"  # the ladder is spec.encoding.renditions


class Encoding(WireModel):
    # The same rules as the validators below, for the API server (CEL), so kubectl refuses
    # what `kubecast up` refuses.
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.preset != 'Custom' || (has(self.renditions) && size(self.renditions) > 0)",
                    "message": "preset Custom needs at least one entry in renditions",
                },
                {
                    "rule": "self.preset == 'Custom' || !has(self.renditions) || size(self.renditions) == 0",
                    "message": "renditions are only read with preset Custom",
                },
                {
                    "rule": "!has(self.renditions) || self.renditions.map(r, -r.bitrate).isSorted()",
                    "message": "renditions must be listed in descending bitrate",
                },
                {
                    "rule": "!has(self.renditions) || self.renditions.all(a, self.renditions.exists_one(b, b.bitrate "
                    "== a.bitrate) && self.renditions.exists_one(b, b.name == a.name))",
                    "message": "rendition names and bitrates must be unique",
                },
            ]
        }
    )

    preset: EncodingPreset = Field(
        default=EncodingPreset.DEFAULT_720P,
        description="`None` passes the contribution through unchanged; `Default720p` / `Default1080p` are the "
        "Azure Media Services ladders; `Custom` encodes `renditions`.",
    )
    renditions: list[Rendition] = Field(
        default_factory=list,
        max_length=12,
        description="The ladder for preset `Custom`, in descending bitrate.",
    )
    x264_preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"] | None = Field(
        default=None,
        description="libx264 speed preset; unset picks the fastest that keeps the ladder in real time on 2 cores.",
    )
    audio_bitrate: int = Field(default=128_000, ge=32_000, le=512_000, description="AAC-LC bitrate in bit/s.")

    @model_validator(mode="after")
    def _ladder_matches_preset(self) -> "Encoding":
        if self.preset is EncodingPreset.CUSTOM and not self.renditions:
            raise ValueError("preset Custom needs at least one entry in renditions")
        if self.preset is not EncodingPreset.CUSTOM and self.renditions:
            raise ValueError(f"renditions are only read with preset Custom, not {self.preset.value}")
        names = [r.name for r in self.renditions]
        if len(set(names)) != len(names):
            raise ValueError("rendition names must be unique")
        bitrates = [r.bitrate for r in self.renditions]
        if any(later >= earlier for earlier, later in zip(bitrates, bitrates[1:])):
            raise ValueError("renditions must be listed in strictly descending bitrate")
        return self

    def ladder(self) -> list[Rendition]:
        """The renditions to encode; empty for pass-through."""
        if self.preset is EncodingPreset.NONE:
            return []
        if self.preset is EncodingPreset.CUSTOM:
            return list(self.renditions)
        return list(PRESETS[self.preset.value])

    @property
    def passthrough(self) -> bool:
        return self.preset is EncodingPreset.NONE


class SrtIngest(WireModel):
    passphrase_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding the SRT passphrase (10 to 79 characters); unset: unencrypted, any caller with "
        "the stream id.",
    )
    latency_ms: int = Field(default=120, ge=20, le=8000, description="SRT receive latency in milliseconds.")


class UdpIngest(WireModel):
    multicast_group: str | None = Field(
        default=None,
        pattern=r"^(2(2[4-9]|3[0-9])\.[0-9.]+|[fF][fF][0-9a-fA-F:]+)$",
        description="Receive MPEG-TS / RTP from this multicast group instead of unicast.",
    )


# The keys of a Secret of type kubernetes.io/tls (what `kubectl create secret tls` writes).
TLS_CERTIFICATE_KEY, TLS_PRIVATE_KEY_KEY = "tls.crt", "tls.key"
TLS_PROTOCOLS = frozenset({"RTMP", "FragmentedMP4", "CMAF"})  # the TCP ones: RTMPS, and HTTPS push


class IngestTls(WireModel):
    """Contribution over TLS: RTMPS, and HTTPS for Smooth and CMAF push."""

    secret_name: Name = Field(
        description="A Secret of type kubernetes.io/tls (keys tls.crt: the certificate chain, tls.key: its private "
        "key) in the Channel's namespace; locally a Secret document in the manifests, or the files given to "
        "`kubecast up --tls-cert --tls-key`.",
    )
    plaintext: bool = Field(
        default=False,
        description="Also accept plain RTMP and HTTP push (for publishers that cannot do TLS); false: TLS only, a "
        "plain publisher is refused.",
    )


class Ingest(WireModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.tls) || self.protocols.exists(p, p in ['RTMP', 'FragmentedMP4', 'CMAF'])",
                    "message": "tls needs RTMP, FragmentedMP4 or CMAF among the protocols",
                },
            ]
        }
    )

    protocols: list[IngestProtocol] = Field(
        default_factory=lambda: [IngestProtocol.RTMP],
        min_length=1,
        max_length=6,
        json_schema_extra={"x-kubernetes-list-type": "set"},
        description="Contribution protocols the channel accepts (any of them may carry the contribution at a time). "
        "RTP and UDP share the channel's datagram port.",
    )
    stream_key_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding the stream key an RTMP, Smooth or CMAF publisher must present in its URL. "
        "Unset: any key is accepted (only sensible on a trusted network).",
    )
    srt: SrtIngest = Field(default_factory=SrtIngest, description="SRT settings (with protocol SRT).")

    @field_validator("protocols")
    @classmethod
    def _each_protocol_once(cls, value: list[IngestProtocol]) -> list[IngestProtocol]:
        if len(set(value)) != len(value):
            raise ValueError("each protocol may be listed once")
        return value

    udp: UdpIngest = Field(
        default_factory=UdpIngest, description="MPEG-TS over UDP / RTP settings (with protocol UDP or RTP)."
    )
    allowed_ips: list[Cidr] = Field(
        default_factory=list, description="Source ranges allowed to publish, over any protocol; empty allows all."
    )
    redundancy: RedundancyMode = Field(
        default=RedundancyMode.DUAL_PUSH, description="How the contribution reaches both encoders."
    )
    service_type: ServiceType = Field(
        default=ServiceType.LOAD_BALANCER, description="Service type of the ingest Services."
    )
    tls: IngestTls | None = Field(
        default=None,
        description="Take RTMP, Smooth and CMAF contributions over TLS (RTMPS, HTTPS) with this certificate. Unset: "
        "plain only.",
    )

    @model_validator(mode="after")
    def _tls_has_a_protocol(self) -> "Ingest":
        if self.tls is not None and not self.tls_protocols:
            raise ValueError("tls needs RTMP, FragmentedMP4 or CMAF among the protocols")
        return self

    @property
    def accepts_plaintext(self) -> bool:
        """Plain RTMP / HTTP push connections are taken (always, without ``tls``)."""
        return self.tls is None or self.tls.plaintext

    @property
    def tls_protocols(self) -> list[IngestProtocol]:
        """The accepted protocols that are served over TLS too (none without ``tls``)."""
        return [protocol for protocol in self.protocols if self.tls is not None and protocol.value in TLS_PROTOCOLS]


class Preview(WireModel):
    allowed_ips: list[Cidr] = Field(
        default_factory=list, description="Source ranges allowed to open the preview; empty allows all."
    )


def _no_default(schema: dict[str, JsonValue]) -> None:
    schema.pop("default", None)


class ChannelSpec(WireModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.liveWindow >= 3.0 * self.segmentDuration",
                    "message": "liveWindow must hold at least three segments",
                },
                {
                    "rule": "!has(self.slate) || !has(self.encoding) || !has(self.encoding.preset) || "
                    "self.encoding.preset != 'None'",
                    "message": "a slate needs live encoding (encoding.preset other than None)",
                },
                {
                    "rule": "!has(self.lowLatency) || !has(self.encoding) || !has(self.encoding.preset) || "
                    "self.encoding.preset != 'None'",
                    "message": "lowLatency needs live encoding (encoding.preset other than None)",
                },
                {
                    "rule": "!has(self.hlsStartOffset) || self.hlsStartOffset >= self.segmentDuration",
                    "message": "hlsStartOffset must be at least one segmentDuration",
                },
                {
                    "rule": "!has(self.lowLatency) || !has(self.lowLatency.partDuration) || "
                    "2.0 * self.lowLatency.partDuration <= self.segmentDuration",
                    "message": "lowLatency.partDuration must be at most half the segmentDuration",
                },
            ]
        }
    )

    state: ChannelState = Field(
        default=ChannelState.RUNNING,
        description="Running takes a contribution and encodes it; Stopped refuses publishers, scales the encoders and "
        "the packager to zero and stops the channel's running Programs (they stay playable on demand).",
    )
    idle_timeout: str | None = Field(
        default=None,
        pattern=ISO_DURATION,
        description="ISO-8601 duration (e.g. PT30M): a running channel without a contribution for this long is "
        "stopped (spec.state becomes Stopped, with an Event). Unset: never.",
    )
    ingest: Ingest = Field(default_factory=Ingest)
    encoding: Encoding = Field(default_factory=Encoding)
    segment_duration: float = Field(
        default=2.0,
        ge=1.0,
        le=10.0,
        description="Segment (and key frame) interval in seconds; segment n covers media time [n*D, (n+1)*D).",
    )
    live_window: float = Field(
        default=60.0, ge=6.0, le=3600.0, description="Seconds of the live playlist when no program is running."
    )
    hls_start_offset: float | None = Field(
        default=None,
        ge=1.0,
        le=60.0,
        json_schema_extra=_no_default,
        description="Seconds before the end of the live HLS playlists at which players start: "
        "EXT-X-START:TIME-OFFSET=-<this> (hls.js honours it whatever its own setting, as does any player that "
        "implements the tag). Unset: players choose (hls.js: three target durations). Below three "
        "segmentDurations it goes against RFC 8216's SHOULD NOT: less latency, and that much less buffer to ride "
        "out a late segment.",
    )
    preview: Preview = Field(default_factory=Preview)
    slate: Slate | None = Field(
        default=None,
        # No `default: null` in the CRD: the API server would then set the field, and the CEL rule
        # on the spec would see a slate where none was asked for.
        json_schema_extra=_no_default,
        description="Slate on input loss (live-encoded channels): a card and silence in every rendition, on the "
        "same segment grid, so players keep playing. Unset: the timeline waits for the contribution.",
    )
    low_latency: LowLatency | None = Field(
        default=None,
        json_schema_extra=_no_default,
        description="Low-latency HLS (parts, blocking playlist reload, preload hints) for live-encoded channels, "
        "beside the standard outputs. Unset: standard latency only.",
    )
    deletion_policy: DeletionPolicy = Field(
        default=DeletionPolicy.RETAIN,
        description="What happens to the stored media when the Channel is deleted: Retain keeps it; Delete removes it "
        "(the operator must run for"
        " the deletion to complete), except what a Program that still exists records.",
    )

    @field_validator("segment_duration")
    @classmethod
    def _whole_milliseconds(cls, value: float) -> float:
        return whole_milliseconds(value, "segmentDuration")

    @field_validator("hls_start_offset")
    @classmethod
    def _start_offset_in_milliseconds(cls, value: float | None) -> float | None:
        return None if value is None else whole_milliseconds(value, "hlsStartOffset")

    @field_validator("idle_timeout")
    @classmethod
    def _idle_timeout_is_a_duration(cls, value: str | None) -> str | None:
        if value is not None and not 1 <= parse_iso_duration(value).total_seconds() <= 30 * 86400:
            raise ValueError("idleTimeout must be between one second and 30 days")
        return value

    @property
    def idle_timeout_seconds(self) -> float | None:
        return None if self.idle_timeout is None else parse_iso_duration(self.idle_timeout).total_seconds()

    @property
    def stopped(self) -> bool:
        return self.state is ChannelState.STOPPED

    @property
    def segment_duration_ms(self) -> int:
        return int(round(self.segment_duration * 1000))

    @property
    def hls_start_offset_ms(self) -> int | None:
        return None if self.hls_start_offset is None else int(round(self.hls_start_offset * 1000))

    @model_validator(mode="after")
    def _window_holds_segments(self) -> "ChannelSpec":
        if self.live_window < 3 * self.segment_duration:
            raise ValueError("liveWindow must hold at least three segments")
        if self.hls_start_offset is not None and self.hls_start_offset < self.segment_duration:
            # Closer than one segment to the end, a player starts inside the newest segment with
            # nothing buffered beyond it.
            raise ValueError("hlsStartOffset must be at least one segmentDuration")
        if self.slate is not None and self.encoding.passthrough:
            # A card cannot be made in the contribution's own encoding: it would need a new init segment.
            raise ValueError("a slate needs live encoding (encoding.preset other than None)")
        if self.low_latency is not None:
            # Parts are cut on the live encoder's grid, where every segment starts with a key frame.
            if self.encoding.passthrough:
                raise ValueError("lowLatency needs live encoding (encoding.preset other than None)")
            if 2 * self.low_latency.part_duration_ms > self.segment_duration_ms:
                raise ValueError("lowLatency.partDuration must be at most half the segmentDuration")
        return self


class Channel(NamedResource):
    """A live channel: a contribution in (RTMP, Smooth / CMAF push, RTP / UDP / SRT MPEG-TS), an ABR ladder or pass-through out."""  # noqa: E501 (the CRD description: one line)

    model_config = ConfigDict(json_schema_extra=NAME_RULES.json_schema_extra())
    name_rules = NAME_RULES

    api_version: Literal["kubecast.io/v1alpha1"] = API_VERSION
    kind: Literal["Channel"] = "Channel"
    metadata: ObjectMeta
    spec: ChannelSpec = Field(default_factory=ChannelSpec)

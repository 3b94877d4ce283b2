"""Status of the resources, in the shape the Kubernetes API conventions ask for.

``observedGeneration`` and ``conditions`` (metav1.Condition: type, status, reason, message,
lastTransitionTime) with ``Ready`` as the summary and ``Reconciling`` / ``Stalled`` for kstatus
(so Flux, Argo CD and ``kubectl wait`` understand them without custom code); everything else
is a plain fact (URLs, counts).  Never a secret.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .common import WireModel


class Condition(WireModel):
    type: str = Field(pattern=r"^[A-Z][A-Za-z0-9]*$", description="PascalCase condition type, e.g. Ready.")
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", description="CamelCase reason.")
    message: str = Field(default="", max_length=32768)
    last_transition_time: str = Field(description="RFC 3339 time of the last status change.")
    observed_generation: int | None = None


def _conditions(
    description: str = "Ready is the summary; Reconciling and Stalled follow kstatus.",
) -> Any:  # a pydantic Field
    return Field(
        default_factory=list,
        description=description,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


CONDITIONS = _conditions()


class IngestEndpoints(WireModel):
    primary: str | None = Field(default=None, description="Ingest URL of encoder A (the stream key is not part of it).")
    secondary: str | None = Field(default=None, description="Ingest URL of encoder B.")
    primary_urls: dict[str, str] = Field(
        default_factory=dict,
        description="Encoder A's ingest URL per accepted protocol (keys and passphrases as placeholders).",
    )
    secondary_urls: dict[str, str] = Field(
        default_factory=dict, description="Encoder B's ingest URL per accepted protocol."
    )


class EncoderStatus(WireModel):
    ready: bool = Field(default=False, description="Its pod is ready (from the Deployment).")
    replicas: int = 0
    # From the channel's timeline in storage (the packager's view of the media).
    live: bool | None = Field(default=None, description="It receives a contribution and writes segments.")
    ingest_connected: bool | None = Field(
        default=None, description="Its ingest path (primary for A, secondary for B) carries the contribution."
    )
    last_segment: int | None = Field(default=None, description="Number of the newest segment it wrote.")
    segments_taken: int | None = Field(
        default=None, description="Segments of the first rendition the packager published from it."
    )


class StreamStatus(WireModel):
    state: Literal["waiting", "live", "stopped"] | None = None
    active_encoder: str | None = Field(default=None, description="The encoder the newest segments come from.")
    failovers: int = Field(default=0, description="Times the newest segments started coming from the other encoder.")
    last_failover_time: str | None = None
    updated: str | None = Field(default=None, description="When the timeline this was read from was written.")


# Azure Media Services' channel states, as a fact for people; tools read the conditions.
ChannelPhase = Literal["Starting", "Running", "Stopping", "Stopped"]


class ChannelStatus(WireModel):
    observed_generation: int | None = None
    phase: ChannelPhase | None = Field(
        default=None,
        description="Starting, Running, Stopping or Stopped (the Azure Media Services names), for people; health "
        "checks read the conditions.",
    )
    conditions: list[Condition] = _conditions(
        "Ready is the summary; Reconciling and Stalled follow kstatus. From the packager: KeyframesAligned "
        "(pass-through renditions key-frame aligned; False names the withheld rendition) and InitSegmentsConsistent."
    )
    ingest: IngestEndpoints = Field(default_factory=IngestEndpoints)
    preview_url: str | None = Field(
        default=None, description="The preview page (player and thumbnail) on the namespace's first StreamingEndpoint."
    )
    encoders: dict[str, EncoderStatus] = Field(
        default_factory=dict, description="Encoders A and B: pod readiness and media progress."
    )
    stream: StreamStatus | None = Field(default=None, description="The live stream as the packager publishes it.")


class PlaybackUrl(WireModel):
    endpoint: str
    format: str
    url: str


class RecordingStatus(WireModel):
    state: Literal["Waiting", "Recording", "Stopped"] = Field(
        default="Waiting",
        description="Waiting until the first segment is recorded, Recording while the program runs, Stopped once it is "
        "on-demand content.",
    )
    start: str | None = Field(
        default=None,
        description="RFC 3339 UTC time where the recorded range starts (it slides with archiveWindow while recording).",
    )
    end: str | None = Field(
        default=None, description="RFC 3339 UTC time where the recorded range ends (the newest recorded segment's end)."
    )
    duration_seconds: float = Field(
        default=0.0, description="Seconds of media recorded; contribution gaps are not counted."
    )
    segments: int = Field(
        default=0, description="Segments recorded (of the first video rendition, or of the audio without video)."
    )


class ProgramStatus(WireModel):
    observed_generation: int | None = None
    conditions: list[Condition] = CONDITIONS
    playback_urls: list[PlaybackUrl] = Field(default_factory=list)
    recording: RecordingStatus | None = Field(
        default=None, description="The recorded range, from the program's timeline in storage."
    )


class StreamingEndpointStatus(WireModel):
    observed_generation: int | None = None
    conditions: list[Condition] = CONDITIONS
    host_name: str | None = None
    replicas: int | None = Field(
        default=None, description="Replicas of the endpoint's Deployment (the scale subresource's status)."
    )
    ready_replicas: int = 0
    selector: str | None = Field(
        default=None, description="Label selector of the endpoint's pods (the scale subresource's labelSelectorPath)."
    )

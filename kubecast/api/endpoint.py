"""The StreamingEndpoint resource: a horizontally scaled, stateless origin."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from .common import API_VERSION, Cidr, ObjectMeta, SecretKeyRef, WireModel


class Scaling(WireModel):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        {"rule": "self.maxReplicas >= self.minReplicas", "message": "maxReplicas must be at least minReplicas"},
    ]})

    min_replicas: int = Field(default=2, ge=1, le=100)
    max_replicas: int = Field(default=10, ge=1, le=1000)
    target_cpu_utilization: int = Field(default=70, ge=10, le=100, description="Average CPU utilisation (%) the autoscaler aims for.")

    @model_validator(mode="after")
    def _bounds(self) -> "Scaling":
        if self.max_replicas < self.min_replicas:
            raise ValueError("maxReplicas must be at least minReplicas")
        return self


class Cdn(WireModel):
    enabled: bool = Field(default=False, description="Responses are shaped for a CDN in front (longer manifest caching, Vary).")
    max_age: int = Field(default=3600 * 24 * 365, ge=0, description="Cache max-age in seconds for media segments.")


class AccessControl(WireModel):
    allowed_ips: list[Cidr] = Field(default_factory=list, description="Source ranges allowed to play; empty allows all.")
    signing_key_secret_ref: SecretKeyRef | None = Field(default=None, description="HMAC key for signed URLs; unset disables signing.")


class StreamingEndpointSpec(WireModel):
    replicas: int | None = Field(default=None, ge=0, le=1000, description="Fixed replica count; ignored when scaling is set.")
    scaling: Scaling | None = Field(default=None, description="Autoscaling bounds (a HorizontalPodAutoscaler).")
    cdn: Cdn = Field(default_factory=Cdn)
    access_control: AccessControl = Field(default_factory=AccessControl)
    cross_site_origins: list[str] = Field(default_factory=lambda: ["*"], description="Origins allowed by CORS.")
    host_names: list[str] = Field(default_factory=list, description="Custom host names (an Ingress is made for them).")


class StreamingEndpoint(WireModel):
    """A horizontally scaled origin serving HLS and DASH from the store."""

    api_version: Literal["kubecast.io/v1alpha1"] = API_VERSION
    kind: Literal["StreamingEndpoint"] = "StreamingEndpoint"
    metadata: ObjectMeta
    spec: StreamingEndpointSpec = Field(default_factory=StreamingEndpointSpec)

    @property
    def name(self) -> str:
        return self.metadata.name

"""The StreamingEndpoint resource: a horizontally scaled, stateless origin."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from .common import API_VERSION, Cidr, NamedResource, NameRules, ObjectMeta, SecretKeyRef, WireModel

NAME_RULES = NameRules(
    "StreamingEndpoint", 63, first_letter=True, why="its Service has the same name, and Kubernetes limits that to 63"
)


class Scaling(WireModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self.maxReplicas >= self.minReplicas", "message": "maxReplicas must be at least minReplicas"},
            ]
        }
    )

    min_replicas: int = Field(default=2, ge=1, le=100)
    max_replicas: int = Field(default=10, ge=1, le=1000)
    target_cpu_utilization: int = Field(
        default=70, ge=10, le=100, description="Average CPU utilisation (%) the autoscaler aims for."
    )

    @model_validator(mode="after")
    def _bounds(self) -> "Scaling":
        if self.max_replicas < self.min_replicas:
            raise ValueError("maxReplicas must be at least minReplicas")
        return self


HEADER_NAME = r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$"
# What crossdomain.xml and a CORS Access-Control-Allow-Origin header can say: one origin, or every one.
Origin = Annotated[str, Field(pattern=r"^(\*|https?://[A-Za-z0-9]([A-Za-z0-9.-]{0,252})(:[0-9]{1,5})?)$")]
KEY_ID = r"^[A-Za-z0-9_-]{1,32}$"  # kubecast.media.tokens.KEY_ID: a key id is a part of the token


class OriginAuthentication(WireModel):
    header_name: str = Field(
        default="X-Origin-Auth", pattern=HEADER_NAME, description="Request header the CDN sends the shared secret in."
    )
    secret_ref: SecretKeyRef = Field(
        description="Secret key holding the shared secret; a request without it is refused (403)."
    )


class Cdn(WireModel):
    origin_authentication: OriginAuthentication | None = Field(
        default=None,
        description="Only requests carrying the shared secret header are served (the CDN's origin pull); "
        "/healthz and /metrics stay open for probes and scraping.",
    )


class SigningKey(WireModel):
    id: str = Field(
        pattern=KEY_ID, description="Key id, carried in each token so the endpoint knows which key signed it."
    )
    secret_ref: SecretKeyRef = Field(description="Secret key holding the HMAC-SHA256 key.")


class AccessControl(WireModel):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.signingKeys) || self.signingKeys.all(a, self.signingKeys.exists_one(b, b.id == "
                    "a.id))",
                    "message": "signing key ids must be unique",
                },
            ]
        }
    )

    allowed_ips: list[Cidr] = Field(
        default_factory=list, description="Client ranges allowed to play and to open previews; empty allows all."
    )
    trusted_proxies: list[Cidr] = Field(
        default_factory=list,
        description="Direct peers (load balancers, CDNs) whose X-Forwarded-For / Forwarded header names the client; "
        "from any other peer those headers are ignored.",
    )
    signing_keys: list[SigningKey] = Field(
        default_factory=list,
        max_length=2,
        description="Keys for signed URLs (/t/<token>/...); set, every manifest, segment, preview and thumbnail URL "
        "needs a valid token. "
        "Two at once let keys rotate; `kubecast sign` signs with the last.",
    )

    @model_validator(mode="after")
    def _unique_ids(self) -> "AccessControl":
        ids = [key.id for key in self.signing_keys]
        if len(set(ids)) != len(ids):
            raise ValueError("signing key ids must be unique")
        return self


DrmSystemName = Literal["Widevine", "PlayReady", "FairPlay"]  # kubecast.media.cpix.DrmSystem


class Cpix(WireModel):
    """A commercial DRM vendor's key server, spoken to in DASH-IF CPIX (as AWS SPEKE v2 does)."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.drmSystems.all(a, self.drmSystems.exists_one(b, b == a))",
                    "message": "drmSystems must not repeat",
                },
            ]
        }
    )

    url: str = Field(pattern=r"^https?://[^\s]{1,2000}$", description="The key server's CPIX URL (POST).")
    drm_systems: list[DrmSystemName] = Field(
        min_length=1,
        max_length=3,
        description="DRM systems to signal, with the PSSH (and FairPlay's skd:// URI) from the key server's answer.",
    )
    credentials_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key whose value is sent as the Authorization header (e.g. `Bearer …` or `Basic …`).",
    )

    @model_validator(mode="after")
    def _distinct(self) -> "Cpix":
        if len(set(self.drm_systems)) != len(self.drm_systems):
            raise ValueError("drmSystems must not repeat")
        return self


class KeyDelivery(WireModel):
    """Who may fetch content keys: a viewer with a JWT signed (HS256) by the key in this Secret,
    as Azure Media Services' key delivery with a token restriction."""

    jwt_secret_ref: SecretKeyRef = Field(description="HS256 key the viewers' JWTs are signed with.")
    issuer: str | None = Field(
        default=None, max_length=253, description="Required `iss` claim; unset accepts any issuer."
    )
    audience: str | None = Field(
        default=None, max_length=253, description="Required `aud` claim; unset accepts any audience."
    )


class ContentProtection(WireModel):
    """Encryption of everything this endpoint serves, applied per request to the one clear stored copy."""

    master_key_secret_ref: SecretKeyRef = Field(
        description="Master key (hex or base64, at least 16 bytes) every content key (with cpix: every key id) is "
        "derived from."
    )
    key_rotation_segments: int = Field(
        default=0,
        ge=0,
        le=1_000_000,
        description="HLS AES-128: a new key every N segments; 0 keeps one key per channel.",
    )
    cenc_scheme: Literal["cenc", "cbcs"] = Field(
        default="cenc",
        description="Common Encryption scheme of DASH and of HLS under <scheme>/: cenc (AES-CTR) or cbcs "
        "(AES-CBC, 1:9 pattern).",
    )
    key_delivery: KeyDelivery | None = Field(
        default=None, description="Token rules of the key-delivery URL; unset, keys are as open as the playlists."
    )
    cpix: Cpix | None = Field(
        default=None,
        description="Take the Common Encryption key from a DRM key server (CPIX) and signal its DRM systems "
        "in place of ClearKey; unset, keys are derived from the master key and served as ClearKey licences.",
    )

    @model_validator(mode="after")
    def _fairplay_is_cbcs(self) -> "ContentProtection":
        if self.cpix is not None and "FairPlay" in self.cpix.drm_systems and self.cenc_scheme != "cbcs":
            raise ValueError("FairPlay needs cencScheme cbcs")
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.cpix) || !self.cpix.drmSystems.exists(s, s == 'FairPlay') || self.cencScheme == "
                    "'cbcs'",
                    "message": "FairPlay needs cencScheme cbcs",
                },
            ]
        }
    )


class StreamingEndpointSpec(WireModel):
    # A default, so the scale subresource (specReplicasPath .spec.replicas) always has a value.
    replicas: int = Field(
        default=2,
        ge=0,
        le=1000,
        description="Replica count (what `kubectl scale` sets); ignored when scaling is set, "
        "where the HorizontalPodAutoscaler sizes the Deployment.",
    )
    scaling: Scaling | None = Field(default=None, description="Autoscaling bounds (a HorizontalPodAutoscaler).")
    cdn: Cdn = Field(default_factory=Cdn)
    access_control: AccessControl = Field(default_factory=AccessControl)
    cross_site_origins: list[Origin] = Field(
        default_factory=list,
        max_length=64,
        description="Web origins (scheme://host[:port]) allowed by CORS, crossdomain.xml and clientaccesspolicy.xml; "
        "empty allows every origin (*).",
    )
    host_names: list[str] = Field(default_factory=list, description="Custom host names (an Ingress is made for them).")
    content_protection: ContentProtection | None = Field(
        default=None,
        description="Encrypt what is served (HLS AES-128, DASH CENC with ClearKey) with keys from the key-delivery "
        "URL; unset serves in the clear.",
    )
    hls_cue_tags: bool = Field(
        default=False,
        description="Mark ad breaks in HLS media playlists also with EXT-X-CUE-OUT, EXT-X-CUE-OUT-CONT and "
        "EXT-X-CUE-IN on whole segments, for ad servers that read only those; EXT-X-DATERANGE is always written.",
    )


class StreamingEndpoint(NamedResource):
    """A horizontally scaled origin serving HLS and DASH from the store."""

    model_config = ConfigDict(json_schema_extra=NAME_RULES.json_schema_extra())
    name_rules = NAME_RULES

    api_version: Literal["kubecast.io/v1alpha1"] = API_VERSION
    kind: Literal["StreamingEndpoint"] = "StreamingEndpoint"
    metadata: ObjectMeta
    spec: StreamingEndpointSpec = Field(default_factory=StreamingEndpointSpec)

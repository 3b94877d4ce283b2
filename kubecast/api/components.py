"""What a data-plane component is configured with, built from the resources in one place.

The ingest's routing file (``ingest.json``), the encoder's ``encoder.json``, the packager's
``packager.json`` and the streaming endpoint's ``endpoint.json`` are written by the operator
(into ConfigMaps) and by local mode (into the run directory); both build them with
``ingest_route``, ``encoder_config``, ``packager_config`` and ``endpoint_config``, and the
component reads its file back with the same model, so the writers and the reader cannot drift
apart, and no data-plane component reads a resource.  Where the files
and ports are differs between a pod and a laptop; the caller says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal, NamedTuple

from pydantic import Field

from .channel import Channel, RedundancyMode
from .common import Cidr, SecretKeyRef, WireModel
from .endpoint import HEADER_NAME, KEY_ID, DrmSystemName, Origin, StreamingEndpoint
from .renditions import Rendition

DATAGRAM_PROTOCOLS = frozenset({"UDP", "RTP"})


class IngestRoute(WireModel):
    """One channel as an ingest routes it."""

    stream_key_file: str | None = None  # None: no key (the publish path must name the channel)
    encoders: list[str] = Field(default_factory=list)  # HOST:PORT of the encoder(s) this ingest feeds
    relays: list[str] = Field(default_factory=list)  # relay mode: the other encoder(s), fed the same contribution
    allowed_ips: list[str] = Field(default_factory=list)
    protocols: list[str] = Field(default_factory=lambda: ["RTMP"])  # IngestProtocol values
    udp_listen: str | None = None  # MPEG-TS over UDP / RTP: this channel's own HOST:PORT
    udp_group: str | None = None  # ... joined as a multicast group
    srt_passphrase_file: str | None = None
    srt_latency_ms: int = 120
    tls: bool = False  # RTMPS and HTTPS push are taken (with the ingest's certificate)
    plaintext: bool = True  # plain RTMP and HTTP push are taken


class IngestFile(WireModel):
    """``ingest.json``: every channel one ingest takes, and its connection limits."""

    channels: dict[str, IngestRoute] = Field(default_factory=dict)
    handshake_timeout: float = 10
    idle_timeout: float = 15
    max_connections: int = 256

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)


class ChannelStates(WireModel):
    """``channel-states.json``: the channels a local ingest refuses because they are stopped.
    ``kubecast up`` rewrites it when a channel is stopped or started and the ingest reads it
    again; on a cluster a stopped channel has no ingest at all (it runs in the encoder pods)."""

    stopped: list[str] = Field(default_factory=list)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)


def ingest_route(
    channel: Channel,
    *,
    encoder: str,
    others: list[str],
    udp_listen: str | None,
    stream_key_file: str,
    srt_passphrase_file: str,
) -> IngestRoute:
    """The route of ``channel`` for the ingest that feeds ``encoder``.  ``others``: the channel's
    other encoders (fed too in relay mode); ``udp_listen``: where this ingest takes MPEG-TS
    datagrams, used if the channel accepts UDP or RTP; the two files: where the stream key and
    the SRT passphrase are put, used if the channel has them."""
    ingest = channel.spec.ingest
    protocols = [protocol.value for protocol in ingest.protocols]
    return IngestRoute(
        stream_key_file=stream_key_file if ingest.stream_key_secret_ref is not None else None,
        encoders=[encoder],
        relays=list(others) if ingest.redundancy == RedundancyMode.RELAY else [],
        allowed_ips=list(ingest.allowed_ips),
        protocols=protocols,
        udp_listen=udp_listen if DATAGRAM_PROTOCOLS & set(protocols) else None,
        udp_group=ingest.udp.multicast_group,
        srt_passphrase_file=srt_passphrase_file if ingest.srt.passphrase_secret_ref is not None else None,
        srt_latency_ms=ingest.srt.latency_ms,
        tls=ingest.tls is not None,
        plaintext=ingest.accepts_plaintext,
    )


class PackagerConfig(WireModel):
    """``packager.json``: what one channel's packager needs (not the whole Channel)."""

    channel: str
    segment_duration_ms: int
    window_ms: int  # the live window the timeline keeps
    instances: list[str]  # the encoder instances whose progress it merges
    # spec.hlsStartOffset: carried in the timeline to the endpoints' live HLS playlists; None: none.
    hls_start_offset_ms: int | None = None

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)


def packager_config(channel: Channel, *, instances: list[str]) -> PackagerConfig:
    return PackagerConfig(
        channel=channel.name,
        segment_duration_ms=channel.spec.segment_duration_ms,
        window_ms=int(channel.spec.live_window * 1000),
        instances=list(instances),
        hls_start_offset_ms=channel.spec.hls_start_offset_ms,
    )


class EncoderConfig(WireModel):
    """``encoder.json``: what one channel's encoders need (not the whole Channel)."""

    channel: str
    segment_duration_ms: int
    renditions: list[Rendition]  # the ladder to encode, in descending bitrate; empty: pass-through
    x264_preset: str | None  # None: the encoder picks by the ladder's pixel rate
    audio_bitrate: int
    # spec.slate.after: a contribution lost for this long is followed by the slate; None: no slate
    # (the manual slate of the control record is shown all the same).
    slate_after_ms: int | None = None
    # spec.idleTimeout: the slate runs at most this long (a slate keeps the channel on air, so the
    # idle time is counted from its end); None: as long as the contribution is lost.
    slate_limit_ms: int | None = None
    # spec.lowLatency.partDuration: each segment is also stored in parts this long; None: no parts.
    part_duration_ms: int | None = None

    @property
    def passthrough(self) -> bool:
        return not self.renditions

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)


def encoder_config(channel: Channel) -> EncoderConfig:
    encoding = channel.spec.encoding
    return EncoderConfig(
        channel=channel.name,
        segment_duration_ms=channel.spec.segment_duration_ms,
        renditions=encoding.ladder(),
        x264_preset=encoding.x264_preset,
        audio_bitrate=encoding.audio_bitrate,
        slate_after_ms=channel.spec.slate.after_ms if channel.spec.slate is not None else None,
        slate_limit_ms=int(idle * 1000) if (idle := channel.spec.idle_timeout_seconds) is not None else None,
        part_duration_ms=low.part_duration_ms if (low := channel.spec.low_latency) is not None else None,
    )


# ---- the streaming endpoint -------------------------------------------------------------------
# Secrets never enter endpoint.json: each is named by the file it will be found in, which the
# caller's ``SecretFile`` chooses (a Secret volume's path on a cluster, a 0600 file locally).
class EndpointSecret(NamedTuple):
    """A Secret key the endpoint reads, and the file name it is put under."""

    file_name: str  # unique per endpoint: the projected volume's path, a local file's suffix
    ref: SecretKeyRef
    purpose: str  # how a missing one is named in the StreamingEndpoint's status


SecretFile = Callable[[EndpointSecret], str]  # -> the path of the file holding it


def endpoint_secrets(endpoint: StreamingEndpoint) -> list[EndpointSecret]:
    """Every Secret key ``endpoint`` reads: signing keys, the CDN's origin secret, and content
    protection's master key, JWT key and DRM key server credentials."""
    spec = endpoint.spec
    secrets = [
        EndpointSecret(f"signing-key-{key.id}", key.secret_ref, f"signing key {key.id}")
        for key in spec.access_control.signing_keys
    ]
    if (origin := spec.cdn.origin_authentication) is not None:
        secrets.append(EndpointSecret("origin-auth", origin.secret_ref, "origin auth"))
    if (protection := spec.content_protection) is not None:
        secrets.append(
            EndpointSecret("content-master-key", protection.master_key_secret_ref, "content protection master key")
        )
        if protection.key_delivery is not None:
            secrets.append(
                EndpointSecret("key-delivery-jwt-key", protection.key_delivery.jwt_secret_ref, "key delivery JWT key")
            )
        if protection.cpix is not None and protection.cpix.credentials_secret_ref is not None:
            secrets.append(
                EndpointSecret("cpix-credentials", protection.cpix.credentials_secret_ref, "DRM key server credentials")
            )
    return secrets


class PreviewAllowList(WireModel):
    """Who may open one channel's preview (page and thumbnail), on top of ``allowedIps``."""

    channel: str
    allowed_ips: list[Cidr] = Field(min_length=1)


class SigningKeyFile(WireModel):
    id: str = Field(pattern=KEY_ID)  # carried in each token: which key signed it
    file: str  # holds the HMAC-SHA256 key


class OriginAuthFile(WireModel):
    header: str = Field(pattern=HEADER_NAME)  # the request header the CDN sends the secret in
    value_file: str  # holds the shared secret


class KeyDeliveryConfig(WireModel):
    jwt_key_file: str  # holds the HS256 key viewers' JWTs are signed with
    issuer: str | None = None  # required `iss`; None accepts any
    audience: str | None = None  # required `aud`; None accepts any


class CpixConfig(WireModel):
    url: str
    drm_systems: list[DrmSystemName] = Field(min_length=1)
    credentials_file: str | None = None  # holds the Authorization header's value


class ContentProtectionConfig(WireModel):
    """``spec.contentProtection`` with each Secret replaced by the file holding it."""

    master_key_file: str  # hex or base64, at least 16 bytes
    key_rotation_segments: int = Field(default=0, ge=0)
    cenc_scheme: Literal["cenc", "cbcs"] = "cenc"
    key_delivery: KeyDeliveryConfig | None = None  # None: keys are as open as the playlists
    cpix: CpixConfig | None = None  # None: keys derived here, served as ClearKey licences


class EndpointConfig(WireModel):
    """``endpoint.json``: who may fetch what from a streaming endpoint, and how it encrypts.
    Every field empty (the default) is an open origin serving in the clear."""

    allowed_ips: list[Cidr] = Field(default_factory=list)  # playback and previews; empty allows all
    preview_allowed_ips: list[PreviewAllowList] = Field(default_factory=list)
    trusted_proxies: list[Cidr] = Field(default_factory=list)  # peers whose X-Forwarded-For / Forwarded count
    signing_keys: list[SigningKeyFile] = Field(default_factory=list, max_length=2)  # set: content URLs need a token
    origin_auth: OriginAuthFile | None = None  # set: only requests carrying the CDN's secret are served
    cross_site_origins: list[Origin] = Field(default_factory=list)  # CORS and the Flash/Silverlight policy files
    content_protection: ContentProtectionConfig | None = None
    hls_cue_tags: bool = False  # ad breaks also as EXT-X-CUE-OUT/-CONT/-IN in HLS media playlists

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2, exclude_none=True)


def endpoint_config(
    endpoint: StreamingEndpoint | None, channels: Iterable[Channel], *, secret_file: SecretFile
) -> EndpointConfig:
    """The endpoint's config; ``endpoint`` None (local mode without a StreamingEndpoint) applies
    only the Channels' preview allow-lists.  ``secret_file`` names the file of each of
    ``endpoint_secrets(endpoint)``."""
    previews = [
        PreviewAllowList(channel=channel.name, allowed_ips=list(channel.spec.preview.allowed_ips))
        for channel in channels
        if channel.spec.preview.allowed_ips
    ]
    if endpoint is None:
        return EndpointConfig(preview_allowed_ips=previews)
    files = {secret.file_name: secret_file(secret) for secret in endpoint_secrets(endpoint)}
    spec = endpoint.spec
    access, origin, protection = spec.access_control, spec.cdn.origin_authentication, spec.content_protection
    return EndpointConfig(
        allowed_ips=list(access.allowed_ips),
        preview_allowed_ips=previews,
        trusted_proxies=list(access.trusted_proxies),
        signing_keys=[SigningKeyFile(id=key.id, file=files[f"signing-key-{key.id}"]) for key in access.signing_keys],
        origin_auth=(
            OriginAuthFile(header=origin.header_name, value_file=files["origin-auth"]) if origin is not None else None
        ),
        cross_site_origins=list(spec.cross_site_origins),
        content_protection=(
            ContentProtectionConfig(
                master_key_file=files["content-master-key"],
                key_rotation_segments=protection.key_rotation_segments,
                cenc_scheme=protection.cenc_scheme,
                key_delivery=(
                    KeyDeliveryConfig(
                        jwt_key_file=files["key-delivery-jwt-key"],
                        issuer=protection.key_delivery.issuer,
                        audience=protection.key_delivery.audience,
                    )
                    if protection.key_delivery is not None
                    else None
                ),
                cpix=(
                    CpixConfig(
                        url=protection.cpix.url,
                        drm_systems=list(protection.cpix.drm_systems),
                        credentials_file=files.get("cpix-credentials"),
                    )
                    if protection.cpix is not None
                    else None
                ),
            )
            if protection is not None
            else None
        ),
        hls_cue_tags=spec.hls_cue_tags,
    )

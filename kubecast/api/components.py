"""What a data-plane component is configured with, built from the resources in one place.

The ingest's routing file (``ingest.json``), the encoder's ``encoder.json`` and the packager's
``packager.json`` are written by the operator (into the encoder pods' ConfigMaps) and by local
mode (into the run directory); both build them with ``ingest_route``, ``encoder_config`` and
``packager_config``, and the component reads its file back with the same model, so the writers
and the reader cannot drift apart, and no data-plane component reads the Channel resource.  Where the files
and ports are differs between a pod and a laptop; the caller says so.
"""

from __future__ import annotations

from pydantic import Field

from .channel import Channel, RedundancyMode
from .common import WireModel
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

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)


def packager_config(channel: Channel, *, instances: list[str]) -> PackagerConfig:
    return PackagerConfig(
        channel=channel.name,
        segment_duration_ms=channel.spec.segment_duration_ms,
        window_ms=int(channel.spec.live_window * 1000),
        instances=list(instances),
    )


class EncoderConfig(WireModel):
    """``encoder.json``: what one channel's encoders need (not the whole Channel)."""

    channel: str
    segment_duration_ms: int
    renditions: list[Rendition]  # the ladder to encode, in descending bitrate; empty: pass-through
    x264_preset: str | None  # None: the encoder picks by the ladder's pixel rate
    audio_bitrate: int

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
    )

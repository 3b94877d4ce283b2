"""The ingest's configuration and its publish decision (pure).

The stream key is the last element of the publish path (``rtmp://host/live/<key>``,
``rtmp://host/live/<channel>/<key>`` or ``rtmp://host/<channel>/<key>``), or the one before
it when the last names a rendition of a multi-bitrate contribution.  When the path
names a channel, that channel's key is checked; otherwise the key is compared with every
channel's key — each in constant time and all of them every time, so that neither which
channel matched nor how much of a key was right shows in the answer's timing.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from kubecast.api.components import IngestFile


@dataclass(frozen=True)
class ChannelRoute:
    name: str
    key: str | None  # None: no key required (the channel must then be named in the path)
    encoders: tuple[tuple[str, int], ...]
    allowed: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # Relay mode: the other encoder(s) of the channel, fed what this ingest receives.
    relays: tuple[tuple[str, int], ...] = ()
    protocols: frozenset[str] = frozenset({"RTMP"})  # the api's IngestProtocol values
    udp_listen: tuple[str, int] | None = None  # MPEG-TS over UDP / RTP: this channel's own port
    udp_group: str | None = None  # ... joined as a multicast group
    srt_passphrase: str | None = None
    srt_latency_ms: int = 120
    tls: bool = False  # takes RTMPS and HTTPS push
    plaintext: bool = True  # takes plain RTMP and HTTP push

    def accepts(self, protocol: str) -> bool:
        return protocol in self.protocols

    def refuses_transport(self, *, secure: bool) -> str | None:
        """Why a connection over this transport (TLS or not) may not publish here, or None.  The
        reason tells the publisher which scheme to use, and nothing else."""
        if secure and not self.tls:
            return f"channel {self.name} does not take TLS: publish without it (rtmp://, http://)"
        if not secure and not self.plaintext:
            return f"channel {self.name} takes TLS only: publish to rtmps:// or https://"
        return None

    def admits(self, peer: str) -> bool:
        if not self.allowed:
            return True
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.allowed)


@dataclass(frozen=True)
class IngestConfig:
    channels: dict[str, ChannelRoute] = field(default_factory=dict)
    handshake_timeout: float = 10.0
    idle_timeout: float = 15.0
    max_connections: int = 256


class ConfigError(ValueError):
    pass


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"encoder address must be HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def load_config(path: str | Path) -> IngestConfig:
    """``ingest.json`` (``kubecast.api.components.IngestFile``, as the operator and local mode
    write it), with the key files read and the addresses parsed."""
    try:
        raw = IngestFile.model_validate_json(Path(path).read_bytes())
    except (OSError, ValidationError) as error:
        raise ConfigError(f"{path}: {error}") from None
    channels = {}
    for name, entry in raw.channels.items():
        key = None
        if entry.stream_key_file:
            try:
                key = Path(entry.stream_key_file).read_text().strip()
            except OSError as error:
                raise ConfigError(f"channel {name}: stream key file: {error.strerror}") from None
            if not key:
                raise ConfigError(f"channel {name}: the stream key file is empty")
        try:
            allowed = tuple(ipaddress.ip_network(cidr, strict=False) for cidr in entry.allowed_ips)
        except ValueError as error:
            raise ConfigError(f"channel {name}: {error}") from None
        passphrase = None
        if entry.srt_passphrase_file:
            try:
                passphrase = Path(entry.srt_passphrase_file).read_text().strip()
            except OSError as error:
                raise ConfigError(f"channel {name}: SRT passphrase file: {error.strerror}") from None
            if not 10 <= len(passphrase) <= 79:
                raise ConfigError(f"channel {name}: an SRT passphrase has 10 to 79 characters")
        channels[name] = ChannelRoute(
            name,
            key,
            tuple(_address(a) for a in entry.encoders),
            allowed,
            tuple(_address(a) for a in entry.relays),
            protocols=frozenset(entry.protocols or ["RTMP"]),
            udp_listen=_address(entry.udp_listen) if entry.udp_listen else None,
            udp_group=entry.udp_group or None,
            srt_passphrase=passphrase,
            srt_latency_ms=entry.srt_latency_ms,
            tls=entry.tls,
            plaintext=entry.plaintext,
        )
    return IngestConfig(
        channels=channels,
        handshake_timeout=raw.handshake_timeout,
        idle_timeout=raw.idle_timeout,
        max_connections=raw.max_connections,
    )


@dataclass(frozen=True)
class Decision:
    route: ChannelRoute | None
    reason: str  # for the log and the publisher; never contains the key
    label: str  # metric label
    rendition: str = ""  # multi-bitrate: the rendition this publish carries ("" for single-bitrate)


def _key_matches(route: ChannelRoute, key: str) -> bool:
    return route.key is None or hmac.compare_digest(route.key.encode(), key.encode())


def decide(
    config: IngestConfig, *, app: str, name: str, peer: str, protocol: str = "RTMP", secure: bool = False
) -> Decision:
    """Which channel (and rendition) a publish path names, if its key is right.

    ``…/<channel>/<key>[/<rendition>]`` names the channel; ``…/<key>[/<rendition>]`` finds it
    by its key.  A rendition name makes the publish one rendition of a multi-bitrate
    contribution: several publishes with the same key and different rendition names are one
    channel's renditions.
    """
    path = [part for part in (app.split("/") + name.split("/")) if part]
    if not path:
        return Decision(None, "empty publish name", "bad_name")
    named = [index for index, part in enumerate(path[:-1]) if part in config.channels]
    if named:
        route = config.channels[path[named[-1]]]
        rest = path[named[-1] + 1 :]
        if len(rest) > 2:
            return Decision(
                None,
                f"publish path has {len(rest)} elements after channel {route.name}; expected KEY or KEY/RENDITION",
                "bad_name",
            )
        key, rendition = rest[0], (rest[1] if len(rest) > 1 else "")
        if not _key_matches(route, key):
            return Decision(None, f"wrong stream key for channel {route.name}", "bad_key")
    else:
        keyed = [route for route in config.channels.values() if route.key is not None]
        candidates = [(path[-1], "")] + ([(path[-2], path[-1])] if len(path) > 1 else [])
        # Every key is compared every time, so the timing shows neither which matched nor how much.
        matches = [
            (route, rendition)
            for key, rendition in candidates
            for route in keyed
            if hmac.compare_digest((route.key or "").encode(), key.encode())
        ]
        if not matches:
            return Decision(None, "unknown stream key", "bad_key")
        route, rendition = matches[0]
    if not route.accepts(protocol):
        return Decision(None, f"channel {route.name} does not accept {protocol}", "protocol")
    if refusal := route.refuses_transport(secure=secure):
        return Decision(None, refusal, "tls_required" if not secure else "tls_not_accepted")
    if not route.admits(peer):
        return Decision(None, f"{peer} may not publish to channel {route.name}", "not_allowed")
    return Decision(route, "accepted", "accepted", rendition)

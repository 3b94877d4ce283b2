"""Where a publisher sends a channel's contribution, per protocol (pure; local mode prints
these, the operator writes them into the Channel's status)."""

from __future__ import annotations

from .channel import Channel, IngestProtocol


def ingest_urls(
    channel: Channel,
    *,
    host: str,
    rtmp: int | None,
    http: int | None,
    srt: int | None,
    udp: int | None,
    key: str = "<stream key>",
    rtmps: int | None = None,
    https: int | None = None,
) -> dict[str, str]:
    """Protocol -> URL for one ingest of ``channel``.  ``key`` stands in for the stream key
    (never the key itself: these URLs are shown in logs and in the resource's status).  Over
    TLS the protocol is named with ``-TLS`` (``RTMP-TLS`` is RTMPS); a plain URL is listed only
    when the channel takes plain connections."""
    name = channel.name
    ingest = channel.spec.ingest
    keyed = f"{key}/" if ingest.stream_key_secret_ref is not None else ""
    plain, tls = ingest.accepts_plaintext, set(ingest.tls_protocols)
    urls: dict[str, str] = {}
    for protocol in ingest.protocols:
        if protocol is IngestProtocol.RTMP:
            path = f"live/{name}/{key if ingest.stream_key_secret_ref is not None else 'any'}"
            if plain and rtmp:
                urls["RTMP"] = f"rtmp://{host}:{rtmp}/{path}"
            if protocol in tls and rtmps:
                urls["RTMP-TLS"] = f"rtmps://{host}:{rtmps}/{path}"
        elif protocol in (IngestProtocol.FRAGMENTED_MP4, IngestProtocol.CMAF):
            path = (
                f"{keyed}ingest/{name}.isml/Streams(<stream>)"
                if protocol is IngestProtocol.FRAGMENTED_MP4
                else f"{keyed}ingest/{name}.cmaf/manifest.mpd"
            )
            if plain and http:
                urls[protocol.value] = f"http://{host}:{http}/{path}"
            if protocol in tls and https:
                urls[f"{protocol.value}-TLS"] = f"https://{host}:{https}/{path}"
        elif protocol is IngestProtocol.SRT and srt:
            secret = "&passphrase=<passphrase>" if ingest.srt.passphrase_secret_ref is not None else ""
            urls["SRT"] = f"srt://{host}:{srt}?streamid={name}{secret}"
        elif protocol in (IngestProtocol.UDP, IngestProtocol.RTP) and udp:
            target = ingest.udp.multicast_group or host
            urls[protocol.value] = f"{'rtp' if protocol is IngestProtocol.RTP else 'udp'}://{target}:{udp}"
    return urls


PROGRAM_FORMATS = (
    ("hls", "{manifest}.m3u8"),
    ("hls-startover", "{manifest}.m3u8?startover"),
    ("dash", "{manifest}.mpd"),
    ("smooth", "{manifest}.ism/manifest"),
    ("hls-cmaf", "{manifest}.ism/manifest(format=m3u8-cmaf)"),
    ("hls-ts", "{manifest}.ism/manifest(format=m3u8-aapl)"),
    ("dash-cmaf", "{manifest}.ism/manifest(format=mpd-time-cmaf)"),
    ("dash-csf", "{manifest}.ism/manifest(format=mpd-time-csf)"),
)


def program_urls(base: str, *, locator: str, manifest: str) -> dict[str, str]:
    """Format -> URL of a program on a streaming endpoint at ``base`` (pure)."""
    return {name: f"{base}/{locator}/{pattern.format(manifest=manifest)}" for name, pattern in PROGRAM_FORMATS}

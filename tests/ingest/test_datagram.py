"""MPEG-TS over UDP and RTP: datagrams fed straight into the front end, the encoder side real."""

from __future__ import annotations

import ipaddress

import pytest
from fake_encoder import FakeEncoder
from helpers import languages_ts, make_contribution
from ts_packets import PMT_PID, pmt

from kubecast.ingest import metrics
from kubecast.ingest.config import ChannelRoute
from kubecast.ingest.mpegts.datagram import DatagramIngest
from kubecast.ingest.publication import Publications
from kubecast.media.contribution import CodecConfig, Kind

DATAGRAM = 7 * 188
A, B = ("192.0.2.10", 4000), ("192.0.2.11", 4000)


@pytest.fixture(scope="module")
def transport_stream(tmp_path_factory) -> bytes:
    return make_contribution(tmp_path_factory.mktemp("ts") / "contribution.ts", seconds=2, container="mpegts")


def datagrams(ts: bytes) -> list[bytes]:
    return [ts[i : i + DATAGRAM] for i in range(0, len(ts), DATAGRAM)]


def rtp(payloads: list[bytes], *, first_sequence: int = 65530, skip: int | None = None) -> list[bytes]:
    packets = []
    for index, payload in enumerate(payloads):
        if index == skip:
            continue
        sequence = (first_sequence + index) & 0xFFFF
        header = (
            bytes([0x80, 33]) + sequence.to_bytes(2, "big") + (index * 3000).to_bytes(4, "big") + b"\x00\x00\x00\x01"
        )
        packets.append(header + payload)
    return packets


@pytest.fixture
async def encoder():
    fake = FakeEncoder()
    address = await fake.start()
    yield fake, address
    await fake.stop()


def ingest_for(address, **route) -> DatagramIngest:
    route = ChannelRoute("cam", None, (address,), protocols=frozenset({"UDP", "RTP"}), **route)
    return DatagramIngest(route, Publications(), idle_timeout=0.3)


def counter(metric, *labels) -> float:
    return metric.labels(*labels)._value.get()


async def test_plain_udp_reaches_the_encoder_as_frames_and_ends_after_silence(encoder, transport_stream):
    fake, address = encoder
    ingest = ingest_for(address)
    for datagram in datagrams(transport_stream):
        ingest.datagram_received(datagram, A)
    await fake.wait(lambda: fake.contributions)
    ingest.last_datagram -= 1  # as if 1 s had passed without a datagram
    ingest.check_idle()
    await fake.wait(lambda: fake.ended == 1)
    assert fake.hello().protocol == "UDP"
    tags = fake.frames()
    assert sum(t.kind == Kind.VIDEO for t in tags) >= 55 and sum(t.kind == Kind.AUDIO for t in tags) >= 90


async def test_audio_pids_that_name_a_language_reach_the_encoder_as_tracks_and_one_without_does_not(encoder, tmp_path):
    fake, address = encoder
    ts = languages_ts(tmp_path / "languages.ts", seconds=2, tones={440: "eng", 1000: "spa", 2500: None})
    ingest = ingest_for(address)
    for datagram in datagrams(ts):
        ingest.datagram_received(datagram, A)
    await fake.wait(lambda: fake.contributions)
    ingest.last_datagram -= 1
    ingest.check_idle()
    await fake.wait(lambda: fake.ended == 1)
    configs = [r for r in fake.records() if isinstance(r, CodecConfig) and r.kind == Kind.AUDIO]
    assert {(c.track, c.language) for c in configs} == {(0, "eng"), (1, "spa")}  # (the link replays them)
    audio = [t for t in fake.frames() if t.kind == Kind.AUDIO]
    assert {t.track for t in audio} == {0, 1}, "the PID without a language repeats nothing and is not sent"
    assert abs(sum(t.track == 0 for t in audio) - sum(t.track == 1 for t in audio)) <= 2


async def test_rtp_lost_datagrams_are_counted_and_a_second_sender_is_ignored(encoder, transport_stream):
    fake, address = encoder
    ingest = ingest_for(address)
    lost_before = counter(metrics.TRANSPORT_ERRORS, "cam", "rtp_lost")
    refused_before = counter(metrics.REJECTED, "second_sender")
    packets = rtp(datagrams(transport_stream), skip=40)
    for index, packet in enumerate(packets):
        ingest.datagram_received(packet, A)
        if index % 10 == 0:
            ingest.datagram_received(b"\x47" + bytes(1315), B)
    await ingest.close()
    await fake.wait(lambda: fake.ended == 1)
    assert fake.hello().protocol == "RTP" and len(fake.contributions) == 1
    assert counter(metrics.TRANSPORT_ERRORS, "cam", "rtp_lost") - lost_before == 1, (
        "the one skipped datagram, across the sequence wrap"
    )
    assert counter(metrics.REJECTED, "second_sender") - refused_before == len(range(0, len(packets), 10))
    assert len(fake.frames(kind=Kind.VIDEO)) >= 50, "the rest of the contribution still arrives"


async def test_disallowed_sources_and_protocols_are_refused(encoder, transport_stream):
    fake, address = encoder
    guarded = ingest_for(address, allowed=(ipaddress.ip_network("10.0.0.0/8"),))
    for datagram in datagrams(transport_stream)[:20]:
        guarded.datagram_received(datagram, A)
    udp_only = DatagramIngest(
        ChannelRoute("cam", None, (address,), protocols=frozenset({"UDP"})), Publications(), idle_timeout=1
    )
    for packet in rtp(datagrams(transport_stream)[:20]):
        udp_only.datagram_received(packet, A)
    assert guarded.session is None and udp_only.session is None and not fake.contributions


async def test_garbage_and_a_timestamp_jump_end_only_that_contribution(encoder, transport_stream):
    fake, address = encoder
    ingest = ingest_for(address)
    sync_before = counter(metrics.TRANSPORT_ERRORS, "cam", "sync_losses")
    for datagram in datagrams(transport_stream)[:60]:
        ingest.datagram_received(datagram, A)
    ingest.datagram_received(bytes(range(256)) * 5, A)  # not TS at all
    for datagram in datagrams(retimed(transport_stream, hours=1)):
        ingest.datagram_received(datagram, A)
    await ingest.close()
    await fake.wait(lambda: fake.ended == len(fake.contributions) and len(fake.contributions) == 2)
    assert counter(metrics.TRANSPORT_ERRORS, "cam", "sync_losses") > sync_before


def retimed(ts: bytes, *, hours: int) -> bytes:
    """The stream with every PES timestamp moved ``hours`` later (as a publisher whose clock jumped)."""
    shift = hours * 3600 * 90_000
    data = bytearray(ts)
    for offset in range(0, len(data), 188):
        packet = data[offset : offset + 188]
        if not packet[1] & 0x40 or packet[1] & 0x1F == 0 and packet[2] == 0:  # only payload starts carry PES headers
            continue
        start = 4 + (packet[4] + 1 if packet[3] & 0x20 else 0)
        if packet[start : start + 3] != b"\x00\x00\x01" or start + 14 > 188:
            continue
        flags = packet[start + 7] >> 6
        for index in range(2 if flags == 3 else 1 if flags == 2 else 0):
            position = start + 9 + 5 * index
            value = _read_ts(packet, position) + shift
            _write_ts(packet, position, value & ((1 << 33) - 1))
        data[offset : offset + 188] = packet
    return bytes(data)


def _read_ts(packet, position) -> int:
    b = packet[position : position + 5]
    return ((b[0] >> 1) & 0x07) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1


def _write_ts(packet, position, value) -> None:
    prefix = packet[position] & 0xF0
    packet[position] = prefix | ((value >> 29) & 0x0E) | 1
    packet[position + 1] = (value >> 22) & 0xFF
    packet[position + 2] = ((value >> 14) & 0xFE) | 1
    packet[position + 3] = (value >> 7) & 0xFF
    packet[position + 4] = ((value << 1) & 0xFE) | 1


async def test_a_pmt_that_drops_the_video_mid_frame_ends_nothing_and_another_channel_carries_on(
    encoder, transport_stream
):
    """A crash class bench/fuzz.py found: a frame whose PID a new PMT no longer lists raised a
    KeyError out of the demuxer when it was finished, here when the contribution ended, which then
    never released the channel.  Now the frame is delivered, and both channels end cleanly."""
    fake, address = encoder
    publications = Publications()
    cam = DatagramIngest(
        ChannelRoute("cam", None, (address,), protocols=frozenset({"UDP"})), publications, idle_timeout=5
    )
    other = DatagramIngest(
        ChannelRoute("other", None, (address,), protocols=frozenset({"UDP"})), publications, idle_timeout=5
    )
    audio_only = pmt([(0x0F, 0x101)], counter=15)
    assert PMT_PID == 0x1000, "ffmpeg's PMT PID, which the stream below repeats"
    for datagram in datagrams(transport_stream):
        cam.datagram_received(datagram, A)
        other.datagram_received(datagram, B)
    cam.datagram_received(audio_only, A)  # the last video frame is still being assembled
    await cam.close()
    await other.close()
    await fake.wait(lambda: fake.ended == 2)
    assert not publications.live("cam") and not publications.live("other")
    videos = [len(fake.frames(index, Kind.VIDEO)) for index in range(2)]
    assert min(videos) >= 55, videos

"""Smooth Streaming sparse tracks of SCTE-35 in a push: the parser, and the real HTTP ingest.

No tool writes Smooth sparse tracks (ffmpeg's ismv muxer does not), so the sparse stream is built
per the specification (tests/smooth_sparse.py); its sections are threefive's."""

from __future__ import annotations

import asyncio
import base64
import logging
import struct

import aiohttp
import pytest
from fake_encoder import FakeEncoder
from helpers import threefive_splice_insert
from smooth_sparse import MFRA, live_manifest, message, sparse_fragment, sparse_moov, stream_header

from kubecast.ingest import metrics
from kubecast.ingest.config import ChannelRoute, IngestConfig
from kubecast.ingest.cues import CueGate
from kubecast.ingest.publication import Publications
from kubecast.ingest.push.http import HttpIngest
from kubecast.ingest.push.sparse import (
    SparseDeclaration,
    SparseError,
    SparseMessage,
    live_manifest_declarations,
    sparse_cue,
    sparse_message,
    sparse_tracks,
)
from kubecast.media.contribution import Cue, Frame, Kind
from kubecast.media.mp4 import Sample, box, init_segment_video, media_segment

HNS = 10_000_000
AVCC = bytes([1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 4, 0x67, 0x64, 0, 0x1F, 1, 0, 2, 0x68, 0xEE])


def section(event_id: int, *, out: bool, duration: float | None = None) -> bytes:
    return base64.b64decode(threefive_splice_insert(event_id=event_id, out=out, pts_seconds=5.0, duration=duration))


def test_the_live_manifest_declares_the_sparse_track_and_the_moov_times_it():
    declarations = live_manifest_declarations(live_manifest(track_id=3, timescale=90_000))
    assert declarations == [SparseDeclaration(name="scte35", scheme="urn:scte:scte35:2013:bin", track_id=3)]
    tracks = sparse_tracks(sparse_moov(track_id=3, timescale=90_000), declarations)
    assert [(t.track_id, t.name, t.scheme, t.timescale) for t in tracks.values()] == [
        (3, "scte35", "urn:scte:scte35:2013:bin", 90_000)
    ]
    # A declaration without a trackID names the one track that is neither video nor audio.
    unnumbered = [SparseDeclaration(name="ads", scheme="urn:scte:scte35:2013:bin", track_id=None)]
    assert list(sparse_tracks(sparse_moov(track_id=5), unnumbered)) == [5]
    with pytest.raises(SparseError, match="no metadata trak") as refused:
        sparse_tracks(sparse_moov(track_id=5), declarations)
    assert refused.value.reason == "init"


@pytest.mark.parametrize(
    "document, reason",
    [
        (b"<smil><textstream", "not XML"),
        (b'<!DOCTYPE x [<!ENTITY a "aaaa">]><smil/>', "DTD"),
        (
            b'<smil><textstream><param name="Subtype" value="DATA"/><param name="trackID" value="-1"/>'
            b"</textstream></smil>",
            "trackID",
        ),
    ],
)
def test_a_broken_live_manifest_is_refused(document, reason):
    manifest = live_manifest()
    broken = box(b"uuid", manifest[8:28], document)
    with pytest.raises(SparseError, match=reason) as refused:
        live_manifest_declarations(broken)
    assert refused.value.reason == "manifest"


def test_captions_in_the_live_manifest_are_not_sparse_cue_tracks():
    document = b'<smil><textstream><param name="Subtype" value="CAPT"/></textstream></smil>'
    assert live_manifest_declarations(box(b"uuid", live_manifest()[8:28], document)) == []


def test_a_message_is_timed_by_its_fragment_and_delta_and_a_bare_section_is_read_too():
    out = section(7, out=True, duration=30.0)
    assert sparse_message(
        message(out, delta=5 * HNS), scheme="urn:scte:scte35:2013:bin", time=20 * HNS, duration=0
    ) == SparseMessage(time=25 * HNS, duration=None, section=out)
    assert sparse_message(out, scheme="urn:scte:scte35:2013:bin", time=20 * HNS, duration=HNS) == SparseMessage(
        time=20 * HNS, duration=HNS, section=out
    )
    for data, scheme, reason in [
        (message(out), "urn:example:id3", "scheme"),
        (struct.pack(">III", 2, 1, 0) + out, "urn:scte:scte35:2013:bin", "sparse"),
        (b"\x00\x00\x00", "urn:scte:scte35:2013:bin", "sparse"),
    ]:
        with pytest.raises(SparseError) as refused:
            sparse_message(data, scheme=scheme, time=0, duration=0)
        assert refused.value.reason == reason


def test_the_cue_of_a_message_is_judged_like_any_other():
    gate = CueGate()
    out = section(7, out=True, duration=30.0)
    cue = sparse_cue(gate, SparseMessage(25 * HNS, None, out), timescale=HNS, now=24 * HNS)
    assert cue == Cue(HNS, 25 * HNS, True, 30 * HNS, 7, out), "the section's duration, the fragment's time"
    back = section(7, out=False)
    assert sparse_cue(gate, SparseMessage(55 * HNS, 5 * HNS, back), timescale=HNS, now=50 * HNS) == Cue(
        HNS, 55 * HNS, False, 5 * HNS, 7, back
    )
    broken = out[:-1] + bytes([out[-1] ^ 1])
    assert sparse_cue(gate, SparseMessage(25 * HNS, None, broken), timescale=HNS, now=24 * HNS) is None
    assert sparse_cue(gate, SparseMessage(5 * HNS, None, out), timescale=HNS, now=24 * HNS) is None
    assert sparse_cue(gate, SparseMessage(5 * HNS, None, out), timescale=HNS, now=None) is None
    assert [reason for reason, _ in gate.refusals] == ["crc", "past", "early"]


@pytest.fixture
async def ingest():
    fake = FakeEncoder()
    address = await fake.start()
    routes = {"cam": ChannelRoute("cam", None, (address,), protocols=frozenset({"FragmentedMP4"}))}
    server = HttpIngest(IngestConfig(channels=routes, idle_timeout=5), Publications())
    port = await server.start("127.0.0.1", 0)
    yield fake, f"http://127.0.0.1:{port}/ingest/cam.isml"
    await server.stop()
    await fake.stop()


FRAME = HNS // 30


def video_fragment(number: int) -> bytes:
    """One second of 30 pictures (fake bytes: the ingest does not decode them) from ``number`` s."""
    samples = [Sample(FRAME, 4, keyframe=index == 0) for index in range(30)]
    segment = media_segment(
        sequence_number=number + 1, base_decode_time=number * 30 * FRAME, samples=samples, data=bytes(4 * 30)
    )
    return segment[struct.unpack_from(">I", segment)[0] :]  # without the styp: a Smooth push has none


def rejected(reason: str) -> float:
    return metrics.CUES_REJECTED.labels("cam", reason)._value.get()


async def test_a_sparse_push_beside_the_video_becomes_cues_and_broken_messages_are_dropped(ingest, caplog):
    """The video is one POST, the sparse track another (as AMS encoders send them).  Two good cues
    reach the encoder on the push's clock; a message of an unknown version, a damaged section, a
    fragment whose sample lies outside its mdat and a splice already past are each dropped with a
    log line and a metric; a resent fragment is dropped quietly; every picture arrives."""
    fake, url = ingest
    seconds = 4
    video_sent, sparse_sent = asyncio.Event(), asyncio.Event()
    header = init_segment_video(width=320, height=240, timescale=HNS, avcc=AVCC)

    async def video():
        yield header + video_fragment(0) + video_fragment(1)
        await sparse_sent.wait()
        for number in range(2, seconds):
            yield video_fragment(number)
        yield MFRA
        video_sent.set()

    out, back = section(7, out=True, duration=30.0), section(7, out=False)
    broken = out[:-1] + bytes([out[-1] ^ 1])
    good = sparse_fragment(message(out, delta=HNS // 2), time=2 * HNS, duration=0, sequence=2)
    outside = bytearray(sparse_fragment(message(back), time=int(2.4 * HNS), duration=0, sequence=5))
    struct.pack_into(">I", outside, outside.index(b"trun") + 20, 999)  # the one sample's size
    sparse = [
        sparse_fragment(message(out), time=HNS // 2, duration=0),  # over 1 s before the newest frame (2 s)
        good,
        sparse_fragment(struct.pack(">III", 2, 3, 0) + back, time=int(2.1 * HNS), duration=0, sequence=3),
        sparse_fragment(message(broken), time=int(2.2 * HNS), duration=0, sequence=4),
        bytes(outside),
        good,  # resent
        sparse_fragment(back, time=3 * HNS, duration=HNS, sequence=6),  # the bare section
    ]
    before = {reason: rejected(reason) for reason in ("sparse", "crc", "fragment", "past")}
    caplog.set_level(logging.WARNING, "kubecast.ingest")
    async with aiohttp.ClientSession() as client:
        pushing = asyncio.ensure_future(client.post(f"{url}/Streams(video)", data=video()))
        await fake.wait(lambda: len(fake.frames(kind=Kind.VIDEO)) >= 60 if fake.contributions else False)
        response = await client.post(f"{url}/Streams(scte35)", data=stream_header() + b"".join(sparse) + MFRA)
        assert response.status == 200, await response.text()
        sparse_sent.set()
        assert (await pushing).status == 200
    await fake.wait(lambda: fake.ended == 1)
    cues = [record for record in fake.records() if isinstance(record, Cue)]
    assert cues == [
        Cue(HNS, int(2.5 * HNS), True, 30 * HNS, 7, out),
        Cue(HNS, 3 * HNS, False, HNS, 7, back),
    ]
    assert len([r for r in fake.records() if isinstance(r, Frame) and r.kind == Kind.VIDEO]) == seconds * 30
    assert {reason: rejected(reason) - before[reason] for reason in before} == {
        "sparse": 1,
        "crc": 1,
        "fragment": 1,
        "past": 1,
    }
    warnings = [r.getMessage() for r in caplog.records if "dropping an ad marker" in r.getMessage()]
    assert len(warnings) == 4 and any("version 2" in w for w in warnings), warnings


async def test_a_sparse_push_without_media_or_of_another_scheme_costs_only_its_messages(ingest):
    fake, url = ingest
    out = section(9, out=True, duration=10.0)
    before = {reason: rejected(reason) for reason in ("early", "scheme")}
    async with aiohttp.ClientSession() as client:
        alone = await client.post(
            f"{url}/Streams(scte35)", data=stream_header() + sparse_fragment(message(out), time=HNS, duration=0) + MFRA
        )
        other = await client.post(
            f"{url}/Streams(id3)",
            data=stream_header(scheme="https://aomedia.org/emsg/ID3")
            + sparse_fragment(message(b"ID3"), time=HNS, duration=0)
            + MFRA,
        )
    assert (alone.status, other.status) == (200, 200)
    assert {reason: rejected(reason) - before[reason] for reason in before} == {"early": 1, "scheme": 1}
    assert fake.contributions == [], "a sparse track alone is no contribution"

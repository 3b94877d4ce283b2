"""Fuzz targets: every parser that reads bytes a stranger sent, driven the way the server drives it.

Each target takes one input and may let through only the errors its parser declares: those are
how the server refuses a connection or a request with a clear reason.  Anything else escaping a
target is a crash (in the server it would be an unhandled exception in a task that serves one
peer, or a 5xx), and the fuzzer reports it.  Targets run under atheris (``bench/fuzz.py``) and
plainly over the committed corpus (``tests/fuzz/test_corpus.py``); each corpus folder is named
after its target, and its first files come from real captures (``tests/fuzz/make_seeds.py``).

Targets drive the real per-connection objects where those hold no sockets (``RtmpSession``,
``PushStream``, ``DatagramIngest``, the endpoint's aiohttp application), so a crash in the glue
between parser and server is found too, not only in the parser.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import logging
import shutil
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from timeline_fixtures import ladder_timeline
from yarl import URL

from kubecast.api.loader import ManifestError, load_text
from kubecast.endpoint.access import AccessPolicy, install
from kubecast.endpoint.app import make_app
from kubecast.ingest.config import ChannelRoute, IngestConfig
from kubecast.ingest.cues import CueGate
from kubecast.ingest.metadata import MetadataGate
from kubecast.ingest.mpegts.datagram import DatagramIngest
from kubecast.ingest.mpegts.srt import channel_of
from kubecast.ingest.publication import Busy, Publications
from kubecast.ingest.push.http import HttpIngest, PushStream, RequestBody
from kubecast.ingest.rtmp import amf0, chunks
from kubecast.ingest.rtmp.cuepoints import CuePointError, parse_cue_point
from kubecast.ingest.rtmp.handshake import HandshakeError, server_response
from kubecast.ingest.rtmp.server import check_codec, cue_record, media_records
from kubecast.ingest.rtmp.session import CueData, Media, ProtocolError, PublishRequest, RtmpSession
from kubecast.ingest.rtmp.textdata import text_record
from kubecast.ingest.timestamps import TimestampGuard
from kubecast.media.captions import (
    MAX_CC_COUNT,
    CaptionError,
    cc_data_of_sample,
    channels_of,
    insert_sei,
    sei_nal,
)
from kubecast.media.contribution import CodecConfig, Kind, RecordError, RecordReader, encode_record
from kubecast.media.flv import FlvError
from kubecast.media.id3 import Id3Error, split_tags
from kubecast.media.mp4 import (
    Mp4Error,
    Sample,
    aac_codec_string,
    avc_codec_string,
    init_segment_video,
    media_segment,
    parse_media_segment,
)
from kubecast.media.mpegts import TsDemuxer
from kubecast.media.scte35 import (
    MAX_SECTION,
    PTS_WRAP,
    Scte35Error,
    crc32_mpeg2,
    parse_splice_info,
    splice_insert_section,
)
from kubecast.media.timeline import Timeline
from kubecast.media.tokens import sign
from kubecast.media.tsmux import TsTag, mux_segment
from kubecast.storage import ProgramRecord, Store, layout

CHANNEL = "news"
ROUTE = ChannelRoute(
    name=CHANNEL, key=None, encoders=(), protocols=frozenset({"RTMP", "FragmentedMP4", "CMAF", "UDP", "RTP"})
)
TS_DATAGRAM = 1316  # what encoders send over UDP: 7 packets


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], None]
    declared: tuple[type[BaseException], ...]  # what the parser raises to refuse its input
    about: str

    def __call__(self, data: bytes) -> None:
        try:
            self.run(data)
        except self.declared:
            pass


def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[offset : offset + size] for offset in range(0, len(data), size)] or [b""]


# -- RTMP ------------------------------------------------------------------------------------


def rtmp_handshake(data: bytes) -> None:
    answer = server_response(data)
    assert len(answer) == 1 + 2 * 1536, "S0 + S1 + S2 has a fixed size"


def rtmp_chunks(data: bytes) -> None:
    """The chunk stream read whole and in pieces (cut wherever 509-byte steps fall: inside headers,
    extended timestamps and bodies as the input varies) must give the same messages."""
    whole = chunks.ChunkReader().feed(data)
    reader = chunks.ChunkReader()
    pieces: list[chunks.Message] = []
    for piece in _pieces(data, 509):
        pieces += reader.feed(piece)
    assert pieces == whole, "the chunk stream depends on how the bytes were cut"


def amf0_values(data: bytes) -> None:
    """Whatever decodes encodes again (the session re-encodes onMetaData it forwards)."""
    values = amf0.decode_all(data)
    amf0.encode_all(*values)


def rtmp_session(data: bytes) -> None:
    """A publisher's bytes from the first handshake byte on, through ``RtmpSession`` and the
    server's per-message checks, as ``IngestServer._run`` applies them."""
    session = RtmpSession()
    clock = TimestampGuard()
    for piece in _pieces(data, 4096):
        for event in session.feed(piece):
            if isinstance(event, PublishRequest):
                session.accept()
            elif isinstance(event, Media):
                if check_codec(event) is not None:
                    return  # refused with a clear status
                kind = {chunks.AUDIO: "audio", chunks.VIDEO: "video"}.get(event.type)
                if kind and clock.check(kind, event.timestamp):
                    return  # a clock jump ends the contribution
                try:
                    records = media_records(event)
                except FlvError:
                    return  # the server closes that connection with this reason
                for record in records:
                    encode_record(record)
            elif isinstance(event, CueData):
                cue = cue_record(CueGate(), event, newest=event.timestamp)
                if cue is not None:
                    encode_record(cue)
        session.take_outgoing()


def rtmp_cue_point(data: bytes) -> None:
    """An ``onCuePoint`` data message body, as the RTMP session hands it over: an ad marker whose
    section (received or built) reads back as the splice it names, or None."""
    point = parse_cue_point(data, timestamp=1000)
    if point is not None:
        splice = parse_splice_info(point.section).splice
        assert splice is not None and (splice.out, splice.event_id) == (point.out, point.event_id), (
            "a cue point's section does not say its splice"
        )


# -- FLV -------------------------------------------------------------------------------------


def flv_tags(data: bytes) -> None:
    """RTMP audio and video message bodies (FLV tag bodies) into the records the ingest hands to
    the encoder.  The input is walked as an FLV file, so that real captures seed the target; the
    walk itself only splits bytes (no pipeline code reads FLV files)."""
    position = 13 if data[:3] == b"FLV" else 0
    while position + 11 <= len(data):
        tag_type, size = data[position] & 0x1F, int.from_bytes(data[position + 1 : position + 4], "big")
        timestamp = int.from_bytes(data[position + 4 : position + 7], "big") | data[position + 7] << 24
        body = data[position + 11 : position + 11 + size]
        position += 11 + size + 4
        if tag_type not in (chunks.AUDIO, chunks.VIDEO) or not body:
            continue
        for record in media_records(Media(tag_type, timestamp, body)):
            if isinstance(record, CodecConfig):
                try:
                    (avc_codec_string if record.kind == Kind.VIDEO else aac_codec_string)(record.data)
                except Mp4Error:
                    pass  # the encoder refuses the contribution with this reason
            encode_record(record)


def contribution_records(data: bytes) -> None:
    """The ingest -> encoder hand-over as the encoder reads it, whole and in pieces."""
    whole, pieces = RecordReader(), RecordReader()
    whole.feed(data)
    expected = list(whole.records())
    received = []
    for piece in _pieces(data, 777):
        pieces.feed(piece)
        received += list(pieces.records())
    assert received == expected, "the records depend on how the bytes were cut"
    assert b"".join(encode_record(record) for record in expected) == data[: len(data) - whole.pending]


# -- ID3 timed metadata -----------------------------------------------------------------------

_NO_PARAMETER_SETS = b"\x01\x42\x00\x1e\xff\xe0\x00"  # an avcC record with no SPS and no PPS


def id3_tags(data: bytes) -> None:
    """A timed metadata PES payload as the TS demuxer hands it over: checked by the ingest's gate;
    what it accepts crosses the hand-over record and a TS segment, and our demuxer reads it back
    unchanged."""
    tags = split_tags(data)
    joined = b"".join(tags)
    assert data.startswith(joined) and not data[len(joined) :].strip(b"\x00"), "a tag lost or made up"
    item = MetadataGate().id3(data, timescale=90_000, time=90_000, now=90_000)
    assert item is not None, "the gate refuses what the parser accepts"
    reader = RecordReader()
    reader.feed(encode_record(item))
    assert list(reader.records()) == [item]
    segment = mux_segment(avcc=_NO_PARAMETER_SETS, video_timescale=90_000, video=[], id3=[TsTag(item.time, data)])
    demuxer = TsDemuxer()
    frames = demuxer.feed(segment) + demuxer.flush()
    assert [(f.kind, f.pts, f.data) for f in frames] == [("id3", item.time, data)], "the segment changed the tags"


def rtmp_text_data(data: bytes) -> None:
    """An ``onTextData`` data message body, as the RTMP session hands it over: timed text whose
    tag, when the gate takes it, is whole ID3."""
    item = text_record(MetadataGate(), data, timestamp=1000, newest=1000)
    if item is not None:
        assert split_tags(item.data) == [item.data], "a text tag that is not one whole ID3 tag"


# -- SCTE-35 ---------------------------------------------------------------------------------


def _sealed(data: bytes) -> bytes:
    """``data`` as a section whose ``section_length`` and ``CRC_32`` (its last 4 bytes) are right.

    Mutations almost never keep a CRC-32 right, so on the raw input alone the fuzzer stays at the
    CRC check: a million executions found 7 edges beyond the seeds' and none in the command or
    descriptor parsers.  The raw input still exercises the length and CRC refusals."""
    payload = data[:-4]
    section_length = len(payload) + 4 - 3
    if len(payload) < 3 or 3 + section_length > MAX_SECTION:
        return data
    header = bytes([payload[0], payload[1] & 0xF0 | section_length >> 8, section_length & 0xFF])
    section = header + payload[3:]
    return section + struct.pack(">I", crc32_mpeg2(section))


def _splice_again(section: bytes) -> None:
    splice = parse_splice_info(section).splice
    if splice is None:
        return
    # As the TS ingest takes it (at the splice's own time: the gate's clock checks pass): a cue
    # the gate lets through reaches the encoders in a record, and reads back the same.
    cue = CueGate().section(section, timescale=90_000, now=splice.pts or 0, to_time=lambda pts: pts)
    if cue is not None:
        reader = RecordReader()
        reader.feed(encode_record(cue))
        assert list(reader.records()) == [cue], "a cue does not survive its record"
    # A splice_insert's break_duration has 33 bits, a segmentation_duration 40: the builder clamps.
    duration = None if splice.duration is None else min(splice.duration, PTS_WRAP - 1)
    again = splice_insert_section(event_id=splice.event_id, out=splice.out, pts=splice.pts, duration=duration)
    assert parse_splice_info(again).splice == dataclasses.replace(splice, duration=duration), (
        "a splice does not survive being written again"
    )


def scte35_section(data: bytes) -> None:
    """A splice_info_section as the TS demuxer and the RTMP session hand it over, as it came and
    sealed (``_sealed``): through the ingest's gate into a record to the encoders, and written
    again as a splice_insert (how a cue that came without a section reaches manifests)."""
    with contextlib.suppress(Scte35Error):
        _splice_again(data)
    _splice_again(_sealed(data))


# -- fragmented MP4 push (Smooth, CMAF) -------------------------------------------------------


def captions(data: bytes) -> None:
    """An access unit's SEI read for its CEA-608/708 caption data, as pass-through reads every
    sample; what it finds, written back as the ladder writes it, reads the same."""
    triplets = cc_data_of_sample(data)
    channels_of(triplets)
    whole = triplets[: min(len(triplets) // 3, MAX_CC_COUNT) * 3]
    if whole:
        assert cc_data_of_sample(insert_sei(b"", sei_nal(whole))) == whole


def _push_stream(protocol: str) -> PushStream:
    ingest = HttpIngest(IngestConfig(channels={CHANNEL: ROUTE}), Publications())
    return PushStream(ingest, ROUTE, "fuzz", protocol, "127.0.0.1")


def fmp4_push(data: bytes) -> None:
    """A Smooth POST body (ftyp, moov, moof/mdat ...) through the ingest's ``PushStream``, in the
    pieces a chunked POST arrives in; then the same bytes as a stored segment, as the packager reads it."""
    stream = _push_stream("FragmentedMP4")
    body = RequestBody()
    for piece in _pieces(data, 1500):
        if stream.feed(body, piece):
            break
    try:
        parse_media_segment(data)  # what the packager applies to a stored segment
    except Mp4Error:
        pass


def smooth_sparse(data: bytes) -> None:
    """A Smooth sparse-track POST body (live server manifest box, moov, moof/mdat of SCTE-35
    messages) through ``PushStream``, the channel's newest frame at 1 s so that each message's cue
    is judged and a good one forwarded; a broken message may only be refused (counted), never raise
    past the stream."""
    stream = _push_stream("FragmentedMP4")
    stream.ingest.publications.join(ROUTE, name="video", session_id="fuzz", protocol="FragmentedMP4")
    stream.ingest.saw(CHANNEL, 10_000_000, 10_000_000)
    body = RequestBody()
    for piece in _pieces(data, 1500):
        if stream.feed(body, piece):
            break


# -- MPEG-TS over UDP, RTP ---------------------------------------------------------------------

_LOOP: asyncio.AbstractEventLoop | None = None


def _loop() -> asyncio.AbstractEventLoop:
    global _LOOP
    if _LOOP is None:
        _LOOP = asyncio.new_event_loop()
        atexit.register(_LOOP.close)
    return _LOOP


def _datagrams(datagrams: list[bytes]) -> None:
    async def run() -> None:
        ingest = DatagramIngest(ROUTE, Publications(), idle_timeout=15)
        for datagram in datagrams:
            ingest.datagram_received(datagram, ("127.0.0.1", 5000))
        await ingest.close()

    _loop().run_until_complete(run())


def mpegts_udp(data: bytes) -> None:
    """A transport stream as UDP datagrams of 7 packets into the channel's datagram port."""
    _datagrams(_pieces(data, TS_DATAGRAM))


def rtp_datagrams(data: bytes) -> None:
    """Datagrams, each preceded by its 16-bit length, into a channel's datagram port (RTP when
    the first one looks like RTP, as on the wire)."""
    datagrams, offset = [], 0
    while offset + 2 <= len(data):
        (size,) = struct.unpack_from(">H", data, offset)
        datagrams.append(data[offset + 2 : offset + 2 + size])
        offset += 2 + size
    _datagrams(datagrams)


# -- SRT stream id ---------------------------------------------------------------------------


def srt_stream_id(data: bytes) -> None:
    """The stream id libsrt hands the listen callback, decoded as the callback does."""
    channel = channel_of(data.decode(errors="replace"))
    assert channel is None or isinstance(channel, str)


# -- the endpoint's URLs ---------------------------------------------------------------------

SIGNING_KEYS = {"fuzz": b"fuzzing key"}
TOKEN_PLACEHOLDER = "{token}"  # a seed's placeholder for a valid token, so signed URLs reach their handlers
AVCC = bytes([1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 4, 0x67, 0x64, 0, 0x1F, 1, 0, 2, 0x68, 0xEE])


def _timeline(state: str) -> Timeline:
    return ladder_timeline(state=state)  # channel "news", segments 10-15 of 720p, 360p and audio


async def _fill(store: Store) -> None:
    record = ProgramRecord(
        name="evening",
        channel=CHANNEL,
        locator="evening-news",
        manifest_name="show",
        archive_window_seconds=3600,
        state="Stopped",
    )
    await store.put(layout.locator_key("evening-news"), record.to_json())
    await store.put(layout.program_timeline_key(CHANNEL, "evening"), _timeline("stopped").to_json())
    await store.put(layout.timeline_key(CHANNEL), _timeline("live").to_json())
    segment = media_segment(
        sequence_number=12, base_decode_time=12 * 180000, samples=[Sample(180000, 100)], data=b"s" * 100
    )
    for number in (10, 12, 15):
        await store.put(layout.segment_key(CHANNEL, "A", "v720", number), segment)
    await store.put(
        layout.init_key(CHANNEL, "A", "v720", "init-aa.mp4"),
        init_segment_video(width=1280, height=720, timescale=90000, avcc=AVCC),
    )


@dataclass
class _Endpoint:
    plain: web.Application
    signed: web.Application
    token: str
    # One mocked request per application, cloned with each target: building the mocks is most of
    # the cost of a request otherwise (clone is also how the signed-URL middleware re-routes).
    templates: dict[str, web.Request]


_ENDPOINT: _Endpoint | None = None


def _endpoint() -> _Endpoint:
    global _ENDPOINT
    if _ENDPOINT is None:
        folder = tempfile.mkdtemp(prefix="kubecast-fuzz-")
        atexit.register(shutil.rmtree, folder, True)
        store = Store(folder)
        _loop().run_until_complete(_fill(store))
        apps = []
        for policy in (AccessPolicy(), AccessPolicy(signing_keys=SIGNING_KEYS)):
            app = make_app(store)
            install(app, policy)
            app.freeze()
            apps.append(app)
        token = sign(
            key=SIGNING_KEYS["fuzz"], key_id="fuzz", scope="prefix:/", expires=int(time.time()) + 10 * 365 * 86400
        )
        templates = {
            "plain": make_mocked_request("GET", "/", app=apps[0]),
            "signed": make_mocked_request("GET", "/", app=apps[1]),
        }
        _ENDPOINT = _Endpoint(apps[0], apps[1], token, templates)
        logging.getLogger("kubecast.endpoint").setLevel(logging.CRITICAL)  # refusals are logged: quiet
    return _ENDPOINT


class ServerError(AssertionError):
    """The endpoint answered a request with a 5xx: an exception escaped a handler."""


def endpoint_url(data: bytes) -> None:
    """A GET of any request target (path and query) on an endpoint serving a live channel and a
    stopped program; signed URLs (``/t/<token>/...``) on one that requires them.  Every answer
    must be below 500: the middleware turns an escaped exception into a 503, which is the crash."""
    endpoint = _endpoint()
    target = data.decode("latin-1").replace(TOKEN_PLACEHOLDER, endpoint.token)
    if not target.startswith("/"):
        target = "/" + target
    if any(not 0x21 <= ord(char) <= 0x7E for char in target):
        return  # a request target is visible ASCII; the HTTP parser refuses anything else before routing
    path, _, query = target.partition("#")[0].partition("?")
    signed = target.startswith("/t/")
    app = endpoint.signed if signed else endpoint.plain
    try:
        url = URL.build(path=path, query_string=query, encoded=True)  # what aiohttp's HTTP parser builds
    except ValueError:
        return
    request = endpoint.templates["signed" if signed else "plain"].clone(rel_url=url)
    response = _loop().run_until_complete(app._handle(request))
    if response.status >= 500:
        raise ServerError(f"GET {target!r} answered {response.status}")


# -- resource documents ----------------------------------------------------------------------


def resource_yaml(data: bytes) -> None:
    """Arbitrary YAML into the Channel / Program / StreamingEndpoint models (``kubecast up -f``)."""
    load_text(data.decode(errors="replace"), "fuzz.yaml")


TARGETS: dict[str, Target] = {
    target.name: target
    for target in (
        Target("rtmp_handshake", rtmp_handshake, (HandshakeError,), "C0+C1 -> S0+S1+S2 (simple and digest forms)"),
        Target("rtmp_chunks", rtmp_chunks, (chunks.ChunkError,), "the chunk stream, whole and in pieces"),
        Target("amf0", amf0_values, (amf0.AmfError,), "AMF0 commands and metadata"),
        Target(
            "rtmp_session",
            rtmp_session,
            (ProtocolError,),
            "a publisher's bytes through RtmpSession and the server's checks",
        ),
        Target(
            "rtmp_cuepoint",
            rtmp_cue_point,
            (CuePointError,),
            "RTMP onCuePoint data messages (YouTube, Adobe SCTE-35, Adobe SpliceOut/In) into ad markers",
        ),
        Target("flv", flv_tags, (FlvError,), "RTMP's FLV tag bodies into contribution records"),
        Target(
            "contribution",
            contribution_records,
            (RecordError,),
            "the ingest -> encoder records, as the encoder reads them",
        ),
        Target("id3", id3_tags, (Id3Error,), "ID3 timed metadata: checked, handed over, written to TS, read back"),
        Target("rtmp_textdata", rtmp_text_data, (), "RTMP onTextData messages into ID3 timed metadata"),
        Target("scte35", scte35_section, (Scte35Error,), "SCTE-35 splice_info_sections (TS PID, RTMP onCuePoint)"),
        Target(
            "captions", captions, (CaptionError,), "an access unit's SEI for closed captions, read and written back"
        ),
        Target(
            "fmp4_push", fmp4_push, (Mp4Error, Busy), "Smooth / CMAF push bodies through PushStream; stored segments"
        ),
        Target(
            "smooth_sparse",
            smooth_sparse,
            (Mp4Error, Busy),
            "Smooth sparse tracks of SCTE-35 (AMS timed metadata) through PushStream into ad markers",
        ),
        Target(
            "mpegts", mpegts_udp, (), "MPEG-TS datagrams through the datagram ingest (never raises: damage is counted)"
        ),
        Target("rtp", rtp_datagrams, (), "RTP datagrams through the datagram ingest"),
        Target("srt_stream_id", srt_stream_id, (), "the SRT stream id, plain and #!:: access-control forms"),
        Target("endpoint_url", endpoint_url, (), "every endpoint URL form, plain and signed: 4xx, never 5xx"),
        Target("resource_yaml", resource_yaml, (ManifestError,), "YAML documents into the resource models"),
    )
}

"""The RTMP ingest server in process, with Debian's ffmpeg publishing into it."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import struct
import subprocess

import pytest
from fake_encoder import FakeEncoder
from flvfile import FLV_HEADER, FlvReader, FlvTag, TagType
from helpers import contribution_command, threefive_splice_insert

from kubecast.ingest import metrics
from kubecast.ingest.config import ChannelRoute, IngestConfig
from kubecast.ingest.rtmp import amf0, chunks
from kubecast.ingest.rtmp.handshake import HANDSHAKE_SIZE, client_c1
from kubecast.ingest.rtmp.server import IngestServer
from kubecast.ingest.timestamps import TimestampGuard
from kubecast.media.contribution import Cue, Kind


@pytest.fixture
async def ingest():
    fake = FakeEncoder()
    address = await fake.start()
    server = IngestServer(
        IngestConfig(
            channels={
                "news": ChannelRoute("news", "k3y", (address,)),
                "other": ChannelRoute("other", "k3y", (address,)),
            }
        )
    )
    host, port = await server.start("127.0.0.1", 0)
    yield fake, f"rtmp://{host}:{port}/live"
    await server.stop()
    await fake.stop()


def jumped_flv(path, *, seconds: float) -> bytes:
    """Two seconds of ffmpeg's FLV with every tag from the second one on moved by ``seconds``,
    as an encoder whose clock broke sends it."""
    command = contribution_command(str(path), seconds=2, size="160x90", frequency=None, realtime=False)
    subprocess.run(command, check=True, timeout=60)
    reader = FlvReader()
    reader.feed(path.read_bytes())
    tags = [
        dataclasses.replace(tag, timestamp=tag.timestamp + int(seconds * 1000)) if tag.timestamp >= 1000 else tag
        for tag in reader.tags()
    ]
    return FLV_HEADER + b"".join(tag.encode() for tag in tags)


async def publish(flv: bytes, url: str, *, realtime: bool = False) -> int:
    code, _ = await publish_saying(flv, url, realtime=realtime)
    return code


async def publish_saying(flv: bytes, url: str, *, realtime: bool = False) -> tuple[int, str]:
    """ffmpeg's exit code and what it printed (a refused publisher's reason)."""
    pace = ["-re"] if realtime else []
    process = await asyncio.create_subprocess_exec(
        "ffmpeg",
        "-v",
        "error",
        *pace,
        "-f",
        "flv",
        "-i",
        "pipe:0",
        "-c",
        "copy",
        "-f",
        "flv",
        url,
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(flv), 60)
    return process.returncode or 0, stderr.decode(errors="replace")


def test_the_clock_rule_every_ingest_applies():
    guard = TimestampGuard()
    assert [guard.check("video", ms) for ms in (0, 33, 20, 2000)] == [None] * 4, (
        "small steps back (reordering) are fine"
    )
    assert "jumped from 2000 ms to 500 ms" in guard.check("video", 500)
    assert "jumped from 2000 ms to 3602000 ms" in guard.check("video", 3_602_000)
    assert guard.check("audio", 3_602_000) is None, "each kind keeps its own clock"


# ffmpeg (the CLI) rewrites a backwards step into a monotonic one before it sends, so only the
# jump ahead can come from it; the backwards rule is the same TimestampGuard, tested above.
@pytest.mark.parametrize("seconds", [3600, 11])
async def test_a_clock_that_jumps_ends_that_contribution_only(ingest, tmp_path, seconds):
    fake, base = ingest
    jumps = metrics.PROTOCOL_ERRORS.labels("timestamp_jump")._value.get()
    await publish(
        jumped_flv(tmp_path / "in.flv", seconds=seconds), f"{base}/news/k3y"
    )  # (it may have sent everything before it is cut off)
    await fake.wait(lambda: fake.ended == 1)
    assert metrics.PROTOCOL_ERRORS.labels("timestamp_jump")._value.get() == jumps + 1
    frames = [t.decode_time for t in fake.frames(0, Kind.VIDEO)]
    assert {t.timescale for t in fake.frames(0)} == {1000}, "RTMP's milliseconds stay milliseconds"
    assert frames and max(frames) < 1000, "nothing after the jump reached the encoder"
    whole = tmp_path / "whole.flv"
    assert await publish(jumped_flv(whole, seconds=0), f"{base}/other/k3y") == 0, (
        "another channel (or the reconnect) is taken as usual"
    )
    await fake.wait(lambda: fake.ended == 2)
    assert len(fake.frames(1, Kind.VIDEO)) >= 60


async def test_a_command_that_broke_the_amf0_parser_closes_only_its_connection(ingest, tmp_path):
    """A crash class bench/fuzz.py found: an AMF0 date out of datetime's range escaped the session
    as an OverflowError, not a protocol error.  Now it is one: logged, counted, that connection
    closed, while another channel's publisher carries on."""
    fake, base = ingest
    errors = metrics.PROTOCOL_ERRORS.labels("protocol")._value.get()
    good = asyncio.ensure_future(
        publish(jumped_flv(tmp_path / "good.flv", seconds=0), f"{base}/other/k3y", realtime=True)
    )
    await fake.wait(lambda: fake.contributions)
    host, port = base.removeprefix("rtmp://").split("/")[0].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"\x03" + client_c1(digest=False))
    await asyncio.wait_for(reader.readexactly(1 + 2 * HANDSHAKE_SIZE), 10)
    body = amf0.encode_all("connect", 1) + b"\x0b" + struct.pack(">dh", 1e300, 0)
    writer.write(
        bytes(HANDSHAKE_SIZE)
        + chunks.encode_message(chunks.Message(chunks.COMMAND_AMF0, 0, 0, body), chunk_size=128, csid=3)
    )
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 10) == b"", "the server closes the connection"
    writer.close()
    assert metrics.PROTOCOL_ERRORS.labels("protocol")._value.get() == errors + 1
    assert await good == 0
    await fake.wait(lambda: fake.ended == 1)
    assert len(fake.frames(0, Kind.VIDEO)) >= 60


async def publish_tags(url: str, tags: list) -> None:
    """A minimal RTMP publisher in Python (handshake, connect, createStream, publish, then each
    FLV tag as a message), for what ffmpeg cannot send: it drops onCuePoint data messages."""
    host, port = url.removeprefix("rtmp://").split("/")[0].split(":")
    app, name = url.split("/", 3)[3].split("/", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    replies = chunks.ChunkReader()

    async def status() -> str:
        while True:
            data = await asyncio.wait_for(reader.read(65536), 10)
            assert data, "the ingest closed the connection"
            for reply in replies.feed(data):
                values = amf0.decode_all(reply.body) if reply.type == chunks.COMMAND_AMF0 else []
                if values[:1] == ["onStatus"]:
                    return str(values[3]["code"])
                if values[:2] == ["_result", 2]:
                    return "created"

    def command(stream: int, *values: object) -> bytes:
        body = amf0.encode_all(*values)
        return chunks.encode_message(chunks.Message(chunks.COMMAND_AMF0, stream, 0, body), chunk_size=128, csid=3)

    writer.write(b"\x03" + client_c1(digest=False))
    handshake = await asyncio.wait_for(reader.readexactly(1 + 2 * HANDSHAKE_SIZE), 10)
    writer.write(handshake[1 : 1 + HANDSHAKE_SIZE])  # C2 echoes S1
    writer.write(
        command(0, "connect", 1, {"app": app, "tcUrl": url.rsplit("/", 1)[0]}) + command(0, "createStream", 2, None)
    )
    while await status() != "created":
        pass
    writer.write(command(1, "publish", 3, None, name, "live"))
    assert await status() == "NetStream.Publish.Start"
    for tag in tags:
        message = chunks.Message(int(tag.type), 1, tag.timestamp, tag.data)
        writer.write(chunks.encode_message(message, chunk_size=128, csid=4 if tag.type == TagType.SCRIPT else 6))
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def test_cue_points_from_a_publisher_become_cue_records_and_broken_ones_are_dropped(ingest, tmp_path):
    """A real FLV (ffmpeg's) with onCuePoint messages put between its tags: YouTube's cue point and
    Adobe's carrying a threefive section reach the encoder as cues on the frames' clock; a broken
    one is counted and dropped, and every frame still arrives."""
    fake, base = ingest
    source = jumped_flv(tmp_path / "source.flv", seconds=0)
    reader = FlvReader()
    reader.feed(source)
    tags = list(reader.tags())
    youtube = {"type": "com.youtube.cuepoint", "pre_roll_time_sec": 0.5, "cue_point_start": True}
    youtube |= {"break_duration_sec": 30, "splice_event_id": 7}
    section = threefive_splice_insert(event_id=4077, out=False, pts_seconds=99.0, duration=None)
    adobe = {"name": "scte35", "time": 1.5, "type": "event", "parameters": {"scte35": section}}
    inserted = {
        600: amf0.encode_all("onCuePoint", youtube),
        1000: amf0.encode_all("onCuePoint", adobe),
        1200: amf0.encode_all("onCuePoint") + b"\x03\x00\x04time\x00\x40",  # cut short: not AMF0
    }
    stream = []
    for tag in tags:
        for at in [at for at in inserted if at <= tag.timestamp]:
            stream.append(FlvTag(TagType.SCRIPT, at, inserted.pop(at)))
        stream.append(tag)
    rejected = metrics.CUES_REJECTED.labels("news", "amf")._value.get()
    await publish_tags(f"{base}/news/k3y", stream)
    await fake.wait(lambda: fake.ended == 1)
    cues = [r for r in fake.all_records() if isinstance(r, Cue)]
    assert [(c.timescale, c.splice_time, c.out, c.duration, c.event_id) for c in cues] == [
        (1000, 1100, True, 30_000, 7),
        (1000, 1500, False, None, 4077),
    ]
    assert cues[1].section == base64.b64decode(section)
    assert metrics.CUES_REJECTED.labels("news", "amf")._value.get() == rejected + 1
    pictures = [t for t in tags if t.type == TagType.VIDEO and t.data[1] == 1]  # not its config, not its end
    assert len(fake.frames(kind=Kind.VIDEO)) == len(pictures), "the connection carried on to the end"

"""The RTMP ingest server in process, with Debian's ffmpeg publishing into it."""

from __future__ import annotations

import asyncio
import dataclasses
import struct
import subprocess

import pytest
from fake_encoder import FakeEncoder
from flvfile import FLV_HEADER, FlvReader
from helpers import lavfi_source

from kubecast.ingest import metrics
from kubecast.ingest.config import ChannelRoute, IngestConfig
from kubecast.ingest.rtmp import amf0, chunks
from kubecast.ingest.rtmp.handshake import HANDSHAKE_SIZE, client_c1
from kubecast.ingest.rtmp.server import IngestServer
from kubecast.ingest.timestamps import TimestampGuard
from kubecast.media.contribution import Kind


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
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            *lavfi_source(size="160x90", frequency=None),
            "-t",
            "2",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "30",
            "-c:a",
            "aac",
            "-f",
            "flv",
            str(path),
        ],
        check=True,
        timeout=60,
    )
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

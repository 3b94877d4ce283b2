"""The RTMP ingest server in process, with Debian's ffmpeg publishing into it."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess

import pytest

from kubecast.ingest import metrics
from kubecast.ingest.config import ChannelRoute, IngestConfig
from kubecast.ingest.rtmp.server import IngestServer
from kubecast.ingest.timestamps import TimestampGuard
from kubecast.media.flv import FLV_HEADER, FlvReader, TagType, parse_video

from fake_encoder import FakeEncoder


@pytest.fixture
async def ingest():
    fake = FakeEncoder()
    address = await fake.start()
    server = IngestServer(IngestConfig(channels={"news": ChannelRoute("news", "k3y", (address,)), "other": ChannelRoute("other", "k3y", (address,))}))
    host, port = await server.start("127.0.0.1", 0)
    yield fake, f"rtmp://{host}:{port}/live"
    await server.stop()
    await fake.stop()


def jumped_flv(path, *, seconds: float) -> bytes:
    """Two seconds of ffmpeg's FLV with every tag from the second one on moved by ``seconds``,
    as an encoder whose clock broke sends it."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=30", "-f", "lavfi", "-i", "sine=sample_rate=48000",
                    "-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-c:a", "aac", "-f", "flv", str(path)], check=True, timeout=60)
    reader = FlvReader()
    reader.feed(path.read_bytes())
    tags = [dataclasses.replace(tag, timestamp=tag.timestamp + int(seconds * 1000)) if tag.timestamp >= 1000 else tag for tag in reader.tags()]
    return FLV_HEADER + b"".join(tag.encode() for tag in tags)


async def publish(flv: bytes, url: str) -> int:
    process = await asyncio.create_subprocess_exec("ffmpeg", "-v", "error", "-f", "flv", "-i", "pipe:0", "-c", "copy", "-f", "flv", url,
                                                   stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    await asyncio.wait_for(process.communicate(flv), 60)
    return process.returncode


def test_the_clock_rule_every_ingest_applies():
    guard = TimestampGuard()
    assert [guard.check("video", ms) for ms in (0, 33, 20, 2000)] == [None] * 4, "small steps back (reordering) are fine"
    assert "jumped from 2000 ms to 500 ms" in guard.check("video", 500)
    assert "jumped from 2000 ms to 3602000 ms" in guard.check("video", 3_602_000)
    assert guard.check("audio", 3_602_000) is None, "each kind keeps its own clock"


# ffmpeg (the CLI) rewrites a backwards step into a monotonic one before it sends, so only the
# jump ahead can come from it; the backwards rule is the same TimestampGuard, tested above.
@pytest.mark.parametrize("seconds", [3600, 11])
async def test_a_clock_that_jumps_ends_that_contribution_only(ingest, tmp_path, seconds):
    fake, base = ingest
    jumps = metrics.PROTOCOL_ERRORS.labels("timestamp_jump")._value.get()
    await publish(jumped_flv(tmp_path / "in.flv", seconds=seconds), f"{base}/news/k3y")  # (it may have sent everything before it is cut off)
    await fake.wait(lambda: fake.ended == 1)
    assert metrics.PROTOCOL_ERRORS.labels("timestamp_jump")._value.get() == jumps + 1
    frames = [t.timestamp for t in fake.tags(0) if t.type == TagType.VIDEO and not parse_video(t.data).is_sequence_header]
    assert frames and max(frames) < 1000, "nothing after the jump reached the encoder"
    whole = tmp_path / "whole.flv"
    assert await publish(jumped_flv(whole, seconds=0), f"{base}/other/k3y") == 0, "another channel (or the reconnect) is taken as usual"
    await fake.wait(lambda: fake.ended == 2)
    assert len([t for t in fake.tags(1) if t.type == TagType.VIDEO]) >= 60

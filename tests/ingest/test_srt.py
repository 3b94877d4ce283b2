"""SRT listener (ctypes over libsrt) with Debian's ffmpeg as the caller."""

from __future__ import annotations

import asyncio
import ipaddress
import subprocess

import pytest
from fake_encoder import FakeEncoder
from helpers import contribution_command

from kubecast.ingest.config import ChannelRoute
from kubecast.ingest.mpegts.srt import SrtServer, channel_of
from kubecast.ingest.publication import Publications
from kubecast.media.contribution import Kind

PASSPHRASE = "correct-horse-battery"


@pytest.mark.parametrize(
    ("stream_id", "channel"),
    [("cam", "cam"), ("#!::r=cam,m=publish", "cam"), ("#!::m=request,r=cam", None), ("", None)],
)
def test_stream_ids(stream_id, channel):
    assert channel_of(stream_id) == channel


async def publish(port: int, query: str, seconds: int = 3) -> tuple[int, str]:
    url = f"srt://127.0.0.1:{port}?{query}"
    command = contribution_command(url, seconds=seconds, frequency=None, container="mpegts", bound_inputs=True)
    process = await asyncio.create_subprocess_exec(*command, stderr=subprocess.PIPE)
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode, stderr.decode()


@pytest.fixture
async def srt():
    fake = FakeEncoder()
    address = await fake.start()
    routes = {
        "cam": ChannelRoute("cam", None, (address,), protocols=frozenset({"SRT"}), srt_passphrase=PASSPHRASE),
        "guarded": ChannelRoute(
            "guarded", None, (address,), protocols=frozenset({"SRT"}), allowed=(ipaddress.ip_network("10.0.0.0/8"),)
        ),
        "rtmp": ChannelRoute("rtmp", None, (address,)),
    }
    server = SrtServer(routes, Publications(), idle_timeout=2)
    port = server.start("127.0.0.1", 0)
    yield fake, port
    await server.stop()
    await fake.stop()


async def test_an_srt_caller_with_the_right_passphrase_and_stream_id_publishes(srt):
    fake, port = srt
    code, errors = await publish(port, f"streamid=cam&passphrase={PASSPHRASE}&pkt_size=1316&linger=2")
    assert code == 0, errors
    await fake.wait(lambda: fake.ended == 1, timeout=15)
    assert fake.hello().protocol == "SRT"
    tags = fake.frames()
    assert sum(t.kind == Kind.VIDEO for t in tags) >= 85 and sum(t.kind == Kind.AUDIO for t in tags) >= 130


@pytest.mark.parametrize(
    "query",
    [
        "streamid=cam&passphrase=wrong-passphrase",  # wrong passphrase
        "streamid=cam",  # none at all
        f"streamid=nope&passphrase={PASSPHRASE}",  # no such channel
        "streamid=guarded",  # address not allowed
        "streamid=rtmp",  # the channel does not accept SRT
    ],
)
async def test_refused_callers_never_reach_the_encoder(srt, query):
    fake, port = srt
    code, _ = await publish(port, query + "&connect_timeout=2000", seconds=1)
    assert code != 0 and not fake.contributions


async def test_a_second_caller_on_a_live_channel_is_refused_and_the_first_carries_on(srt):
    fake, port = srt
    first = asyncio.ensure_future(
        publish(port, f"streamid=cam&passphrase={PASSPHRASE}&pkt_size=1316&linger=2", seconds=4)
    )
    await fake.wait(lambda: fake.contributions and len(fake.contributions[0]) > 1000, timeout=15)
    code, _ = await publish(port, f"streamid=cam&passphrase={PASSPHRASE}&connect_timeout=2000", seconds=1)
    assert code != 0, "refused during the handshake: the channel is busy"
    assert (await first)[0] == 0
    await fake.wait(lambda: fake.ended == 1, timeout=15)
    assert len(fake.contributions) == 1 and len(fake.frames(kind=Kind.VIDEO)) >= 115

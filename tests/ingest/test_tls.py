"""Contribution over TLS in process: Debian's ffmpeg publishes over rtmps:// and https:// into the
ingest's TLS listeners (a certificate made in the test; ffmpeg verifies it against its CA over
HTTPS, and does not verify over RTMPS, where its verifying handshake sometimes stalls); a
plain publisher is refused by a TLS-only channel, and broken handshakes stay with their own
connection."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import uvloop
from certificates import Certificate, make_certificate
from fake_encoder import FakeEncoder
from helpers import lavfi_source

from kubecast.ingest import metrics
from kubecast.ingest.config import ChannelRoute, IngestConfig
from kubecast.ingest.publication import Publications
from kubecast.ingest.push.http import HttpIngest
from kubecast.ingest.rtmp.server import IngestServer
from kubecast.ingest.tls import TlsError, server_context

H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-c:a", "aac"]
SOURCE = lavfi_source(size="160x90", frequency=None)


@dataclass
class Ingest:
    fake: FakeEncoder
    certificate: Certificate
    rtmp: str  # rtmp://127.0.0.1:<port>/live
    rtmps: str  # rtmps://127.0.0.1:<port>/live
    rtmps_port: int
    http: str
    https: str


@pytest.fixture(params=["asyncio", "uvloop"])
def event_loop_policy(request: pytest.FixtureRequest) -> asyncio.AbstractEventLoopPolicy:
    """Both loops: the ingest process runs on uvloop, whose transports differ from asyncio's."""
    return uvloop.EventLoopPolicy() if request.param == "uvloop" else asyncio.DefaultEventLoopPolicy()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def flv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three seconds of H.264 and AAC, published with -re (so a publish lasts three seconds)."""
    path = tmp_path_factory.mktemp("flv") / "in.flv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", *SOURCE, "-t", "3", *H264, "-f", "flv", str(path)], check=True, timeout=60
    )
    return path


@pytest.fixture(scope="module")
def pictures(flv: Path) -> int:
    """The pictures in ``flv`` (ffprobe counts them): what one publish of it forwards."""
    counted = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-select_streams",
            "v",
            "-count_packets",
            "-show_entries",
            "stream=nb_read_packets",
            "-of",
            "csv=p=0",
            str(flv),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(counted.stdout.strip())


@pytest.fixture
async def ingest(certificate: Certificate) -> AsyncIterator[Ingest]:
    fake = FakeEncoder()
    address = await fake.start()
    push = frozenset({"RTMP", "FragmentedMP4", "CMAF"})
    routes = {
        "secure": ChannelRoute("secure", "k3y", (address,), protocols=push, tls=True, plaintext=False),
        "both": ChannelRoute("both", "k3y", (address,), protocols=push, tls=True, plaintext=True),
        "plain": ChannelRoute("plain", "k3y", (address,), protocols=push),
    }
    # Long enough for ffmpeg to start its handshake on a loaded 2-core machine; the silent clients wait it out.
    config = IngestConfig(channels=routes, handshake_timeout=6.0, idle_timeout=2.0)
    context = server_context(str(certificate.cert), str(certificate.key))
    publications = Publications()
    rtmp = IngestServer(config, publications)
    _, plain_port = await rtmp.start("127.0.0.1", 0)
    _, secure_port = await rtmp.start("127.0.0.1", 0, tls=context)
    http = HttpIngest(config, publications)
    http_port = await http.start("127.0.0.1", 0)
    https_port = await http.start("127.0.0.1", 0, tls=context)
    yield Ingest(
        fake,
        certificate,
        f"rtmp://127.0.0.1:{plain_port}/live",
        f"rtmps://127.0.0.1:{secure_port}/live",
        secure_port,
        f"http://127.0.0.1:{http_port}",
        f"https://127.0.0.1:{https_port}",
    )
    await http.stop()
    await rtmp.stop()
    await fake.stop()


async def ffmpeg(*args: str, timeout: float = 60) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "ffmpeg", "-hide_banner", "-loglevel", "error", *args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, stderr.decode(errors="replace")


def verifying(certificate: Certificate) -> list[str]:
    """ffmpeg's options to check the server's certificate against the test CA (its default is not to check)."""
    return ["-tls_verify", "1", "-ca_file", str(certificate.ca)]


def received(fake: FakeEncoder) -> int:
    return sum(len(contribution) for contribution in fake.contributions)


def frames(channel: str) -> float:
    return float(metrics.FRAMES.labels(channel, "video")._value.get())


async def test_ffmpeg_publishes_over_rtmps(ingest: Ingest, flv: Path, pictures: int) -> None:
    before = frames("secure")
    code, errors = await ffmpeg("-i", str(flv), "-c", "copy", "-f", "flv", f"{ingest.rtmps}/secure/k3y")
    assert code == 0, errors
    await ingest.fake.wait(lambda: ingest.fake.ended == 1)
    assert frames("secure") - before == pictures, "every picture of the three seconds reached the encoder"


async def test_a_plain_publisher_is_refused_by_a_tls_only_channel_and_taken_by_one_that_allows_it(
    ingest: Ingest, flv: Path, pictures: int
) -> None:
    refused = metrics.REJECTED.labels("tls_required")._value.get()
    code, errors = await ffmpeg("-i", str(flv), "-c", "copy", "-f", "flv", f"{ingest.rtmp}/secure/k3y")
    assert code != 0 and "channel secure takes TLS only: publish to rtmps:// or https://" in errors, errors
    assert metrics.REJECTED.labels("tls_required")._value.get() == refused + 1
    before = frames("both")
    code, errors = await ffmpeg("-i", str(flv), "-c", "copy", "-f", "flv", f"{ingest.rtmp}/both/k3y")
    assert code == 0, errors
    code, errors = await ffmpeg("-i", str(flv), "-c", "copy", "-f", "flv", f"{ingest.rtmps}/both/k3y")
    assert code == 0, errors
    await ingest.fake.wait(lambda: ingest.fake.ended == 2)
    assert frames("both") - before == 2 * pictures
    code, errors = await ffmpeg("-i", str(flv), "-c", "copy", "-f", "flv", f"{ingest.rtmps}/plain/k3y")
    assert code != 0 and "channel plain does not take TLS" in errors, errors


async def test_smooth_and_cmaf_push_over_https(ingest: Ingest, flv: Path) -> None:
    before = frames("secure")
    code, errors = await ffmpeg(
        "-i",
        str(flv),
        "-c",
        "copy",
        "-movflags",
        "isml+frag_keyframe",
        *verifying(ingest.certificate),
        "-f",
        "ismv",
        f"{ingest.https}/k3y/ingest/secure.isml/Streams(cam)",
    )
    assert code == 0, errors
    # All 90 pictures, the last fragment too (which a TLS 1.3 session ticket would make the publisher's reset drop).
    await ingest.fake.wait(lambda: frames("secure") - before >= 90)
    before = frames("both")
    code, errors = await ffmpeg(
        "-i",
        str(flv),
        "-c",
        "copy",
        "-seg_duration",
        "1",
        *verifying(ingest.certificate),
        "-f",
        "dash",
        f"{ingest.https}/k3y/ingest/both.cmaf/manifest.mpd",
    )
    assert code == 0, errors
    await ingest.fake.wait(lambda: frames("both") - before >= 60)
    # ffmpeg does not read the answer to a push, so a client that does shows the refusal.
    refused = metrics.REJECTED.labels("tls_required")._value.get()
    async with aiohttp.ClientSession() as client:
        for url in (
            f"{ingest.http}/k3y/ingest/secure.isml/Streams(cam)",
            f"{ingest.http}/k3y/ingest/secure.cmaf/init-stream0.m4s",
        ):
            async with client.post(url, data=flv.read_bytes()) as answer:
                assert answer.status == 403
                assert await answer.text() == "channel secure takes TLS only: publish to rtmps:// or https://\n"
    assert metrics.REJECTED.labels("tls_required")._value.get() == refused + 2


async def test_broken_handshakes_never_disturb_a_live_rtmps_publisher(ingest: Ingest, flv: Path, pictures: int) -> None:
    """While one channel publishes over RTMPS: plain RTMP bytes, a client that distrusts the
    certificate, a truncated ClientHello and a silent connection, all on the same TLS port."""
    failed = metrics.PROTOCOL_ERRORS.labels("tls_handshake")._value.get()
    timed_out = metrics.PROTOCOL_ERRORS.labels("tls_handshake_timeout")._value.get()
    before = frames("secure")
    live = asyncio.ensure_future(ffmpeg("-re", "-i", str(flv), "-c", "copy", "-f", "flv", f"{ingest.rtmps}/secure/k3y"))
    await ingest.fake.wait(lambda: frames("secure") > before)

    async def raw(data: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", ingest.rtmps_port)
        writer.write(data)
        try:
            answer = await asyncio.wait_for(reader.read(), 10)
        except ConnectionResetError:  # uvloop aborts (a reset) where asyncio closes
            answer = b""
        writer.close()
        return answer

    async def distrusting() -> None:
        distrust = ssl.create_default_context()  # trusts the system's CAs, not the test's
        with pytest.raises((ssl.SSLCertVerificationError, ConnectionResetError)):  # uvloop: the reset may come first
            await asyncio.open_connection("127.0.0.1", ingest.rtmps_port, ssl=distrust, server_hostname="localhost")

    answers = await asyncio.gather(
        raw(b"\x03" + bytes(1536)),  # an RTMP C0 and C1
        raw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),  # a ClientHello cut short: silence, then the timeout
        raw(b""),  # nothing at all: the timeout
        distrusting(),
    )
    assert all(answer == b"" or answer.startswith(b"\x15") for answer in answers[:3]), (
        "at most a TLS alert, then closed"
    )
    code, errors = await live
    assert code == 0, errors
    assert frames("secure") - before == pictures, "the live publisher lost nothing"
    handshakes = metrics.PROTOCOL_ERRORS.labels("tls_handshake")._value.get() - failed
    timeouts = metrics.PROTOCOL_ERRORS.labels("tls_handshake_timeout")._value.get() - timed_out
    # Each broken handshake counted once: the RTMP bytes fail at once, the silent two time out, and the
    # distrusting client's close is a failure (asyncio) or, where the loop misses it, a timeout (uvloop).
    assert handshakes + timeouts == 4 and handshakes >= 1 and timeouts >= 2, (handshakes, timeouts)


def test_an_unusable_certificate_is_refused_naming_the_files_not_their_contents(
    certificate: Certificate, tmp_path: Path
) -> None:
    other = make_certificate(tmp_path, prefix="other")
    with pytest.raises(TlsError, match="KEY_VALUES_MISMATCH") as mismatch:
        server_context(str(certificate.cert), str(other.key))
    assert "PRIVATE KEY" not in str(mismatch.value) and str(other.key) in str(mismatch.value)
    with pytest.raises(TlsError, match="not found"):
        server_context(str(tmp_path / "missing.crt"), str(other.key))

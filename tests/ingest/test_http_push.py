"""Smooth Streaming and CMAF HTTP push ingest, with Debian's ffmpeg as the encoder."""

from __future__ import annotations

import asyncio
import subprocess

import aiohttp
import pytest
from fake_encoder import FakeEncoder
from helpers import lavfi_source

from kubecast.ingest import metrics
from kubecast.ingest.config import ChannelRoute, IngestConfig
from kubecast.ingest.publication import Publications
from kubecast.ingest.push.http import HttpIngest
from kubecast.media.contribution import CodecConfig, Frame, Kind
from kubecast.media.mp4 import Sample, box, find_box, init_segment_video, media_segment

SOURCE = [
    *lavfi_source(size="320x240", frequency=None, input_seconds="4"),
]
AVCC = bytes([1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 4, 0x67, 0x64, 0, 0x1F, 1, 0, 2, 0x68, 0xEE])
H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0"]
# Three renditions of the picture (320x240, 256x144, 160x90) and the tone, as a ladder encoder pushes them.
LADDER = [*["-map", "0:v"] * 3, "-map", "1:a", *H264, "-s:v:1", "256x144", "-s:v:2", "160x90", "-c:a", "aac"]


async def ffmpeg(*args: str, source: list[str] = SOURCE) -> None:
    process = await asyncio.create_subprocess_exec("ffmpeg", "-v", "error", *source, *args, stderr=subprocess.PIPE)
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()


async def ffmpeg_live(*args: str) -> None:
    """ffmpeg reading the test source at its own pace (-re on both inputs)."""
    await ffmpeg(*args, source=["-re", *SOURCE[:6], "-re", *SOURCE[6:]])


@pytest.fixture
async def ingest():
    fake = FakeEncoder()
    address = await fake.start()
    routes = {
        "cam": ChannelRoute("cam", None, (address,), protocols=frozenset({"FragmentedMP4", "CMAF"})),
        "keyed": ChannelRoute("keyed", "s3cret", (address,), protocols=frozenset({"FragmentedMP4"})),
    }
    server = HttpIngest(IngestConfig(channels=routes, idle_timeout=1.5), Publications())
    port = await server.start("127.0.0.1", 0)
    yield fake, server, f"http://127.0.0.1:{port}"
    await server.stop()
    await fake.stop()


def video_tracks(records) -> dict[int, int]:
    counts: dict[int, int] = {}
    for record in records:
        if isinstance(record, Frame) and record.kind == Kind.VIDEO:
            counts[record.track] = counts.get(record.track, 0) + 1
    return counts


async def test_smooth_single_bitrate_push_with_ffmpeg_ismv(ingest):
    fake, _, base = ingest
    await ffmpeg(
        *H264,
        "-c:a",
        "aac",
        "-movflags",
        "isml+frag_keyframe",
        "-f",
        "ismv",
        f"{base}/ingest/cam.isml/Streams(encoder1)",
    )
    await fake.wait(lambda: fake.ended == 1)
    assert fake.hello().protocol == "FragmentedMP4"
    tags = fake.records()
    assert video_tracks(tags) == {0: 120}
    assert sum(isinstance(t, Frame) and t.kind == Kind.AUDIO for t in tags) >= 180
    video = [t for t in tags if isinstance(t, Frame) and t.kind == Kind.VIDEO]
    times = [t.decode_time for t in video]
    assert {t.timescale for t in video} == {10_000_000}, "Smooth's own clock, not milliseconds"
    assert times == sorted(times) and abs(times[-1] - times[0] - 119 * 10_000_000 / 30) < 1000


async def test_smooth_multibitrate_push_keeps_every_rendition(ingest):
    fake, _, base = ingest
    await ffmpeg(*LADDER, "-movflags", "isml+frag_keyframe", "-f", "ismv", f"{base}/ingest/cam.isml/Streams(ladder)")
    await fake.wait(lambda: fake.ended == 1)
    assert video_tracks(fake.records()) == {0: 120, 1: 120, 2: 120}


async def test_a_smooth_push_with_an_audio_track_per_language_keeps_each_language(ingest):
    """ffmpeg -f ismv with three audio tracks named eng, spa and eng again (in their mdhd): the
    first is the contribution's audio (0), spa another language (1), the repeated eng is left out."""
    fake, _, base = ingest
    tracks = ["-map", "0:v", "-map", "1:a", "-map", "1:a", "-map", "1:a", *H264, "-c:a", "aac"]
    names = ["-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=spa", "-metadata:s:a:2", "language=eng"]
    await ffmpeg(*tracks, *names, "-movflags", "isml+frag_keyframe", "-f", "ismv", f"{base}/ingest/cam.isml/Streams(x)")
    await fake.wait(lambda: fake.ended == 1)
    records = fake.records()
    configs = [(r.track, r.language) for r in records if isinstance(r, CodecConfig) and r.kind == Kind.AUDIO]
    assert configs == [(0, "eng"), (1, "spa")]
    audio = [r for r in records if isinstance(r, Frame) and r.kind == Kind.AUDIO]
    per_track = {track: [r.decode_time for r in audio if r.track == track] for track in (0, 1)}
    assert len(per_track[0]) >= 180 and per_track[0] == per_track[1], "both languages, every frame, same times"
    assert video_tracks(records) == {0: 120}


async def test_cmaf_push_with_ffmpeg_dash(ingest):
    fake, _, base = ingest
    await ffmpeg(*H264, "-c:a", "aac", "-seg_duration", "1", "-f", "dash", f"{base}/ingest/cam.cmaf/manifest.mpd")
    await fake.wait(lambda: fake.ended == 1, timeout=15)  # the idle timeout ends a CMAF push
    assert fake.hello().protocol == "CMAF"
    tags = fake.records()
    assert video_tracks(tags) == {0: 120} and sum(isinstance(t, Frame) and t.kind == Kind.AUDIO for t in tags) >= 180


async def test_a_resent_fragment_is_dropped_and_bad_requests_get_clear_errors(ingest, tmp_path):
    fake, _, base = ingest
    path = tmp_path / "push.ismv"
    await ffmpeg(*H264, "-c:a", "aac", "-movflags", "isml+frag_keyframe", "-f", "ismv", str(path))
    data = path.read_bytes()
    duplicates = metrics.REJECTED.labels("duplicate_fragment")._value.get()
    async with aiohttp.ClientSession() as client:
        url = f"{base}/s3cret/ingest/keyed.isml/Streams(v)"
        assert (await client.post(url, data=b"")).status == 200, "the probe"
        # The first POST breaks off after 60% of the stream; the encoder reconnects and sends it all.
        await client.post(url, data=data[: len(data) * 6 // 10])
        await client.post(url, data=data)
        await fake.wait(lambda: fake.ended == 1)
        assert video_tracks(fake.records()) == {0: 120}, "each frame once, across the reconnect"
        assert metrics.REJECTED.labels("duplicate_fragment")._value.get() > duplicates
        answers = {
            "wrong key": (await client.post(f"{base}/wrong/ingest/keyed.isml/Streams(v)", data=data[:100])).status,
            "no key": (await client.post(f"{base}/ingest/keyed.isml/Streams(v)", data=data[:100])).status,
            "unknown channel": (await client.post(f"{base}/ingest/nope.isml/Streams(v)", data=data[:100])).status,
            "traversal": (await client.post(f"{base}/ingest/../../etc/passwd", data=b"x")).status,
            "not fmp4": (
                await client.post(f"{base}/ingest/cam.isml/Streams(v)", data=b"\x00\x00\x00\x04junk" * 10)
            ).status,
            "GET": (await client.get(f"{base}/ingest/cam.isml/Streams(v)")).status,
        }
    assert answers == {
        "wrong key": 403,
        "no key": 403,
        "unknown channel": 404,
        "traversal": 404,
        "not fmp4": 400,
        "GET": 405,
    }


async def test_cmaf_push_with_ffmpeg_hls_fmp4(ingest):
    fake, _, base = ingest
    await ffmpeg(
        *H264,
        "-c:a",
        "aac",
        "-hls_time",
        "1",
        "-hls_segment_type",
        "fmp4",
        "-method",
        "PUT",
        "-f",
        "hls",
        f"{base}/ingest/cam.cmaf/index.m3u8",
    )
    await fake.wait(lambda: fake.ended == 1, timeout=15)
    assert fake.hello().protocol == "CMAF"
    tags = fake.records()
    assert video_tracks(tags) == {0: 120} and sum(isinstance(t, Frame) and t.kind == Kind.AUDIO for t in tags) >= 180


def retimed_ismv(data: bytes, shift_seconds: int) -> bytes:
    """The same push with every tfxd time moved (as an encoder whose clock restarted or jumped)."""
    from kubecast.media.fmp4 import TFXD

    out = bytearray(data)
    at = out.find(TFXD)
    while at >= 0:
        version = out[at + 16]
        field = at + 20
        size = 8 if version == 1 else 4
        value = int.from_bytes(out[field : field + size], "big", signed=version == 1) + shift_seconds * 10_000_000
        out[field : field + size] = value.to_bytes(size, "big", signed=version == 1)
        at = out.find(TFXD, at + 16)
    return bytes(out)


async def test_a_clock_that_jumps_ends_the_stream_and_the_next_push_starts_afresh(ingest, tmp_path):
    fake, _, base = ingest
    path = tmp_path / "push.ismv"
    await ffmpeg(*H264, "-c:a", "aac", "-movflags", "isml+frag_keyframe", "-f", "ismv", str(path))
    data = path.read_bytes()
    moof = data.find(b"moof") - 4
    async with aiohttp.ClientSession() as client:
        url = f"{base}/ingest/cam.isml/Streams(v)"
        half = data[: len(data) // 2]
        await client.post(url, data=half)  # broken off; the stream waits for the reconnect
        jumped = await client.post(url, data=data[:moof] + retimed_ismv(data[moof:], 3 * 3600)[: len(data) // 2 - moof])
        assert jumped.status == 400 and "jumped ahead" in await jumped.text()
        await fake.wait(lambda: fake.ended == 1)
        assert (await client.post(url, data=retimed_ismv(data, 3 * 3600))).status == 200, "a new timeline, accepted"
        await fake.wait(lambda: fake.ended == 2)
    assert video_tracks(fake.records(1)) == {0: 120}


async def test_a_cmaf_segment_that_starts_before_the_previous_one_is_read_waits_for_it(ingest, tmp_path):
    """An encoder opens segment n+1 while the ingest is still reading n (a large segment, a
    slow forward): n must be read whole and go out first, not be cut by n+1's start."""
    fake, _, base = ingest
    await ffmpeg(*H264, "-an", "-seg_duration", "1", "-f", "dash", str(tmp_path / "out.mpd"))
    init, first, second = (
        (tmp_path / name).read_bytes()
        for name in ("init-stream0.m4s", "chunk-stream0-00001.m4s", "chunk-stream0-00002.m4s")
    )
    halfway, release = asyncio.Event(), asyncio.Event()

    async def slow_body():
        yield first[: len(first) // 2]
        halfway.set()  # asked for more: the first half is on its way
        await release.wait()
        yield first[len(first) // 2 :]

    async with aiohttp.ClientSession() as client:
        url = f"{base}/ingest/cam.cmaf/chunk-stream0-"
        assert (await client.put(f"{base}/ingest/cam.cmaf/init-stream0.m4s", data=init)).status == 201
        pending_first = asyncio.ensure_future(client.put(f"{url}00001.m4s", data=slow_body()))
        await asyncio.wait_for(halfway.wait(), 10)
        pending_second = asyncio.ensure_future(client.put(f"{url}00002.m4s", data=second))
        await asyncio.sleep(0.3)  # time for the second request to arrive: it must wait behind the first
        assert not pending_second.done()
        release.set()
        statuses = [(await pending).status for pending in (pending_first, pending_second)]
    assert statuses == [201, 201]
    await fake.wait(lambda: video_tracks(fake.records()).get(0) == 60, timeout=10)
    times = [t.decode_time for t in fake.frames(kind=Kind.VIDEO)]
    assert times == sorted(times) and len(set(times)) == 60


async def test_parallel_smooth_posts_make_one_contribution_with_one_audio_track(ingest):
    """Encoders post each track (or each rendition with its audio) on a POST of its own."""
    fake, _, base = ingest
    url = f"{base}/ingest/cam.isml/Streams"
    # Real-time pushes, as live encoders send them: faster than real time, a loaded machine could
    # start one POST after the other had sent all 4 s, which is two contributions, not one.
    # frag_duration: ffmpeg fragments an audio-only ismv at key frames, that is never, unless told.
    smooth = ["-movflags", "isml+frag_keyframe", "-frag_duration", "1000000", "-f", "ismv"]
    await asyncio.gather(
        ffmpeg_live(*H264, "-an", *smooth, f"{url}(video)"), ffmpeg_live("-vn", "-c:a", "aac", *smooth, f"{url}(audio)")
    )
    await fake.wait(lambda: fake.ended == 1)
    tags = fake.records()
    audio = sum(isinstance(t, Frame) and t.kind == Kind.AUDIO for t in tags)
    assert video_tracks(tags) == {0: 120} and 180 <= audio <= 200, "video from one POST, audio from the other"
    # Two renditions that each carry the audio: one copy of it goes on, not two interleaved.
    await asyncio.gather(
        ffmpeg_live(*H264, "-c:a", "aac", *smooth, f"{url}(hd)"),
        ffmpeg_live(*H264, "-s", "160x90", "-c:a", "aac", *smooth, f"{url}(sd)"),
    )
    await fake.wait(lambda: fake.ended == 2)
    tags = fake.records()
    assert video_tracks(tags) == {0: 120, 1: 120}
    assert 180 <= sum(isinstance(t, Frame) and t.kind == Kind.AUDIO for t in tags) <= 200, "one audio track"


async def test_a_multi_rendition_cmaf_push_keeps_every_rendition(ingest):
    fake, _, base = ingest
    await ffmpeg(
        *LADDER,
        "-seg_duration",
        "1",
        "-adaptation_sets",
        "id=0,streams=v id=1,streams=a",
        "-f",
        "dash",
        f"{base}/ingest/cam.cmaf/manifest.mpd",
    )
    await fake.wait(lambda: fake.ended == 1, timeout=15)
    tags = fake.records()
    assert (
        video_tracks(tags) == {0: 120, 1: 120, 2: 120}
        and sum(isinstance(t, Frame) and t.kind == Kind.AUDIO for t in tags) >= 180
    )


def rejected(label: str) -> float:
    return metrics.REJECTED.labels(label)._value.get()


async def test_bad_pushes_get_a_clear_refusal_a_log_line_and_a_metric_and_the_live_push_carries_on(
    ingest, tmp_path, caplog
):
    """Each refusal closes only the offending request; the push already live is not touched."""
    import ipaddress

    fake, server, base = ingest
    server.config.channels["guarded"] = ChannelRoute(
        "guarded",
        None,
        server.config.channels["cam"].encoders,
        allowed=(ipaddress.ip_network("10.0.0.0/8"),),
        protocols=frozenset({"FragmentedMP4", "CMAF"}),
    )
    path = tmp_path / "push.ismv"
    await ffmpeg(*H264, "-c:a", "aac", "-movflags", "isml+frag_keyframe", "-f", "ismv", str(path))
    data = path.read_bytes()
    release = asyncio.Event()

    async def live_body():  # a live push that stays open while the others are refused
        yield data[: len(data) // 2]
        await release.wait()
        yield data[len(data) // 2 :]

    before = {label: rejected(label) for label in ("not_allowed", "busy", "bad_fragment")}
    async with aiohttp.ClientSession() as client:
        live = asyncio.ensure_future(client.post(f"{base}/ingest/cam.isml/Streams(v)", data=live_body()))
        await fake.wait(lambda: fake.contributions and video_tracks(fake.records()).get(0, 0) > 0)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))) as elsewhere:
            busy = await elsewhere.post(f"{base}/ingest/cam.isml/Streams(v)", data=data)
            assert busy.status == 409 and "already being pushed from elsewhere" in await busy.text()
        assert (await client.post(f"{base}/ingest/guarded.isml/Streams(v)", data=data)).status == 403
        truncated = await client.put(
            f"{base}/ingest/cam.cmaf/chunk-stream5-00001.m4s", data=data[: data.find(b"moof") + 40]
        )
        assert truncated.status == 400 and "ends inside a box" in await truncated.text()
        # Crash classes bench/fuzz.py found (a 500 that left the stream registered, before): a box
        # that ends inside its fields, and a composition offset of hours, which no real stream has.
        init = init_segment_video(width=320, height=240, timescale=90000, avcc=AVCC)
        start, end = find_box(init, [b"moov", b"trak", b"mdia"])
        lying = box(
            b"moov", box(b"trak", init[start - 8 : end], box(b"tkhd", b"\x00"))
        )  # a tkhd of one byte, at the very end
        short = await client.put(f"{base}/ingest/cam.cmaf/chunk-stream6-00001.m4s", data=lying)
        assert short.status == 400 and "truncated" in await short.text()
        absurd = media_segment(
            sequence_number=1,
            base_decode_time=0,
            samples=[Sample(3000, 4, composition_offset=(1 << 31) - 1)],
            data=b"x" * 4,
        )
        late = await client.put(f"{base}/ingest/cam.cmaf/chunk-stream7-00001.m4s", data=init + absurd)
        assert late.status == 400 and "composition offset" in await late.text()
        release.set()
        assert (await live).status == 200
    await fake.wait(lambda: video_tracks(fake.records(0)).get(0) == 120)
    assert {label: rejected(label) - before[label] for label in before} == {
        "not_allowed": 1,
        "busy": 1,
        "bad_fragment": 3,
    }
    refusals = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused")]
    assert any("127.0.0.2" in m and "elsewhere" in m for m in refusals) and any(
        "may not publish to channel guarded" in m for m in refusals
    )
    assert any("ends inside a box" in m for m in refusals)


async def test_refusal_log_lines_never_carry_the_stream_key(ingest, caplog):
    """A keyed channel's URL holds its key: a refusal for another reason (here the protocol) logs
    the path without it, and so does a refusal of a wrong key."""
    _, _, base = ingest
    async with aiohttp.ClientSession() as client:
        wrong_protocol = await client.put(f"{base}/s3cret/ingest/keyed.cmaf/chunk-stream0-00001.m4s", data=b"x")
        wrong_key = await client.post(f"{base}/guess/ingest/keyed.isml/Streams(v)", data=b"x")
        stray = await client.post(f"{base}/s3cret/elsewhere", data=b"x")
    assert (wrong_protocol.status, wrong_key.status, stray.status) == (403, 403, 404)
    refusals = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused")]
    assert len(refusals) == 3
    assert not any("s3cret" in m or "guess" in m for m in refusals), refusals
    assert any("/…/ingest/keyed.cmaf/chunk-stream0-00001.m4s" in m for m in refusals)

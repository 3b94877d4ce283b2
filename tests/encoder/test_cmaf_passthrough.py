"""CMAF in, CMAF out: Debian's ffmpeg makes CMAF segments (``-f dash``), they are pushed into the
HTTP ingest as an encoder pushes them, and the pass-through encoder process stores them.  Every
stored sample must be the pushed one: bytes, duration, composition offset, timescale."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import aiohttp
from helpers import lavfi_source, wait_until
from test_encoder_process import CHANNEL, progress_when, run_encoder, track_bytes

from kubecast.ingest.config import ChannelRoute, IngestConfig
from kubecast.ingest.publication import Publications
from kubecast.ingest.push.http import HttpIngest
from kubecast.media.fmp4 import BoxStream, FragmentSample, parse_fragment, parse_init

SECONDS = 6


def make_cmaf(folder: Path) -> None:
    """Two-second CMAF segments of H.264 with B-frames (so composition offsets matter) + AAC."""
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            *lavfi_source(size="320x240"),
            "-t",
            str(SECONDS),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-bf",
            "2",
            "-g",
            "60",
            "-keyint_min",
            "60",
            "-sc_threshold",
            "0",
            "-c:a",
            "aac",
            "-seg_duration",
            "2",
            "-f",
            "dash",
            str(folder / "manifest.mpd"),
        ],
        check=True,
        timeout=60,
    )


def samples_of(segments: list[bytes]) -> list[FragmentSample]:
    samples: list[FragmentSample] = []
    for segment in segments:
        boxes = BoxStream().feed(segment)
        moofs = [box for kind, box in boxes if kind == b"moof"]
        mdats = [box for kind, box in boxes if kind == b"mdat"]
        for moof, mdat in zip(moofs, mdats):
            samples += [s for track in parse_fragment(moof, mdat).values() for s in track]
    return samples


def timescale_of(init: bytes) -> int:
    return parse_init(dict(BoxStream().feed(init))[b"moov"])[0].timescale


async def push(folder: Path, port: int) -> None:
    """Init segments, then each track's media segments in order, as ``ffmpeg -f dash`` PUTs them."""
    names = ["init-stream0.m4s", "init-stream1.m4s"]
    count = len(list(folder.glob("chunk-stream0-*.m4s")))
    names += [f"chunk-stream{track}-{n:05d}.m4s" for n in range(1, count + 1) for track in (0, 1)]
    async with aiohttp.ClientSession() as client:
        for name in names:
            url = f"http://127.0.0.1:{port}/ingest/t1.cmaf/{name}"
            response = await client.put(url, data=(folder / name).read_bytes())
            assert response.status == 201, (name, await response.text())


async def test_cmaf_pass_through_stores_the_pushed_samples_unchanged(tmp_path):
    source = tmp_path / "pushed"
    source.mkdir()
    make_cmaf(source)
    process, encoder_port = run_encoder(tmp_path, CHANNEL % ("None", "[]"))
    with process:
        route = ChannelRoute("t1", None, (("127.0.0.1", encoder_port),), protocols=frozenset({"CMAF"}))
        ingest = HttpIngest(IngestConfig(channels={"t1": route}, idle_timeout=1.0), Publications())
        port = await ingest.start("127.0.0.1", 0)
        try:
            await push(source, port)
            ended = lambda: progress_when(tmp_path, lambda p: p["state"] == "waiting" and p["segments"].get("video"))  # noqa: E731
            record = await asyncio.to_thread(wait_until, ended, timeout=60, what="the contribution's end")
        finally:
            await ingest.stop()
    video = next(t for t in record["tracks"] if t["id"] == "video")
    init, stored_segments = track_bytes(tmp_path, record, video)
    pushed_init = (source / "init-stream0.m4s").read_bytes()
    assert video["timescale"] == timescale_of(init) == timescale_of(pushed_init) == 15360, "the source's own clock"

    pushed = samples_of([p.read_bytes() for p in sorted(source.glob("chunk-stream0-*.m4s"))])
    stored = samples_of(stored_segments)
    assert len(pushed) == 30 * SECONDS and len(stored) >= len(pushed) - 30, "at most the last picture's second is cut"
    pushed = pushed[: len(stored)]
    assert [s.data for s in stored] == [s.data for s in pushed], "sample bytes unchanged"
    assert [s.duration for s in stored] == [s.duration for s in pushed], "durations unchanged, the last one included"
    assert [s.keyframe for s in stored] == [s.keyframe for s in pushed]
    # ffmpeg presents its key frames 2 pictures after their decode time and says so in an edit
    # list; the stored track has no edit list and its key frames at decode time == presentation
    # time instead (CMAF's negative offsets): every offset moves by the same amount, no more.
    shift = {p.composition_offset - s.composition_offset for p, s in zip(pushed, stored)}
    assert shift == {pushed[0].composition_offset} and stored[0].composition_offset == 0
    starts = {s.decode_time - p.decode_time for p, s in zip(pushed, stored)}
    assert len(starts) == 1, "one constant (the channel placement plus that shift) between pushed and stored times"

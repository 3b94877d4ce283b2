"""Three renditions passed through bit for bit, over RTMP (one key) and Smooth (one push)."""

from __future__ import annotations

import hashlib

import pytest
from helpers import Proc, flv_video_payloads, lavfi_source, make_multibitrate_flvs, segment_payloads, wait_until
from media_checks import download, fetch, media_playlist, multivariant

from kubecast.media.fmp4 import parse_fragment

from .sources import CODECS, KEY

pytestmark = pytest.mark.e2e


def assert_passed_through(base: str, sources: list[bytes]) -> None:
    def three():
        found = multivariant(f"{base}/live/mbr/index.m3u8")
        return found if len(found[0]) == 3 else None

    variants, _ = wait_until(three, timeout=60, interval=1, what="three renditions")
    by_size = {v.attributes["RESOLUTION"]: v for v in variants}
    assert set(by_size) == {"640x360", "480x270", "320x180"}
    for flv, size in zip(sources, ("640x360", "480x270", "320x180")):
        stored = segment_payloads(download(media_playlist(by_size[size].uri)).segments)
        source = flv_video_payloads(flv)
        digest = lambda payloads: hashlib.sha256(b"".join(payloads)).hexdigest()  # noqa: E731
        start = source.index(stored[0])
        assert len(stored) >= 90 and digest(stored) == digest(source[start : start + len(stored)]), (
            f"{size} is the contribution, unchanged"
        )


def test_three_rtmp_renditions_under_one_key_pass_through_unchanged(pipeline, tmp_path):
    sources = make_multibitrate_flvs(tmp_path, seconds=16)
    senders = [
        Proc(
            [
                "ffmpeg",
                "-hide_banner",
                "-loglevel",
                "error",
                "-re",
                "-i",
                str(tmp_path / f"r{i}.flv"),
                "-c",
                "copy",
                "-f",
                "flv",
                f"rtmp://127.0.0.1:{pipeline['rtmp']}/live/mbr/{KEY}/r{i}",
            ],
            name=f"rendition {i}",
        )
        for i in range(3)
    ]
    try:
        wait_until(
            lambda: len(media_playlist(f"{pipeline['base']}/live/mbr/video/index.m3u8").segments) >= 5,
            timeout=60,
            interval=1,
            what="mbr segments",
        )
        assert_passed_through(pipeline["base"], sources)
    finally:
        for sender in senders:
            sender.stop()


def test_three_smooth_renditions_in_one_push_pass_through(pipeline, tmp_path):
    """ffmpeg -f ismv with three video tracks in one POST: three renditions, bit for bit.  The
    ladder is encoded to a file first and pushed with -c copy, so the file is the reference."""
    archive = tmp_path / "ladder.ismv"
    ladder = [
        "-map",
        "0:v",
        "-map",
        "0:v",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-s:v:0",
        "640x360",
        "-s:v:1",
        "480x270",
        "-s:v:2",
        "320x180",
    ]
    Proc(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            *lavfi_source(size="640x360", frequency=None),
            "-t",
            "16",
            *ladder,
            *CODECS,
            "-movflags",
            "isml+frag_keyframe",
            "-f",
            "ismv",
            str(archive),
        ],
        name="smooth ladder",
    ).popen.wait(60)
    push = Proc(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-i",
            str(archive),
            "-map",
            "0",
            "-c",
            "copy",
            "-movflags",
            "isml+frag_keyframe",
            "-f",
            "ismv",
            f"{pipeline['push']}/mbr.isml/Streams(ladder)",
        ],
        name="smooth push",
    )
    try:
        wait_until(lambda: not push.alive(), timeout=60, interval=1, what="the push to end")
        assert push.popen.returncode == 0, push.output()
        assert_passed_through_fmp4(pipeline["base"], archive.read_bytes())
    finally:
        push.stop()


def assert_passed_through_fmp4(base: str, archive: bytes) -> None:
    from kubecast.media.fmp4 import BoxStream, parse_init

    boxes = BoxStream().feed(archive)
    tracks = {t.track_id: t for t in parse_init(next(box for kind, box in boxes if kind == b"moov"))}
    samples: dict[int, list[bytes]] = {track_id: [] for track_id, t in tracks.items() if t.kind == "video"}
    for (kind, moof), (_, mdat) in zip(boxes, boxes[1:]):
        if kind == b"moof":
            for track_id, found in parse_fragment(moof, mdat).items():
                samples.get(track_id, []).extend(sample.data for sample in found)
    sources = [samples[track_id] for track_id in sorted(samples, key=lambda i: -tracks[i].width)]

    def three():
        found = multivariant(f"{base}/live/mbr/index.m3u8")
        return found if len(found[0]) == 3 else None

    variants, _ = wait_until(three, timeout=60, interval=1, what="three renditions")
    by_size = {v.attributes["RESOLUTION"]: v for v in variants}
    for source, size in zip(sources, ("640x360", "480x270", "320x180")):
        playlist = media_playlist(by_size[size].uri)
        # The window still holds the RTMP test's segments: this push starts after the last discontinuity.
        newest = [
            line
            for line in playlist.text.rsplit("#EXT-X-DISCONTINUITY\n", 1)[-1].splitlines()
            if line and not line.startswith("#")
        ]
        segments = [fetch(url) for url, _ in playlist.segments[-len(newest) :]]
        stored = segment_payloads(segments)
        start = source.index(stored[0])
        assert len(stored) >= 90 and stored == source[start : start + len(stored)], (
            f"{size} is the contribution, unchanged"
        )

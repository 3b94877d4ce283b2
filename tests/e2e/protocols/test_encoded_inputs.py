"""Live encoding fed by every protocol: read live by ffmpeg, and at a constant frame rate from a
jittered RTMP source.  Its module sorts first in the package: the first test reads while every
publisher is live, holding the live-encoded ones until it is done."""

from __future__ import annotations

import subprocess

import pytest
from helpers import wait_until
from media_checks import download, media_playlist

from kubecast.media.mp4 import parse_media_segment

from .reading import segments_of

pytestmark = pytest.mark.e2e

LIVE_ENCODED = ["enc-rtmp", "enc-gst", "enc-smooth", "enc-cmaf", "enc-srt", "enc-udp"]


def ffmpeg_reads(url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["ffmpeg", "-v", "error", "-i", url, "-map", "0", "-t", "6", "-f", "null", "-"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


# First in the package: it holds the live-encoded publishers until its reads are done (a live
# playlist that stops growing keeps ffmpeg waiting for the rest of its 6 s).
def test_ffmpeg_reads_every_live_encoded_protocol_without_a_complaint(pipeline):
    """A new user's first check, for live encoding fed by every protocol and by GStreamer: every
    rendition and the audio of HLS and DASH, 6 s each, read with no complaint (all at once)."""
    base = pipeline["base"]
    with pipeline["live"].held():
        for channel in LIVE_ENCODED:
            url = f"{base}/live/{channel}/v72/index.m3u8"
            wait_until(
                lambda url=url: len(media_playlist(url).segments) >= 4,
                timeout=90,
                interval=1,
                what=f"four segments of {channel}",
            )
        readers = {
            (channel, manifest): ffmpeg_reads(f"{base}/live/{channel}/{manifest}")
            for channel in LIVE_ENCODED
            for manifest in ("index.m3u8", "manifest.mpd")
        }
        complaints = {}
        try:
            for key, reader in readers.items():
                try:
                    _, stderr = reader.communicate(timeout=60)
                except subprocess.TimeoutExpired:  # a complaint like any other, and the other readers' too
                    reader.kill()
                    stderr = reader.communicate()[1] + "(still reading after 60 s)"
                complaints[key] = (reader.returncode, stderr.strip())
        finally:
            for reader in readers.values():
                reader.kill()
    assert {key: outcome for key, outcome in complaints.items() if outcome != (0, "")} == {}


def test_a_jittered_source_is_encoded_at_a_constant_frame_rate(pipeline):
    # Picture times N/30 s jitter by up to 5 ms either way: the rate is fitted over every picture of
    # the first second and, as a 29.97 reading is as likely as a 30 one, declared 30, not 29.97;
    # every encoded picture lasts one 30 fps slot (3000 ticks at 90 kHz).
    base = pipeline["base"]
    variants, _ = segments_of(base, "enc-rtmp", 5)
    assert {v.attributes.get("FRAME-RATE") for v in variants} == {"30.000"}, [v.attributes for v in variants]
    for rendition in ("v144", "v72"):
        playlist = media_playlist(f"{base}/live/enc-rtmp/{rendition}/index.m3u8")
        durations = [sample.duration for data in download(playlist).segments for sample in parse_media_segment(data)[1]]
        assert len(durations) >= 4 * 60 and set(durations) == {3000}, (rendition, sorted(set(durations)))

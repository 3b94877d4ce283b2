"""Every contribution protocol end to end: Debian's ffmpeg publishes over UDP, RTP, SRT,
Smooth Streaming and CMAF push (as ``-f dash`` and as ``-f hls`` send it), RTMPS and Smooth over HTTPS (with a
certificate made in the test and checked by ffmpeg) into ``kubecast up``; the output is checked as the skeleton's
(renditions, continuous timestamps, decodable, playing in Chromium with hls.js); a
3-rendition contribution over RTMP and over Smooth passes through bit for bit.  Live-encoded
channels fed over RTMP (from a jittered source), Smooth, CMAF, SRT, UDP and by GStreamer read
in ffmpeg without a timestamp complaint, at a constant frame rate.  A playout stream with SCTE-35
markers (sections and TS packets by threefive) puts its splice in hls.js and in the MPD, and its
ID3 timed metadata (ffmpeg's tags on libavformat's timed_id3 stream) reaches hls.js from the TS
and the fMP4 (emsg) segments and Shaka from the DASH ones at its media time; RTMP onTextData
reaches the TS segments.  A Smooth sparse SCTE-35 track pushed beside a Smooth push puts its
splice in hls.js, the MPD and the Smooth manifest; GStreamer's 608 captions reach ffmpeg and
hls.js over RTMP and over SRT.  FFmpeg 8's FLV muxer (PyAV's, ``flvplay.py``) publishes two AAC
tracks over RTMP, the second as Enhanced RTMP multitrack audio, and the channel plays the first."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import socket
import ssl
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import av
import players
import pytest
from captioned import aac_tone_branch, caption_branch, caption_track, cue_text, read_captions
from certificates import make_certificate
from helpers import (
    Proc,
    add_timed_id3,
    ffmpeg_id3_tag,
    flv_video_payloads,
    free_port,
    idr_samples,
    inject_scte35,
    kubecast,
    lavfi_source,
    make_multibitrate_flvs,
    segment_payloads,
    threefive_splice_insert,
    tone_frequency,
    wait_until,
)
from media_checks import MediaPlaylist, download, fetch, media_playlist, mpd, multivariant
from players import chromium, open_player, sync_playwright
from test_live_channel import _chromium

from kubecast.media.cues import TimelineCue
from kubecast.media.fmp4 import parse_fragment
from kubecast.media.id3 import text_tag
from kubecast.media.mp4 import parse_media_segment
from kubecast.media.scte35 import parse_splice_info
from kubecast.media.timeline import Timeline

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent
KEY, PASSPHRASE = "push-key-1", "e2e-srt-passphrase"
# Most publishers run for SECONDS: the first test reads their channels live, and the later ones read
# what they published, which stays.  The publishers whose liveness a later test relies on (TLS,
# GStreamer's captioned one) run until the module's teardown stops them, so that no test depends on
# how long the tests before it took.  The captioned source's cues outlast any run of the module (its
# tests time out at 300 s each).
SECONDS = 40
CAPTIONED_SECONDS = 1800
CODECS = [
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-g",
    "60",
    "-keyint_min",
    "60",
    "-sc_threshold",
    "0",
    "-pix_fmt",
    "yuv420p",
    "-c:a",
    "aac",
    "-b:a",
    "96k",
]


# Picture times N/30 s plus up to 5 ms either way, kept through the encoder (millisecond time base).
JITTER = [
    "-vf",
    "settb=1/90000,setpts=N/30/TB+(random(0)-0.5)*0.010/TB",
    "-fps_mode",
    "passthrough",
    "-enc_time_base:v",
    "1/1000",
]


def publisher(name: str, *output: str, seconds: int | None = SECONDS, inputs: tuple[str, ...] = ()) -> Proc:
    """A real-time ffmpeg publisher for ``seconds``, or until it is stopped; ``inputs``: more of them."""
    source = ["-re", *lavfi_source(size="320x240"), *inputs, *(["-t", str(seconds)] if seconds else [])]
    return Proc(["ffmpeg", "-hide_banner", "-loglevel", "error", *source, *CODECS, *output], name=f"ffmpeg {name}")


# rtmp2sink ends the whole pipeline when a write has waited this long (5 s by default): on two busy
# cores the ingest can be that slow to read, and the captions would end with it.
RTMP_TIMEOUT = 60


def captioned_source(captions: Path) -> list[str]:
    """gst-launch elements of a live picture with CEA-608 captions (``captions``, a ``c608`` track of
    ``tests/captioned.py``) that ``cccombiner`` attaches and x264enc (with B-frames) writes as SEI, and a
    tone, both into the muxer named ``mux``."""
    return [
        "videotestsrc",
        "is-live=true",
        "!",
        "video/x-raw,width=320,height=240,framerate=30/1",
        "!",
        "cccombiner",
        "name=cc",
        "!",
        "x264enc",
        "speed-preset=ultrafast",
        "key-int-max=60",
        "bframes=2",
        "!",
        "h264parse",
        "!",
        "mux.",
        *caption_branch(captions),
        *aac_tone_branch(),
    ]


def gstreamer_publisher(url: str, passthrough_url: str, captions: Path) -> Proc:
    """GStreamer's RTMP publisher of ``captioned_source``: x264enc's B-frames make flvmux clamp the first
    decode times to 0, so the contribution repeats a DTS value.  The same stream goes to a live-encoded
    and a pass-through channel until it is stopped."""
    return Proc(
        [
            "gst-launch-1.0",
            "-q",
            "flvmux",
            "name=mux",
            "streamable=true",
            "!",
            "tee",
            "name=out",
            "!",
            "queue",
            "!",
            "rtmp2sink",
            f"location={url}",
            f"timeout={RTMP_TIMEOUT}",
            "out.",
            "!",
            "queue",
            "!",
            "rtmp2sink",
            f"location={passthrough_url}",
            f"timeout={RTMP_TIMEOUT}",
            *captioned_source(captions),
        ],
        name="gstreamer",
    )


def gstreamer_srt_publisher(url: str, captions: Path) -> Proc:
    """GStreamer's SRT caller (``srtsink``) sending ``captioned_source`` as MPEG-TS.  srtsink sends each
    buffer as one SRT message, and mpegtsmux makes a buffer of every 188-byte TS packet unless told
    otherwise.  Sent so, every packet of each IDR picture (50 to 70 messages back to back) went missing
    on the way, the same ones in every run, so no picture reached the encoder decodable and the channel
    never went live.  ``alignment=7`` makes 1316-byte messages of seven packets, as ffmpeg's SRT output
    and SRT's live mode have them; then nothing is lost."""
    return Proc(
        ["gst-launch-1.0", "-q", "mpegtsmux", "name=mux", "alignment=7", "!", "srtsink", f"uri={url}"]
        + captioned_source(captions),
        name="gstreamer srt",
    )


# The marker stream's break, in seconds after its first frame: out (1 s into a segment) for 6 s.
SPLICE_OUT, BREAK = 21.0, 6.0
EVENT_ID = 4077
# ID3 tags of the marker stream (TIT2 text, seconds after its first frame): inside segments, not on a boundary.
ID3_TAGS = [("kubecast id3 one", 13.5), ("kubecast id3 two", 16.25)]
# The sparse SCTE-35 track pushed beside enc-smooth's media: a break at this time of the push's clock
# (1 s into a segment when the media starts at 0), for this long.
SPARSE_EVENT_ID, SPARSE_OUT, SPARSE_BREAK = 5150, 29.0, 4.0
# Timed text the jittered RTMP publisher sends as onTextData (ffmpeg's FLV muxer, from a text subtitle stream).
TEXT_DATA = [("kubecast text one", 12.5), ("kubecast text two", 15.25)]


def text_subtitles(work: Path) -> Path:
    """``TEXT_DATA`` as SubRip, each shown for half a second."""
    path = work / "text.srt"

    def at(seconds: float) -> str:
        return f"00:00:{int(seconds):02d},{int(seconds * 1000) % 1000:03d}"

    path.write_text("".join(f"{n + 1}\n{at(t)} --> {at(t + 0.5)}\n{text}\n\n" for n, (text, t) in enumerate(TEXT_DATA)))
    return path


def markers_source(work: Path) -> tuple[Path, Fraction]:
    """SECONDS of ffmpeg TS (and a few more, which the injector's last block loses) with ID3 tags
    (``ID3_TAGS``) on a timed_id3 PID, and a splice out and back in on a SCTE-35 PID, both sent
    4 s ahead; and how far the first video DTS, which the markers' times count from, lies after
    the contribution's origin (the first frame in stream order: libavformat's re-mux may put an
    audio PES first)."""
    encoded = work / "encoded.ts"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", *lavfi_source(size="320x240"), "-t", str(SECONDS + 3), *CODECS]
        + ["-f", "mpegts", str(encoded)],
        check=True,
        timeout=120,
    )
    plain = work / "plain.ts"
    add_timed_id3(encoded, plain, [(at, ffmpeg_id3_tag(text)) for text, at in ID3_TAGS])
    first, origin = (
        int(
            subprocess.run(
                ["ffprobe", "-v", "error", *select, "-show_entries", "packet=dts", "-read_intervals", "%+#1"]
                + ["-of", "csv=p=0", str(plain)],
                check=True,
                timeout=30,
                capture_output=True,
                text=True,
            )
            .stdout.split()[0]
            .rstrip(",")
        )
        for select in (["-select_streams", "v"], [])
    )
    start = first / 90_000
    out = threefive_splice_insert(event_id=EVENT_ID, out=True, pts_seconds=start + SPLICE_OUT, duration=BREAK)
    back = threefive_splice_insert(event_id=EVENT_ID, out=False, pts_seconds=start + SPLICE_OUT + BREAK, duration=None)
    cues = [(start + SPLICE_OUT - 4, out), (start + SPLICE_OUT + BREAK - 4, back)]
    inject_scte35(plain, work / "markers.ts", cues)
    return work / "markers.ts", Fraction(first - origin, 90_000)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    work = tmp_path_factory.mktemp("protocols")
    markers, markers_lead = markers_source(work)
    http, ingest_http, srt, rtmps, https = free_port(), free_port(), free_port(), free_port(), free_port()
    certificate = make_certificate(work)
    up = kubecast(
        "up",
        "-f",
        str(HERE / "protocols.yaml"),
        "--store",
        str(work / "store"),
        "--single-encoder",
        "--rtmp-port",
        str(free_port()),
        "--http-port",
        str(http),
        "--ingest-http-port",
        str(ingest_http),
        "--srt-port",
        str(srt),
        "--rtmps-port",
        str(rtmps),
        "--ingest-https-port",
        str(https),
        "--tls-cert",
        str(certificate.cert),
        "--tls-key",
        str(certificate.key),
        "--status-interval",
        "5",
        cwd=str(work),
    )
    publishers = []
    try:
        up.wait_for_line(r"Status page:", timeout=120)
        printed = up.output(last=100000)
        udp = {
            name: int(re.search(r"udp://127\.0\.0\.1:(\d+)", section(printed, name)).group(1))
            for name in ("udp", "enc-udp", "enc-markers")
        }
        rtp = int(re.search(r"rtp://127\.0\.0\.1:(\d+)", section(printed, "rtp")).group(1))
        rtmp = int(re.search(r"rtmp://127\.0\.0\.1:(\d+)", printed).group(1))
        push = f"http://127.0.0.1:{ingest_http}/{KEY}/ingest"
        captions_until = time.monotonic() + CAPTIONED_SECONDS  # the GStreamer publisher starts after this
        publishers = [
            publisher("udp", "-f", "mpegts", f"udp://127.0.0.1:{udp['udp']}?pkt_size=1316"),
            publisher("rtp", "-f", "rtp_mpegts", f"rtp://127.0.0.1:{rtp}"),
            publisher(
                "srt", "-f", "mpegts", f"srt://127.0.0.1:{srt}?streamid=srt&passphrase={PASSPHRASE}&pkt_size=1316"
            ),
            publisher(
                "smooth", "-movflags", "isml+frag_keyframe", "-f", "ismv", f"{push}/smooth.isml/Streams(encoder1)"
            ),
            publisher("cmaf", "-seg_duration", "2", "-f", "dash", f"{push}/cmaf.cmaf/manifest.mpd"),
            publisher(
                "cmafhls",
                "-hls_time",
                "2",
                "-hls_segment_type",
                "fmp4",
                "-method",
                "PUT",
                "-f",
                "hls",
                f"{push}/cmafhls.cmaf/index.m3u8",
            ),
            # Over HTTPS ffmpeg checks the certificate against the test's CA, as a careful encoder would (its
            # verifying RTMPS handshake sometimes stalls, tests/ingest/test_tls.py).
            publisher("rtmps", "-f", "flv", f"rtmps://127.0.0.1:{rtmps}/live/rtmps/{KEY}", seconds=None),
            publisher(
                "https",
                "-movflags",
                "isml+frag_keyframe",
                "-tls_verify",
                "1",
                "-ca_file",
                str(certificate.ca),
                "-f",
                "ismv",
                f"https://127.0.0.1:{https}/{KEY}/ingest/https.isml/Streams(encoder1)",
                seconds=None,
            ),
            # Into live encoding: the same protocols, RTMP from a source whose picture times jitter by
            # up to 5 ms either way (to the millisecond FLV carries), and a GStreamer publisher.
            publisher("enc-udp", "-f", "mpegts", f"udp://127.0.0.1:{udp['enc-udp']}?pkt_size=1316"),
            publisher("enc-srt", "-f", "mpegts", f"srt://127.0.0.1:{srt}?streamid=enc-srt&pkt_size=1316"),
            publisher(
                "enc-smooth",
                "-movflags",
                "isml+frag_keyframe",
                "-f",
                "ismv",
                f"{push}/enc-smooth.isml/Streams(encoder1)",
            ),
            Proc(
                [sys.executable, str(HERE / "sparse_push.py"), f"{push}/enc-smooth.isml/Streams(scte35)"]
                + [str(work / "store" / "channels" / "enc-smooth" / "clock"), str(SPARSE_EVENT_ID)]
                + [str(SPARSE_OUT), str(SPARSE_BREAK)],
                name="sparse push enc-smooth",
            ),
            publisher("enc-cmaf", "-seg_duration", "2", "-f", "dash", f"{push}/enc-cmaf.cmaf/manifest.mpd"),
            publisher(
                "enc-rtmp",
                *JITTER,
                "-c:s",
                "text",
                "-f",
                "flv",
                f"rtmp://127.0.0.1:{rtmp}/live/enc-rtmp/{KEY}",
                inputs=("-i", str(text_subtitles(work))),
            ),
            gstreamer_publisher(
                f"rtmp://127.0.0.1:{rtmp}/live/enc-gst/{KEY}",
                f"rtmp://127.0.0.1:{rtmp}/live/cc-pass/{KEY}",
                caption_track(work, CAPTIONED_SECONDS),
            ),
            Proc(
                [sys.executable, str(HERE / "flvplay.py"), str(multitrack_source(work))]
                + [f"rtmp://127.0.0.1:{rtmp}/live/multitrack/{KEY}"],
                name="multitrack RTMP publisher",
            ),
            Proc(
                [
                    sys.executable,
                    str(HERE / "tsplay.py"),
                    str(markers),
                    f"127.0.0.1:{udp['enc-markers']}",
                    str(SECONDS),
                ],
                name="playout enc-markers",
            ),
        ]
        base = f"http://127.0.0.1:{http}"
        yield {
            "base": base,
            "up": up,
            "work": work,
            "rtmp": rtmp,
            "srt": srt,
            "push": push,
            "rtmps": rtmps,
            "https": https,
            "publishers": {process.name: process for process in publishers},
            "markers_lead": markers_lead,
            "captions_until": captions_until,
        }
    finally:
        for process in publishers:
            process.stop()
        up.stop(timeout=30)


MULTITRACK_TONES = (440, 1000)


def multitrack_source(work: Path) -> Path:
    """SECONDS of the test picture with two stereo AAC tracks, 440 Hz and then 1000 Hz (Debian's
    ffmpeg), for ``flvplay.py`` to publish as Enhanced RTMP multitrack audio."""
    path = work / "multitrack.mp4"
    tones = [arg for frequency in MULTITRACK_TONES for arg in lavfi_source(frequency=frequency)[4:]]
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", *lavfi_source(size="320x240")[:4], *tones, "-t", str(SECONDS)]
        + ["-map", "0:v", "-map", "1:a", "-map", "2:a", *CODECS, "-ac", "2", str(path)],
        check=True,
        timeout=120,
    )
    return path


def section(printed: str, channel: str) -> str:
    """The lines ``kubecast up`` printed for one channel."""
    return printed.split(f"Channel {channel}\n", 1)[1].split("\n\n", 1)[0]


def segments_of(base: str, channel: str, at_least: int):
    def ready():
        variants, _ = multivariant(f"{base}/live/{channel}/index.m3u8")
        playlist = media_playlist(variants[0].uri)
        return (variants, playlist) if len(playlist.segments) >= at_least else None

    return wait_until(ready, timeout=90, interval=1, what=f"{at_least} segments of {channel}")


LIVE_ENCODED = ["enc-rtmp", "enc-gst", "enc-smooth", "enc-cmaf", "enc-srt", "enc-udp"]


def ffmpeg_reads(url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["ffmpeg", "-v", "error", "-i", url, "-map", "0", "-t", "6", "-f", "null", "-"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


# First in the module, while every publisher is live (a live playlist that stops growing keeps
# ffmpeg waiting for the rest of its 6 s).
def test_ffmpeg_reads_every_live_encoded_protocol_without_a_complaint(pipeline):
    """A new user's first check, for live encoding fed by every protocol and by GStreamer: every
    rendition and the audio of HLS and DASH, 6 s each, read with no complaint (all at once)."""
    base = pipeline["base"]
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
    for key, reader in readers.items():
        try:
            _, stderr = reader.communicate(timeout=60)
        finally:
            reader.kill()
        complaints[key] = (reader.returncode, stderr.strip())
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


@pytest.mark.parametrize("channel", ["udp", "rtp", "srt", "smooth", "cmaf", "cmafhls", "rtmps", "https", "multitrack"])
def test_each_protocol_publishes_a_continuous_decodable_rendition(pipeline, channel):
    variants, playlist = segments_of(pipeline["base"], channel, 6)
    assert [v.attributes["RESOLUTION"] for v in variants] == ["320x240"]
    assert playlist.discontinuities == 0
    track = download(playlist)
    times = track.decode_times()
    assert all(later[0] == earlier[0] + earlier[1] for earlier, later in zip(times, times[1:])), (
        f"{channel}: tfdt continuous {times}"
    )
    scale = (
        track.timescale
    )  # pass-through keeps the source's clock: 90 kHz from TS, the track's own from Smooth and CMAF
    assert all(abs(duration - 2 * scale) <= scale // 30 for _, duration in times[:-1]), (
        f"{channel}: 2 s segments {times}"
    )
    frames = track.frames()
    assert len(frames) >= 30 * 2 * (len(times) - 1) and frames[0][1]


def test_an_enhanced_rtmp_multitrack_publish_is_taken_with_its_first_audio_track(pipeline):
    """FFmpeg 8 sends the second audio track as an Enhanced RTMP v2 multitrack tag, which the
    ingest once refused ("audio must be AAC"): now the publish is taken.  Enhanced RTMP names no
    language, so the second track is not published (a further track needs one)."""
    base = pipeline["base"]
    segments_of(base, "multitrack", 3)
    _, media = multivariant(f"{base}/live/multitrack/index.m3u8")
    audio = [m for m in media if m.get("TYPE") == "AUDIO"]
    assert len(audio) == 1, audio
    track = download(media_playlist(audio[0]["URI"]))
    frames = list(av.open(io.BytesIO(track.init + b"".join(track.segments)), format="mp4").decode(audio=0))
    assert tone_frequency(frames[4:]) == pytest.approx(MULTITRACK_TONES[0], rel=0.02), "the first track's tone"
    log = pipeline["up"].output(last=100_000).splitlines()
    assert not [line for line in log if "multitrack" in line and ("refused" in line or "closing" in line)]


def newest_segment(playlist: MediaPlaylist) -> int:
    return playlist.media_sequence + len(playlist.segments) - 1


def test_tls_only_channels_refuse_plain_publishers_and_shrug_off_broken_handshakes(pipeline):
    """A plain RTMP publisher gets the reason from the ingest; garbage and a distrusting client
    on the TLS ports end their own connections while both TLS channels keep publishing."""
    base = pipeline["base"]
    source = ["-f", "lavfi", "-i", "testsrc2=size=160x90:rate=30", "-t", "2", "-c:v", "libx264", "-preset", "ultrafast"]
    plain = subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            *source,
            "-f",
            "flv",
            f"rtmp://127.0.0.1:{pipeline['rtmp']}/live/rtmps/{KEY}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert plain.returncode != 0, plain.stderr
    assert "channel rtmps takes TLS only: publish to rtmps:// or https://" in plain.stderr, plain.stderr
    # By the newest segment's number: the count stops growing once the playlist's window is full.
    before = {channel: segments_of(base, channel, 2) for channel in ("rtmps", "https")}
    for port in (pipeline["rtmps"], pipeline["https"]):
        for garbage in (b"\x03" + bytes(1536), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x00\x05hello"):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(garbage)
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(4096):
                    pass
        with pytest.raises(ssl.SSLCertVerificationError):  # trusts the system's CAs, not the test's
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                ssl.create_default_context().wrap_socket(sock, server_hostname="localhost")
    for channel, (variants, earlier) in before.items():

        def two_more(url: str = variants[0].uri, after: int = newest_segment(earlier) + 2) -> MediaPlaylist | None:
            playlist = media_playlist(url)
            return playlist if newest_segment(playlist) >= after else None

        playlist = wait_until(two_more, timeout=90, interval=1, what=f"two more segments of {channel}")
        assert playlist.discontinuities == 0, f"{channel} carried on"
        assert pipeline["publishers"][f"ffmpeg {channel}"].alive(), pipeline["publishers"][f"ffmpeg {channel}"].output()


def test_each_protocol_plays_in_chromium_with_hlsjs(pipeline):
    playwright_sync, executable = _chromium()
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"],
        )
        try:
            for channel in ("udp", "rtp", "srt", "smooth", "cmaf", "cmafhls"):
                page = browser.new_page()
                page.goto(f"{pipeline['base']}/preview/{channel}/", timeout=30_000)
                page.wait_for_function(
                    "() => window.kubecastPlayer && window.kubecastPlayer.video && "
                    "window.kubecastPlayer.video.currentTime > 0.5",
                    timeout=45_000,
                )
                start = page.evaluate("() => window.kubecastPlayer.video.currentTime")
                page.wait_for_function(f"() => window.kubecastPlayer.video.currentTime > {start + 3}", timeout=30_000)
                assert page.evaluate("() => window.kubecastPlayer.errors") == [], channel
                page.close()
        finally:
            browser.close()


def test_captions_are_signalled_where_the_contribution_carries_them(pipeline):
    base = pipeline["base"]
    for channel in ("enc-gst", "cc-pass"):

        def signalled(channel=channel):
            text = fetch(f"{base}/live/{channel}/index.m3u8").decode()
            return text if 'CLOSED-CAPTIONS="cc"' in text else None

        text = wait_until(signalled, timeout=30, interval=1, what=f"{channel} signalling its captions")
        assert '#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="CC1",INSTREAM-ID="CC1",AUTOSELECT=YES' in text
        variants = [line for line in text.splitlines() if line.startswith("#EXT-X-STREAM-INF")]
        assert variants and all('CLOSED-CAPTIONS="cc"' in line for line in variants), text
        mpd = fetch(f"{base}/live/{channel}/manifest.mpd").decode()
        assert '<Accessibility schemeIdUri="urn:scte:dash:cc:cea-608:2015" value="CC1=und"/>' in mpd
    for channel in ("enc-rtmp", "srt"):  # ffmpeg's publishers send no captions
        assert "CLOSED-CAPTIONS" not in fetch(f"{base}/live/{channel}/index.m3u8").decode()
        assert "Accessibility" not in fetch(f"{base}/live/{channel}/manifest.mpd").decode()


def assert_captions_ahead(pipeline) -> None:
    """The captioned source is live and has cues left for at least another minute."""
    gstreamer = pipeline["publishers"]["gstreamer"]
    assert gstreamer.alive(), gstreamer.output()
    assert time.monotonic() + 60 < pipeline["captions_until"], f"the source's {CAPTIONED_SECONDS} s of cues are over"


def caption_numbers(srt: str) -> list[int]:
    return [int(number) for number in re.findall(r"CAPTION (\d+)", srt)]


def test_ffmpeg_reads_the_captions_back_from_every_rendition(pipeline):
    """ffmpeg's own 608 decoder reads the cues from our HLS: whole, in order, none twice."""
    assert_captions_ahead(pipeline)
    base = pipeline["base"]
    urls = [f"{base}/live/enc-gst/{rendition}/index.m3u8" for rendition in ("v144", "v72")]
    urls.append(f"{base}/live/cc-pass/video/index.m3u8")
    with ThreadPoolExecutor(len(urls)) as pool:
        read = dict(zip(urls, pool.map(lambda url: read_captions(url, seconds=10), urls)))
    for url, srt in read.items():
        numbers = caption_numbers(srt)
        assert len(numbers) >= 3 and numbers == list(range(numbers[0], numbers[0] + len(numbers))), (url, srt)
        assert all(f"{cue_text(n)}</font>" in srt for n in numbers), (url, srt)


# What hls.js has done so far, for the message of a wait that ran out.
PLAYER_STATE = (
    "() => ({time: window.v.currentTime, readyState: window.v.readyState, errors: window.errors,"
    " buffered: Array.from({length: window.v.buffered.length}, (_, i) =>"
    " [window.v.buffered.start(i), window.v.buffered.end(i)]),"
    " levels: window.player.levels.map((l) => l.details ? [l.details.startSN, l.details.endSN] : null),"
    " tracks: Array.from(window.v.textTracks, (t) => [t.kind, t.label, t.mode, t.cues ? t.cues.length : null])})"
)
# Every cue of every text track (a disabled track's cues cannot be read: those are made hidden), once
# there are two.
CUES = (
    "() => { const found = [];"
    " for (const track of window.v.textTracks) {"
    "   if (track.mode === 'disabled') track.mode = 'hidden';"
    "   for (const cue of track.cues || []) found.push([track.kind, track.label, cue.text]); }"
    " return found.length >= 2 ? found : null; }"
)


def test_hlsjs_shows_the_caption_track_with_its_cues(pipeline):
    """hls.js turns the 608 captions of the live-encoded channel into cues of a ``captions`` track
    labelled as the playlist names it.  Each wait is for one step of hls.js's own (the media buffered,
    then two captions parsed, which the source sends every 3 s), bounded for two busy cores, and a
    wait that runs out says how far hls.js got."""
    assert_captions_ahead(pipeline)
    assert_hlsjs_shows_the_captions(pipeline["base"], "enc-gst")


def test_captions_published_over_srt_by_gstreamer_reach_ffmpeg_and_hlsjs(pipeline, tmp_path):
    """GStreamer's captioned stream (608 pairs by pycaption, cccombiner, x264enc's SEI) published over SRT by
    srtsink, with the channel's passphrase, into a pass-through channel: the multivariant playlist signals
    the captions, ffmpeg's 608 decoder reads them back from its HLS, whole and in order, and hls.js shows
    them as the cues of a CC1 captions track."""
    base = pipeline["base"]
    url = f"srt://127.0.0.1:{pipeline['srt']}?streamid=cc-srt&passphrase={PASSPHRASE}"
    sender = gstreamer_srt_publisher(url, caption_track(tmp_path, 180))
    try:
        try:
            segments_of(base, "cc-srt", 3)
        except TimeoutError as error:
            raise AssertionError(f"{error}; srtsink said: {sender.output()!r}") from None
        assert 'CLOSED-CAPTIONS="cc"' in fetch(f"{base}/live/cc-srt/index.m3u8").decode()
        srt = read_captions(f"{base}/live/cc-srt/video/index.m3u8", seconds=10)
        numbers = caption_numbers(srt)
        assert len(numbers) >= 3 and numbers == list(range(numbers[0], numbers[0] + len(numbers))), srt
        assert all(f"{cue_text(n)}</font>" in srt for n in numbers), srt
        assert_hlsjs_shows_the_captions(base, "cc-srt")
        assert sender.alive(), sender.output()
    finally:
        sender.stop()


def assert_hlsjs_shows_the_captions(base: str, channel: str) -> None:
    """hls.js in Chromium plays ``channel`` and shows a ``CC1`` captions track whose cues are the
    source's captions, in order."""
    sync_api = players.sync_playwright()
    with sync_api.sync_playwright() as playwright:
        browser = players.chromium(playwright)
        try:
            page = browser.new_page()
            players.open_player(page, base, "hls", f"{base}/live/{channel}/index.m3u8")
            steps = [("media buffered", "() => window.v.buffered.length > 0", 60_000), ("two cues", CUES, 45_000)]
            for what, condition, timeout in steps:
                try:
                    found = page.wait_for_function(condition, timeout=timeout, polling=500)
                except sync_api.TimeoutError:
                    pytest.fail(f"hls.js: no {what} within {timeout / 1000:.0f} s: {page.evaluate(PLAYER_STATE)}")
            cues = found.json_value()
            assert page.evaluate("() => window.errors") == []
        finally:
            browser.close()
    assert {(kind, label) for kind, label, _ in cues} == {("captions", "CC1")}, cues
    numbers = [int(number) for _, _, text in cues for number in re.findall(r"^CAPTION (\d+)$", text)]
    assert [text for _, _, text in cues] == [cue_text(n) for n in numbers] and numbers == sorted(numbers), cues


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
    from kubecast.media.fmp4 import BoxStream, parse_fragment, parse_init

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


def tags_before_segments(playlist: str) -> dict[int, list[str]]:
    """Segment number -> the tags written before its URI."""
    tags: dict[int, list[str]] = {}
    pending: list[str] = []
    for line in playlist.splitlines():
        if line.startswith("#"):
            pending.append(line)
        elif line:
            tags[int(line.split(".")[0])] = pending
            pending = []
    return tags


# hls.js's splice out: the first SCTE35-OUT cue of its metadata text track, and the date range with the
# start of the fragment its START-DATE falls in.
HLS_SPLICE_OUT = (
    "() => { const cues = []; for (const t of window.v.textTracks) for (const c of (t.cues || []))"
    " if (c.value && c.value.key === 'SCTE35-OUT') cues.push(c.startTime);"
    " const level = window.player.levels.find((l) => l.details && l.details.dateRanges);"
    " if (!cues.length || !level) return null; const d = level.details;"
    " const r = Object.values(d.dateRanges).find((x) => x.attr['SCTE35-OUT']); if (!r) return null;"
    " const f = d.fragments.find((x) => x.programDateTime <= r.startDate.getTime() &&"
    " r.startDate.getTime() < x.programDateTime + x.duration * 1000);"
    " return f ? {cue: cues[0], range: r.startTime, out: r.attr['SCTE35-OUT'], id: r.id,"
    " fragment: f.start, pdt: f.programDateTime} : null; }"
)


def assert_hlsjs_splice_out(base: str, channel: str, out: TimelineCue, event_id: int) -> None:
    """hls.js in Chromium surfaces the splice out of ``channel`` as a date range (and a cue of its
    metadata track) at the splice frame's media time, within a frame."""
    playwright = sync_playwright()
    with playwright.sync_playwright() as driver:
        browser = chromium(driver)
        try:
            page = browser.new_page()
            open_player(page, base, "hls", f"{base}/live/{channel}/index.m3u8")
            seen = players.wait_for(page, f"the splice out of {channel} in hls.js", HLS_SPLICE_OUT, timeout=60)
            assert page.evaluate("() => window.errors") == []
        finally:
            browser.close()
    assert parse_splice_info(bytes.fromhex(seen["out"][2:])).splice.event_id == event_id
    # hls.js's media time of the splice: its fragment's start plus the IDR's offset in it (from the bytes).
    segment_start = Fraction(int(out.seconds // 2) * 2)
    assert abs(seen["range"] - (seen["fragment"] + float(out.seconds - segment_start))) <= 1 / 30, seen
    assert abs(seen["cue"] - seen["range"]) <= 1 / 30, "the metadata cue sits at the date range's media time"


def test_scte35_markers_of_a_playout_stream_reach_hlsjs_and_the_mpd(pipeline):
    """threefive's splice out and back in, carried over UDP into live encoding: each cue lands on
    the frame of its splice time (one IDR there in the segment, boundaries on the grid), hls.js
    surfaces the DATERANGE as metadata at that media time within a frame, and the MPD carries
    the SCTE-35 EventStream with the section; the endpoint's hlsCueTags adds EXT-X-CUE-OUT/-IN."""
    base, store = pipeline["base"], pipeline["work"] / "store" / "channels" / "enc-markers"

    def both_markers_and_the_segment_back_in_listed() -> tuple[str, Timeline] | None:
        # The DATERANGE of the splice back in is listed with the segment before the one it falls in
        # (it is known 4 s ahead), so wait for that segment too when the stream is still playing.
        playlist = fetch(f"{base}/live/enc-markers/v144/index.m3u8").decode()
        if "SCTE35-IN" not in playlist:
            return None
        timeline = Timeline.from_json((store / "timeline.json").read_bytes())
        listed = timeline.cues and int(timeline.cues[-1].seconds // 2) in tags_before_segments(playlist)
        return (playlist, timeline) if listed else None

    playlist, timeline = wait_until(
        both_markers_and_the_segment_back_in_listed, timeout=90, interval=1, what="both markers and their segments"
    )
    assert [(cue.event_id, cue.out) for cue in timeline.cues] == [(EVENT_ID, True), (EVENT_ID, False)]
    # The endpoint's hlsCueTags (protocols.yaml): the same break on whole segments, for older ad servers.
    first, back = (int(cue.seconds // 2) for cue in timeline.cues)
    assert back - first == 3, "out 1 s into a segment, back 6 s later"
    tags = tags_before_segments(playlist)
    assert [line for number in range(first, back + 1) for line in tags[number] if "CUE" in line] == [
        "#EXT-X-CUE-OUT:6.000",
        "#EXT-X-CUE-OUT-CONT:ElapsedTime=2.000,Duration=6.000",
        "#EXT-X-CUE-OUT-CONT:ElapsedTime=4.000,Duration=6.000",
        "#EXT-X-CUE-IN",
    ]
    assert playlist.count("#EXT-X-CUE") == 4
    epoch = json.loads(sorted((store / "clock").glob("epoch-*.json"))[-1].read_text())
    frame = Fraction(1, 30)
    for cue, after in zip(timeline.cues, (SPLICE_OUT, SPLICE_OUT + BREAK)):
        # The first frame opened the epoch; the splice times count from the first picture.
        expected = Fraction(epoch["firstSegment"] * 2) + pipeline["markers_lead"] + Fraction(after)
        assert abs(cue.seconds - expected) <= frame / 2 + Fraction(1, 1000), (cue, expected)
        number = int(cue.seconds // 2)
        assert cue.seconds % 2 != 0, "the splice is inside a segment, not on a boundary"
        for rendition in ("v144", "v72"):
            segment = fetch(f"{base}/live/enc-markers/{rendition}/{number}.m4s")
            assert idr_samples(segment) == [0, int((cue.seconds - number * 2) / frame)], (rendition, cue)
    out = timeline.cues[0]

    assert_hlsjs_splice_out(base, "enc-markers", out, EVENT_ID)
    assert_mpd_event_stream(base, "enc-markers", timeline.cues)


def assert_mpd_event_stream(base: str, channel: str, cues: list[TimelineCue]) -> None:
    """The live MPD of ``channel`` has the SCTE-35 EventStream: an Event at each cue's time, the first
    one's section (the splice out) in its Signal."""
    root = mpd(f"{base}/live/{channel}/manifest.mpd")
    namespace = {"m": "urn:mpeg:dash:schema:mpd:2011", "s": "http://www.scte.org/schemas/35/2016"}
    stream = root.find("m:Period/m:EventStream", namespace)
    assert stream is not None and stream.get("schemeIdUri") == "urn:scte:scte35:2014:xml+bin"
    events = stream.findall("m:Event", namespace)
    timescale = int(stream.get("timescale"))
    assert [Fraction(int(e.get("presentationTime")), timescale) for e in events] == [c.seconds for c in cues]
    binary = events[0].find("s:Signal/s:Binary", namespace).text
    assert parse_splice_info(base64.b64decode(binary)).splice.out is True


def test_a_smooth_sparse_track_of_scte35_reaches_hlsjs_the_mpd_and_the_smooth_manifest(pipeline):
    """A sparse SCTE-35 track pushed beside enc-smooth's media, as its own POST (AMS timed-metadata
    signalling, ``tests/e2e/sparse_push.py``): each cue lands on the frame of its time on the media's
    clock, with an IDR there in every rendition; hls.js surfaces the splice out's DATERANGE at that
    media time within a frame; the MPD's EventStream and the program's Smooth client manifest (a
    sparse StreamIndex on the video's clock, and its fragment) carry the sections."""
    base, store = pipeline["base"], pipeline["work"] / "store" / "channels" / "enc-smooth"
    pusher = pipeline["publishers"]["sparse push enc-smooth"]

    def both_cues_and_the_segment_back_in_listed() -> Timeline | None:
        playlist = fetch(f"{base}/live/enc-smooth/v144/index.m3u8").decode()
        if "SCTE35-IN" not in playlist:
            return None
        timeline = Timeline.from_json((store / "timeline.json").read_bytes())
        listed = timeline.cues and int(timeline.cues[-1].seconds // 2) in tags_before_segments(playlist)
        return timeline if listed else None

    try:
        timeline = wait_until(both_cues_and_the_segment_back_in_listed, timeout=90, interval=1, what="both cues")
    except TimeoutError as error:
        raise AssertionError(f"{error}; the sparse push said: {pusher.output()!r}") from None
    assert "sparse push answered 200" in pusher.output(), pusher.output()
    assert [(cue.event_id, cue.out) for cue in timeline.cues] == [(SPARSE_EVENT_ID, True), (SPARSE_EVENT_ID, False)]
    epoch = json.loads(sorted((store / "clock").glob("epoch-*.json"))[-1].read_text())
    frame = Fraction(1, 30)
    for cue, at in zip(timeline.cues, (SPARSE_OUT, SPARSE_OUT + SPARSE_BREAK)):
        # The push's times land on the channel timeline at the epoch's offset (to the millisecond).
        expected = Fraction(at) + Fraction(epoch["offsetMs"], 1000)
        assert abs(cue.seconds - expected) <= frame / 2 + Fraction(1, 1000), (cue, expected)
        number = int(cue.seconds // 2)
        assert cue.seconds % 2 != 0, "the splice is inside a segment, not on a boundary"
        for rendition in ("v144", "v72"):
            segment = fetch(f"{base}/live/enc-smooth/{rendition}/{number}.m4s")
            assert idr_samples(segment) == [0, int((cue.seconds - number * 2) / frame)], (rendition, cue)
    assert_mpd_event_stream(base, "enc-smooth", timeline.cues)
    # The program's Smooth client manifest: while it records, the sparse stream's times are the video's own.
    manifest = ET.fromstring(fetch(f"{base}/smooth-loc/show.ism/manifest"))
    (sparse,) = [index for index in manifest.iter("StreamIndex") if index.get("Type") == "text"]
    assert (sparse.get("Name"), sparse.get("Subtype"), sparse.get("ParentStreamIndex")) == ("scte35", "DATA", "video")
    timescale = int(sparse.get("TimeScale"))
    chunks = [(int(c.get("t")), base64.b64decode(c.findtext("f"))) for c in sparse.iter("c")]
    assert len(chunks) == 2, chunks
    for (t, section), cue in zip(chunks, timeline.cues):
        assert abs(Fraction(t, timescale) - cue.seconds) < Fraction(1, timescale), (t, timescale, cue)
        assert section == cue.section_bytes
    fragment = fetch(f"{base}/smooth-loc/show.ism/QualityLevels(0)/Fragments(scte35={chunks[0][0]})")
    moof = int.from_bytes(fragment[:4], "big")
    (samples,) = parse_fragment(fragment[:moof], fragment[moof:]).values()
    assert [sample.data for sample in samples] == [chunks[0][1]]
    assert parse_splice_info(chunks[0][1]).splice.event_id == SPARSE_EVENT_ID
    assert_hlsjs_splice_out(base, "enc-smooth", timeline.cues[0], SPARSE_EVENT_ID)


# hls.js's FRAG_PARSING_METADATA for the fragment holding the first tag: its start and the samples' times and bytes.
HLS_ID3_LISTEN = (
    "() => { window.id3 = []; window.player.on(Hls.Events.FRAG_PARSING_METADATA, (_e, d) => window.id3.push("
    "{sn: d.frag.sn, start: d.frag.start, samples: d.samples.map((s) => ({pts: s.pts, data: Array.from(s.data)}))})); }"
)
HLS_ID3_SEEN = "(number) => window.id3.find((m) => m.sn === number) || null"
HLS_STATE = (
    "() => ({time: window.v.currentTime, errors: window.errors, parsed: window.id3.map((m) => [m.sn, m.start]),"
    " fragments: window.player.levels.map((l) => l.details ? l.details.fragments.map((f) => [f.sn, f.start]) : null)})"
)


ID3_SCHEME = "https://aomedia.org/emsg/ID3"
# Shaka's emsg events (as plain values) and the metadata events it makes of the ID3 ones, from before it
# loads anything: Shaka reads a segment's emsg boxes when it appends the segment.
SHAKA_EMSG = (
    "window.emsgs = []; window.metadata = []; window.added = [];"
    " player.addEventListener('metadataadded', (e) => window.added.push([e.metadataType, e.startTime]));"
    " player.addEventListener('emsg', (e) => window.emsgs.push({scheme: e.detail.schemeIdUri,"
    " start: e.detail.startTime, id: e.detail.id, data: Array.from(e.detail.messageData)}));"
    " player.addEventListener('metadata', (e) => window.metadata.push({type: e.metadataType, start: e.startTime,"
    " key: e.payload.key, data: String(e.payload.data)}));"
)
SHAKA_EMSG_STATE = (
    "() => ({time: window.v.currentTime, errors: window.errors, seekRange: window.player.seekRange(),"
    " emsgs: window.emsgs.map((e) => [e.scheme, e.start]), metadata: window.metadata, added: window.added})"
)


def test_id3_timed_metadata_of_a_playout_stream_reaches_the_players(pipeline):
    """ffmpeg's ID3 tags on libavformat's timed_id3 stream, carried over UDP into live encoding:
    each lands on the channel timeline at its media time; the TS segment covering it carries it
    on a metadata PID that FFmpeg reads back, and the fMP4 segment as an emsg box.  hls.js reports
    it (FRAG_PARSING_METADATA) at that media time, from the TS variant and from the fMP4 one; Shaka, playing
    the program's DASH MPD, dispatches the emsg of its InbandEventStream's scheme at that time, and the
    tag's title as metadata."""
    base, store = pipeline["base"], pipeline["work"] / "store" / "channels" / "enc-markers"

    def listed():
        if not (store / "timeline.json").exists():
            return None
        timeline = Timeline.from_json((store / "timeline.json").read_bytes())
        return timeline if len(timeline.metadata) == len(ID3_TAGS) else None

    timeline = wait_until(listed, timeout=90, interval=1, what="both ID3 tags on the channel timeline")
    epoch = json.loads(sorted((store / "clock").glob("epoch-*.json"))[-1].read_text())
    items = timeline.metadata
    for item, (text, after) in zip(items, ID3_TAGS):
        assert text.encode() in item.id3_bytes
        # The first frame opened the epoch (to the millisecond); the tags' times count from the first picture.
        expected = Fraction(epoch["firstSegment"] * 2) + pipeline["markers_lead"] + Fraction(after)
        assert abs(item.seconds - expected) <= Fraction(1, 30), (item.seconds, expected)
    number = int(items[0].seconds // 2)
    wait_until(
        lambda: f"\n{number + 1}.ts".encode() in fetch(f"{base}/live/enc-markers/ts/v144/index.m3u8"),
        timeout=60,
        interval=1,
        what="the TS segment after the first tag's",
    )
    segment = fetch(f"{base}/live/enc-markers/ts/v144/{number}.ts")
    with av.open(io.BytesIO(segment), format="mpegts") as container:
        data = next(stream for stream in container.streams if stream.type == "data")
        packets = [(packet.pts, bytes(packet)) for packet in container.demux(data) if packet.size]
    assert packets == [(int(items[0].seconds * 90_000) % (1 << 33), items[0].id3_bytes)]
    assert fetch(f"{base}/live/enc-markers/v144/{number}.m4s")[4:8] == b"emsg"
    offset = float(items[0].seconds - number * 2)  # the tag's place in its segment

    playwright = sync_playwright()
    with playwright.sync_playwright() as driver:
        browser = chromium(driver)
        try:
            seen = {}
            for variant in ("ts/index.m3u8", "index.m3u8"):
                page = browser.new_page()
                open_player(page, base, "hls", f"{base}/live/enc-markers/{variant}", config={"startPosition": 0})
                page.evaluate(HLS_ID3_LISTEN)  # before the tag's fragment: hls.js starts seconds before it
                try:
                    found = page.wait_for_function(HLS_ID3_SEEN, arg=number, timeout=90_000)
                except playwright.TimeoutError:
                    pytest.fail(f"hls.js ({variant}) parsed no metadata of the tag in 90 s: {page.evaluate(HLS_STATE)}")
                seen[variant] = found.json_value()
                assert page.evaluate("() => window.errors") == [], variant
                page.close()
            # Shaka (DASH): the emsg of the MPD's InbandEventStream scheme, loaded a second before the tag, and the ID3
            # frames it reads from the message; it dispatches both when playback reaches the tag.  From the program's
            # MPD: its DVR window holds the tag however late this runs (a running program's MPD is dynamic, so
            # Shaka's time is the channel's media time).
            page = browser.new_page()
            at = float(items[0].seconds)
            open_player(page, base, "shaka", f"{base}/markers-loc/show.mpd", setup=SHAKA_EMSG, start=at - 1)
            emsg = players.wait_for(
                page,
                "Shaka's emsg of the tag",
                f"() => window.emsgs.find((e) => e.scheme === '{ID3_SCHEME}' && Math.abs(e.start - {at}) < 0.5)",
                timeout=60,
                state=SHAKA_EMSG_STATE,
            )
            frame = players.wait_for(
                page,
                "Shaka's metadata of the tag",
                "() => window.metadata.find((m) => m.type === 'org.id3' && m.key === 'TIT2'"
                f" && m.start === {emsg['start']})",
                timeout=10,
                state=SHAKA_EMSG_STATE,
            )
            shaka_segment = players.wait_for(
                page, "Shaka's segment of the tag", f"() => ({SHAKA_SEGMENT_AT})({emsg['start']})", timeout=10
            )
            assert page.evaluate("() => window.errors") == []
        finally:
            browser.close()
    for variant, parsed in seen.items():  # hls.js's media time of the tag: its fragment's start plus its offset
        assert [bytes(sample["data"]) for sample in parsed["samples"]] == [items[0].id3_bytes], variant
        assert abs(parsed["samples"][0]["pts"] - (parsed["start"] + offset)) <= 1 / 30, (variant, parsed["start"])
    # Shaka's time of the tag: the start of the segment it holds it in plus the tag's place in that segment.
    assert bytes(emsg["data"]) == items[0].id3_bytes, emsg
    assert abs(emsg["start"] - (shaka_segment["start"] + offset)) <= 1 / 30, (emsg, shaka_segment, offset)
    assert fetch(shaka_segment["uri"])[4:8] == b"emsg", shaka_segment
    assert frame["data"] == ID3_TAGS[0][0], frame


def test_rtmp_text_data_becomes_id3_in_the_ts_segments(pipeline):
    """ffmpeg's onTextData messages (a text subtitle stream over RTMP, into live encoding): each
    lands on the channel timeline at its media time as an ID3 tag of one TXXX frame, and the TS
    segment covering it carries that tag at that time, as FFmpeg reads it back."""
    base, store = pipeline["base"], pipeline["work"] / "store" / "channels" / "enc-rtmp"

    def listed():
        if not (store / "timeline.json").exists():
            return None
        timeline = Timeline.from_json((store / "timeline.json").read_bytes())
        return timeline if len(timeline.metadata) == len(TEXT_DATA) else None

    timeline = wait_until(listed, timeout=90, interval=1, what="both texts on the channel timeline")
    epoch = json.loads(sorted((store / "clock").glob("epoch-*.json"))[-1].read_text())
    for item, (text, after) in zip(timeline.metadata, TEXT_DATA):
        assert item.id3_bytes == text_tag("onTextData", text)
        expected = Fraction(epoch["firstSegment"] * 2) + Fraction(after)  # the first frame opened the epoch
        assert abs(item.seconds - expected) <= Fraction(1, 20), (item.seconds, expected)  # AAC priming: 21 ms
    item = timeline.metadata[0]
    number = int(item.seconds // 2)
    segment = fetch(f"{base}/live/enc-rtmp/ts/v144/{number}.ts")
    with av.open(io.BytesIO(segment), format="mpegts") as container:
        data = next(stream for stream in container.streams if stream.type == "data")
        packets = [(packet.pts, bytes(packet)) for packet in container.demux(data) if packet.size]
    assert packets == [(int(item.seconds * 90_000) % (1 << 33), item.id3_bytes)]


# Shaka's timeline regions as plain values, each with the text of its DASH Event (the section, in base64),
# recorded from before it loads anything; and the regions it entered, with the playhead then.
SHAKA_REGIONS = (
    "const text = (n) => !n ? '' : typeof n === 'string' ? n : (n.children || []).map(text).join('');"
    " const plain = (r) => ({scheme: r.schemeIdUri, id: r.id, start: r.startTime, end: r.endTime,"
    " values: Object.fromEntries((r.values || []).map((x) => [x.key, String(x.data)])),"
    " text: text(r.eventNode).trim()});"
    " window.regions = []; window.entered = [];"
    " player.addEventListener('timelineregionadded', (e) => window.regions.push(plain(e.detail)));"
    " player.addEventListener('timelineregionenter',"
    " (e) => window.entered.push({...plain(e.detail), at: v.currentTime}));"
)
# The segment of Shaka's own video index (its start on Shaka's timeline, its URL) that holds a time.
SHAKA_SEGMENT_AT = (
    "(t) => { const m = window.player.getManifest();"
    " for (const variant of (m ? m.variants : [])) { const index = variant.video && variant.video.segmentIndex;"
    " const position = index ? index.find(t) : null; const ref = position == null ? null : index.get(position);"
    " if (ref) return {start: ref.getStartTime(), uri: ref.getUris()[0]}; } return null; }"
)
SHAKA_STATE = (
    "() => ({time: window.v.currentTime, readyState: window.v.readyState, errors: window.errors,"
    " seekRange: window.player.seekRange(), regions: window.regions, entered: window.entered})"
)


def test_shaka_surfaces_the_scte35_markers_as_timeline_regions_at_their_frames(pipeline):
    """Shaka Player reads the same splice out and back in as timeline regions, from HLS's
    EXT-X-DATERANGE and from DASH's EventStream: each at the media time of the splice's frame on
    Shaka's own timeline (the start of the segment Shaka holds it in, plus the IDR's place in that
    segment's bytes) within a frame, and it enters the break when playback reaches it."""
    base, store = pipeline["base"], pipeline["work"] / "store" / "channels" / "enc-markers"
    wait_until(
        lambda: b"SCTE35-IN" in fetch(f"{base}/live/enc-markers/v144/index.m3u8"),
        timeout=90,
        interval=1,
        what="both markers in the playlist",
    )
    cues = Timeline.from_json((store / "timeline.json").read_bytes()).cues
    assert [(cue.event_id, cue.out) for cue in cues] == [(EVENT_ID, True), (EVENT_ID, False)]
    frame = 1 / 30
    # Per manifest: the regions Shaka must add, and from each the splice times it states ([out, in]).
    wanted = {
        # HLS: the date range (one ID for the splice out and back in) is one region from the out to the in.
        "index.m3u8": (
            "(r) => 'SCTE35-OUT' in r.values",
            lambda regions: [regions[0]["start"], regions[0]["end"]],
        ),
        "manifest.mpd": (
            "(r) => r.scheme === 'urn:scte:scte35:2014:xml+bin'",
            lambda regions: sorted({r["start"] for r in regions}),
        ),
    }
    want = {"index.m3u8": 1, "manifest.mpd": 2}
    seen = {}
    sync_api = sync_playwright()
    with sync_api.sync_playwright() as driver:
        browser = chromium(driver)
        try:
            for manifest, (markers, splices) in wanted.items():
                page = browser.new_page()
                open_player(page, base, "shaka", f"{base}/live/enc-markers/{manifest}", setup=SHAKA_REGIONS)
                regions = players.wait_for(
                    page,
                    f"the SCTE-35 regions of the {manifest}",
                    f"() => {{ const found = window.regions.filter({markers});"
                    f" return found.length >= {want[manifest]} ? found : null; }}",
                    timeout=60,
                    state=SHAKA_STATE,
                )
                times = splices(regions)
                assert len(times) == 2, (manifest, regions)
                segments = [
                    players.wait_for(page, f"Shaka's segment at {t}", f"() => ({SHAKA_SEGMENT_AT})({t})", timeout=30,
                                     state=SHAKA_STATE)
                    for t in times
                ]  # fmt: skip
                # Playback from a second before the break enters it.
                page.evaluate(f"() => {{ window.v.currentTime = {times[0] - 1}; window.v.play(); }}")
                entered = players.wait_for(
                    page,
                    f"entering the break of the {manifest}",
                    f"() => window.entered.find((r) => ({markers})(r) && Math.abs(r.start - {times[0]}) < 0.001)",
                    timeout=45,
                    state=SHAKA_STATE,
                )
                assert page.evaluate("() => window.errors") == [], manifest
                seen[manifest] = (regions, times, segments, entered)
                page.close()
        finally:
            browser.close()
    for manifest, (regions, times, segments, entered) in seen.items():
        for t, segment, cue in zip(times, segments, cues):
            offset = idr_samples(fetch(segment["uri"]))[1:]
            assert len(offset) == 1, (manifest, segment, "the splice's IDR is inside the segment Shaka has it in")
            assert abs(t - (segment["start"] + offset[0] * frame)) <= frame, (manifest, t, segment, offset, cue)
        assert times[0] <= entered["at"] <= times[1], (manifest, entered, times)
    hls, dash = (seen[m][0] for m in ("index.m3u8", "manifest.mpd"))
    assert {
        parse_splice_info(bytes.fromhex(r["values"]["SCTE35-OUT"][2:])).splice.event_id
        for r in hls
        if "SCTE35-OUT" in r["values"]
    } == {EVENT_ID}
    sections = [parse_splice_info(base64.b64decode(r["text"])).splice for r in sorted(dash, key=lambda r: r["start"])]
    assert [(s.event_id, s.out) for s in sections] == [(EVENT_ID, True), (EVENT_ID, False)], dash


def test_shaka_shows_the_caption_track_of_dash_with_its_cues(pipeline):
    """Shaka Player finds the CEA-608 captions the MPD's Accessibility descriptor names, offers them as
    a text track, and once it is selected turns the SEI in the video into cues of the expected text."""
    assert_captions_ahead(pipeline)
    base = pipeline["base"]
    with sync_playwright().sync_playwright() as driver:
        browser = chromium(driver)
        try:
            page = browser.new_page()
            open_player(page, base, "shaka", f"{base}/live/enc-gst/manifest.mpd")
            players.wait_for(page, "media buffered", "() => window.v.buffered.length > 0", timeout=60)
            tracks = page.evaluate(
                "() => window.player.getTextTracks().map((t) => ({kind: t.kind, mimeType: t.mimeType,"
                " language: t.language, label: t.label, id: t.originalTextId}))"
            )
            page.evaluate("() => window.player.selectTextTrack(window.player.getTextTracks()[0])")
            found = players.wait_for(page, "three cues", CUES.replace(">= 2", ">= 3"), timeout=60)
            assert page.evaluate("() => window.errors") == []
        finally:
            browser.close()
    assert len(tracks) == 1 and tracks[0]["mimeType"] == "application/cea-608", tracks
    # Shaka writes each cue as WebVTT with its 608 colours as classes: <c.white.bg_black>CAPTION 7</c>.  Unlike
    # hls.js it does not reset its 608 decoder where it joins, so a join in the middle of a caption's pairs
    # gives that caption's tail ("PTION 31") first; every cue after it is whole and in order.
    first, *texts = [re.sub(r"<[^>]*>", "", text) for _, _, text in found]
    numbers = [int(number) for text in texts for number in re.findall(r"^CAPTION (\d+)$", text)]
    assert texts == [cue_text(n) for n in range(numbers[0], numbers[0] + len(texts))], found
    assert first and cue_text(numbers[0] - 1).endswith(first), found

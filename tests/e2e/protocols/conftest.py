"""The protocols pipeline, started once for every module of this package: one ``kubecast up``
with every publisher of ``sources.py``, stopped after the package's last test."""

from __future__ import annotations

import re
import sys
import time

import pytest
from captioned import caption_track
from certificates import make_certificate
from helpers import Proc, free_port, kubecast

from .sources import (
    CAPTIONED_SECONDS,
    E2E,
    JITTER,
    KEY,
    PASSPHRASE,
    SECONDS,
    SPARSE_BREAK,
    SPARSE_EVENT_ID,
    SPARSE_OUT,
    LivePublishers,
    gstreamer_publisher,
    markers_source,
    multitrack_source,
    publisher,
    section,
    text_subtitles,
)


@pytest.fixture(scope="package")
def pipeline(tmp_path_factory):
    work = tmp_path_factory.mktemp("protocols")
    markers, markers_lead = markers_source(work)
    http, ingest_http, srt, rtmps, https = free_port(), free_port(), free_port(), free_port(), free_port()
    certificate = make_certificate(work)
    up = kubecast(
        "up",
        "-f",
        str(E2E / "protocols.yaml"),
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
    publishers, live = [], None
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
        # Every source made before the first publisher starts: none of them waits on the others' files.
        subtitles, multitrack = text_subtitles(work), multitrack_source(work)
        captions_until = time.monotonic() + CAPTIONED_SECONDS  # the GStreamer publisher starts after this
        captions = caption_track(work, CAPTIONED_SECONDS)
        # Into live encoding: the protocols below, RTMP from a source whose picture times jitter by up
        # to 5 ms either way (to the millisecond FLV carries), and a GStreamer publisher.
        live = LivePublishers(
            [
                publisher("enc-udp", "-f", "mpegts", f"udp://127.0.0.1:{udp['enc-udp']}?pkt_size=1316", seconds=None),
                publisher(
                    "enc-srt", "-f", "mpegts", f"srt://127.0.0.1:{srt}?streamid=enc-srt&pkt_size=1316", seconds=None
                ),
                publisher(
                    "enc-smooth",
                    "-movflags",
                    "isml+frag_keyframe",
                    "-f",
                    "ismv",
                    f"{push}/enc-smooth.isml/Streams(encoder1)",
                    seconds=None,
                ),
                publisher(
                    "enc-cmaf", "-seg_duration", "2", "-f", "dash", f"{push}/enc-cmaf.cmaf/manifest.mpd", seconds=None
                ),
                publisher(
                    "enc-rtmp",
                    *JITTER,
                    "-c:s",
                    "text",
                    "-f",
                    "flv",
                    f"rtmp://127.0.0.1:{rtmp}/live/enc-rtmp/{KEY}",
                    inputs=("-i", str(subtitles)),
                    seconds=None,
                ),
            ],
            SECONDS,
        )
        publishers = [
            *live.processes,
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
            Proc(
                [sys.executable, str(E2E / "sparse_push.py"), f"{push}/enc-smooth.isml/Streams(scte35)"]
                + [str(work / "store" / "channels" / "enc-smooth" / "clock"), str(SPARSE_EVENT_ID)]
                + [str(SPARSE_OUT), str(SPARSE_BREAK)],
                name="sparse push enc-smooth",
            ),
            gstreamer_publisher(
                f"rtmp://127.0.0.1:{rtmp}/live/enc-gst/{KEY}", f"rtmp://127.0.0.1:{rtmp}/live/cc-pass/{KEY}", captions
            ),
            Proc(
                [sys.executable, str(E2E / "flvplay.py"), str(multitrack)]
                + [f"rtmp://127.0.0.1:{rtmp}/live/multitrack/{KEY}"],
                name="multitrack RTMP publisher",
            ),
            Proc(
                [
                    sys.executable,
                    str(E2E / "tsplay.py"),
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
            "live": live,
            "markers_lead": markers_lead,
            "captions_until": captions_until,
        }
    finally:
        if live is not None:
            live.end()
        for process in publishers:
            process.stop()
        up.stop(timeout=30)

"""RTMPS and Smooth over HTTPS: plain publishers refused, broken handshakes shrugged off."""

from __future__ import annotations

import socket
import ssl
import subprocess

import pytest
from helpers import wait_until
from media_checks import MediaPlaylist, media_playlist

from .reading import segments_of
from .sources import KEY

pytestmark = pytest.mark.e2e


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

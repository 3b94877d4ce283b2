"""``kubecast test-pattern``: publish a moving test picture with a burned-in wall clock and a
beeping tone over RTMP, paced in real time.

It is a real RTMP publisher (FFmpeg's native RTMP client inside PyAV, H.264 + AAC in FLV),
so the demo exercises the same ingest path as OBS or a hardware encoder would.  The clock
shows the publisher's local wall-clock time, which makes end-to-end latency visible on the
player.  The publish URL holds the stream key, so it is read from the environment
(``KUBECAST_PUBLISH_URL``) rather than from argv, where ``ps`` would show it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from datetime import datetime

import av

from .clockface import clock_filters

log = logging.getLogger("kubecast.test-pattern")


def source_graph(*, width: int, height: int, fps: int, offset_seconds: float) -> str:
    digit_height = max(24, height // 12)
    clock = clock_filters(
        offset_seconds=offset_seconds, x=digit_height // 2, y=height - 2 * digit_height, digit_height=digit_height
    )
    video = ",".join([f"testsrc2=size={width}x{height}:rate={fps}", *clock, "format=yuv420p"])
    audio = "sine=frequency=1000:beep_factor=4:sample_rate=48000,aformat=sample_fmts=fltp:channel_layouts=stereo"
    return f"{video}[out0];{audio}[out1]"


def seconds_since_local_midnight(now: datetime | None = None) -> float:
    now = now or datetime.now().astimezone()
    return now.hour * 3600 + now.minute * 60 + now.second + now.microsecond / 1e6


def publish(url: str, *, width: int, height: int, fps: int, bitrate: int, duration: float | None, preset: str) -> None:
    """Publish once; returns at ``duration`` or raises when the connection fails."""
    source = av.open(
        source_graph(width=width, height=height, fps=fps, offset_seconds=seconds_since_local_midnight()), format="lavfi"
    )
    output = av.open(url, "w", format="flv")
    try:
        video_out = output.add_stream("libx264", rate=fps)
        video_out.width, video_out.height, video_out.pix_fmt = width, height, "yuv420p"
        video_out.bit_rate = bitrate
        video_out.codec_context.options = {"preset": preset, "tune": "zerolatency", "g": str(fps), "bf": "0"}
        audio_out = output.add_stream("aac", rate=48000)
        audio_out.bit_rate = 128_000
        audio_out.layout = "stereo"
        started = time.monotonic()
        for packet in source.demux():
            for frame in packet.decode():
                # the lavfi graph decodes to timed video and audio frames only
                assert (
                    isinstance(frame, (av.VideoFrame, av.AudioFrame))
                    and frame.pts is not None
                    and frame.time_base is not None
                )
                media_time = float(frame.pts * frame.time_base)
                if duration is not None and media_time >= duration:
                    return
                # Real-time pacing: a live encoder produces media no faster than the clock.
                delay = started + media_time - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                out_packets = video_out.encode(frame) if isinstance(frame, av.VideoFrame) else audio_out.encode(frame)
                for out_packet in out_packets:
                    output.mux(out_packet)
    finally:
        source.close()
        output.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubecast test-pattern", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT of the picture")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--bitrate", type=int, default=4_000_000, help="video bit/s")
    parser.add_argument("--preset", default="veryfast", help="libx264 preset of the contribution")
    parser.add_argument("--duration", type=float, default=None, help="seconds to publish; default: until stopped")
    parser.add_argument("--retry", type=float, default=1.0, help="seconds between reconnection attempts")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    url = os.environ.get("KUBECAST_PUBLISH_URL")
    if not url:
        parser.error("set KUBECAST_PUBLISH_URL to rtmp://HOST:PORT/live/<stream key>")
    width, height = (int(part) for part in args.size.split("x"))
    while True:
        try:
            publish(
                url,
                width=width,
                height=height,
                fps=args.fps,
                bitrate=args.bitrate,
                duration=args.duration,
                preset=args.preset,
            )
            return 0
        except KeyboardInterrupt:
            return 0
        except (av.error.FFmpegError, OSError) as error:
            # The URL holds the stream key: log the failure, never the URL.
            log.warning(
                "publish failed (%s); retrying in %.1fs",
                type(error).__name__ + ": " + str(error).split(":")[0],
                args.retry,
            )
            time.sleep(args.retry)


if __name__ == "__main__":
    sys.exit(main())

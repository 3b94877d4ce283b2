"""Publishes a media file over RTMP in real time with FFmpeg's own FLV muxer and RTMP client,
as PyAV bundles them (FFmpeg 8):

    python flvplay.py FILE rtmp://HOST:PORT/APP/NAME

The packets are remuxed, not encoded.  FFmpeg 8's FLV muxer sends the first audio stream as a
legacy AAC tag and every further one as an Enhanced RTMP v2 multitrack audio track (its track
id the stream's place among the audio streams), as OBS Studio 30+ does with several audio
tracks.  Debian's ffmpeg (5.1) refuses a second audio stream in FLV, and Debian's GStreamer
(1.22) has no ``eflvmux``: this is the one multitrack RTMP publisher on the machine.
"""

from __future__ import annotations

import sys
import time

import av


def main() -> None:
    source = av.open(sys.argv[1])
    inputs = [s for s in source.streams if s.type in ("video", "audio")]
    output = av.open(sys.argv[2], "w", format="flv")
    outputs = {s.index: output.add_stream_from_template(s) for s in inputs}
    started, first = time.monotonic(), None
    for packet in source.demux(*inputs):
        if packet.dts is None or packet.time_base is None:
            continue  # the demuxer's flush packet
        at = float(packet.dts * packet.time_base)
        first = at if first is None else first
        if (wait := started + at - first - time.monotonic()) > 0:
            time.sleep(wait)
        packet.stream = outputs[packet.stream.index]
        output.mux(packet)
    output.close()


if __name__ == "__main__":
    main()

"""Preview thumbnails: a decoded picture as JPEG through FFmpeg's mjpeg encoder (no Pillow); for
a pass-through channel, which decodes nothing else, the picture of one of its key frames."""

from __future__ import annotations

from fractions import Fraction

import av
from av.video.reformatter import Interpolation, VideoReformatter

THUMBNAIL_WIDTH = 640


def jpeg_thumbnail(frame: av.VideoFrame, reformatter: VideoReformatter | None = None) -> bytes:
    width = min(THUMBNAIL_WIDTH, frame.width) // 2 * 2
    height = max(2, round(frame.height * width / frame.width) // 2 * 2)
    picture = (reformatter or VideoReformatter()).reformat(
        frame, width=width, height=height, format="yuvj420p", interpolation=Interpolation.BILINEAR
    )
    picture.pts = None
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    encoder.options = {"q:v": "5"}
    encoder.open()
    packets = list(encoder.encode(picture)) + list(encoder.encode(None))
    return b"".join(bytes(packet) for packet in packets)


def key_frame_picture(avcc: bytes, data: bytes) -> av.VideoFrame | None:
    """The picture of one H.264 key frame (``data``, with its configuration ``avcc``), or None."""
    decoder = av.CodecContext.create("h264", "r")
    decoder.extradata = avcc
    try:
        pictures = decoder.decode(av.Packet(data)) + decoder.decode(None)
    except av.error.FFmpegError:
        return None
    return pictures[0] if pictures else None

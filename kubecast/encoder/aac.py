"""The one audio configuration live encoding makes: AAC-LC, 48 kHz, stereo, at the channel's
``audioBitrate``.  The transcoder, the slate's silence and both encoders of a pair make exactly
this one, so that a track keeps one init segment whatever made its frames."""

from __future__ import annotations

from fractions import Fraction

import av

from kubecast.media.mp4 import aac_codec_string, init_segment_audio
from kubecast.media.tracks import TrackInfo
from kubecast.storage import layout

SAMPLE_RATE = 48_000
AAC_FRAME = 1024
AAC_SAMPLE_RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350]


def asc_sample_rate_and_channels(asc: bytes) -> tuple[int, int]:
    if len(asc) < 2:
        raise ValueError("AudioSpecificConfig too short")
    index = ((asc[0] & 0x07) << 1) | (asc[1] >> 7)
    channels = (asc[1] >> 3) & 0x0F
    if index >= len(AAC_SAMPLE_RATES):
        raise ValueError(f"unsupported AAC sampling frequency index {index}")
    return AAC_SAMPLE_RATES[index], channels or 2


def aac_encoder(bitrate: int) -> av.AudioCodecContext:
    """The one AAC-LC encoder set-up (48 kHz stereo): the transcoder's and the slate's silence
    must have the same AudioSpecificConfig, so that they share an init segment."""
    encoder = av.CodecContext.create("aac", "w")
    encoder.sample_rate, encoder.layout, encoder.format = SAMPLE_RATE, "stereo", "fltp"
    encoder.bit_rate = bitrate
    encoder.time_base = Fraction(1, SAMPLE_RATE)
    encoder.flags |= av.codec.context.Flags.global_header
    encoder.open()
    return encoder


def silent_frame(pts: int) -> av.AudioFrame:
    """One AAC frame's worth of silence at ``pts`` (48 kHz stereo, planar float)."""
    frame = av.AudioFrame(format="fltp", layout="stereo", samples=AAC_FRAME)
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, pts, Fraction(1, SAMPLE_RATE)
    return frame


def mdhd_language(language: str | None) -> str:
    """The init segment's media language: ISO 639-2/T codes only (the box holds three letters)."""
    return language if language is not None and len(language) == 3 else "und"


def aac_track(
    encoder: av.AudioCodecContext, bitrate: int, *, track_id: str = "audio", language: str | None = None
) -> tuple[TrackInfo, bytes]:
    """The audio track an ``aac_encoder`` makes, and its init segment (once it has encoded)."""
    assert encoder.extradata is not None  # the AAC encoder's AudioSpecificConfig, there once it encodes
    asc = bytes(encoder.extradata)
    init = init_segment_audio(
        sample_rate=SAMPLE_RATE,
        channels=2,
        timescale=SAMPLE_RATE,
        asc=asc,
        bitrate=bitrate,
        language=mdhd_language(language),
    )
    info = TrackInfo(
        id=track_id,
        kind="audio",
        codecs=aac_codec_string(asc),
        bandwidth=bitrate,
        timescale=SAMPLE_RATE,
        init=layout.init_name(init),
        sample_rate=SAMPLE_RATE,
        channels=2,
        language=language,
    )
    return info, init

"""Named encoding ladders, as Azure Media Services named them.

Source: Azure Media Services documentation, "Live event types comparison", section
"System presets" (articles/media-services/latest/live-event-types-comparison.md), which
lists the output of the Standard live encoder (``Default720p``) and of the Premium1080p
live encoder (``Default1080p``): six H.264 High-profile video layers at up to 30 fps each,
plus stereo AAC-LC audio at 128 kbit/s, 48 kHz.  Users migrating from AMS get the ladders
their players were tuned for; anyone else writes their own list in ``spec.encoding``.
"""

from __future__ import annotations

from .renditions import H264Profile, Rendition

AUDIO_BITRATE = 128_000
AUDIO_SAMPLE_RATE = 48_000


def _ladder(rows: list[tuple[int, int, int]]) -> list[Rendition]:
    return [
        Rendition(name=f"video_{kbps}", width=width, height=height, bitrate=kbps * 1000, profile=H264Profile.HIGH)
        for kbps, width, height in rows
    ]


PRESETS: dict[str, list[Rendition]] = {
    "Default720p": _ladder(
        [
            (3500, 1280, 720),
            (2200, 960, 540),
            (1350, 704, 396),
            (850, 512, 288),
            (550, 384, 216),
            (200, 340, 192),
        ]
    ),
    "Default1080p": _ladder(
        [
            (5500, 1920, 1080),
            (3000, 1280, 720),
            (1600, 960, 540),
            (800, 640, 360),
            (400, 480, 270),
            (200, 320, 180),
        ]
    ),
}

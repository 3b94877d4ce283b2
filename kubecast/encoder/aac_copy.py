"""When a live-encoded channel copies a contribution's AAC instead of re-encoding it, and the
silence that takes a copied track's place.

Live encoding makes one audio configuration: AAC-LC, 48 kHz, stereo, at the channel's
``audioBitrate`` (``audio.aac_encoder``).  The slate's silence and both encoders of a pair make
the same one, so one init segment serves them all.  A contribution track that already is AAC-LC
at 48 kHz in stereo gains nothing from being decoded and encoded again, and that encode is most
of what a further language costs (#19: 0.068 cores for one), so its frames are copied: they
keep their bytes and take the frame-grid times a re-encode would have given them.  The track's
init segment stays the re-encoder's (the same AudioSpecificConfig meaning, the same declared
bitrate), so a track may change between copied and re-encoded at any frame — from one
contribution to the next, from one encoder of the pair to the other — without a new init
segment and without a discontinuity.

Where a copied track must be silent (a manual slate's segments, the fill up to the boundary
where an input-loss slate starts) it carries AAC frames of digital silence, encoded once per
configuration: after its first frame, the encoder turns silent input into the same few bytes
frame after frame.

A copied track's bitrate is checked per segment (``SegmentBitrate``): a contribution sending
more than the channel's ``audioBitrate`` promised its viewers is re-encoded from the next segment
on, as one in another configuration is from the start.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from .aac import AAC_FRAME, AAC_SAMPLE_RATES, SAMPLE_RATE, aac_encoder, silent_frame

AAC_LC = 2
AAC_SBR = 5  # the extension object type of HE-AAC
SYNC_EXTENSION = 0x2B7  # ISO/IEC 14496-3 1.6.2.1: backward-compatible signalling of an extension
# Above audioBitrate by more than this, a segment of copied frames ends the copy.  AAC encoders,
# ours included, spend a little more on some segments than their nominal rate.
BITRATE_TOLERANCE = 1.10


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.data, self.position = data, 0

    @property
    def left(self) -> int:
        return 8 * len(self.data) - self.position

    def read(self, count: int) -> int:
        if count > self.left:
            raise ValueError("AudioSpecificConfig too short")
        value = 0
        for _ in range(count):
            byte = self.data[self.position // 8]
            value = (value << 1) | ((byte >> (7 - self.position % 8)) & 1)
            self.position += 1
        return value


def _object_type(bits: _Bits) -> int:
    kind = bits.read(5)
    return 32 + bits.read(6) if kind == 31 else kind


def _sample_rate(bits: _Bits) -> int:
    index = bits.read(4)
    if index == 0x0F:
        return bits.read(24)
    if index >= len(AAC_SAMPLE_RATES):
        raise ValueError(f"reserved sampling frequency index {index}")
    return AAC_SAMPLE_RATES[index]


def copy_refusal(asc: bytes) -> str | None:
    """Why a track with this AudioSpecificConfig must be re-encoded (None: its frames can be
    copied): anything but AAC-LC, 1024-sample frames, at 48 kHz in stereo, with no extension
    (SBR, PS) signalled."""
    bits = _Bits(asc)
    try:
        kind = _object_type(bits)
        if kind != AAC_LC:
            return f"AAC object type {kind}, not AAC-LC ({AAC_LC})"
        rate = _sample_rate(bits)
        if rate != SAMPLE_RATE:
            return f"{rate} Hz, not {SAMPLE_RATE}"
        channels = bits.read(4)
        if channels != 2:
            return f"channel configuration {channels}, not stereo (2)"
        frame_length, core_coder, extension = bits.read(1), bits.read(1), bits.read(1)
        if frame_length or core_coder or extension:
            return "960-sample frames, a core coder or an extension flag in GASpecificConfig"
        if bits.left >= 16 and bits.read(11) == SYNC_EXTENSION:
            extension_type = _object_type(bits)
            if extension_type != AAC_SBR or bits.read(1):
                return f"extension object type {extension_type} signalled present"
        elif any(asc[2:]):
            return "unknown bytes after the GASpecificConfig"
    except ValueError as error:
        return str(error)
    return None


@functools.cache
def silent_aac_frame(bitrate: int) -> bytes:
    """One AAC frame of digital silence in the configuration ``aac_encoder(bitrate)`` makes: the
    encoder's steady output for silent input (its first frames carry its priming and an
    identifying fill element)."""
    encoder = aac_encoder(bitrate)
    frames = (silent_frame(pts) for pts in range(0, 8 * AAC_FRAME, AAC_FRAME))
    packets = [bytes(packet) for frame in frames for packet in encoder.encode(frame)]
    if len(packets) < 4 or len(set(packets[-3:])) != 1:
        raise RuntimeError("the AAC encoder's output for silence does not settle")
    return packets[-1]


@dataclass
class SegmentBitrate:
    """The bitrate of the copied frames of each segment, told when the segment is over: whole
    segments only, so that both encoders of a pair judge the same frames alike."""

    timescale: int
    number: int | None = None
    size: int = 0
    frames: int = 0

    def add(self, number: int, size: int) -> int | None:
        """A frame of ``size`` bytes in segment ``number``; the bitrate of the segment before
        when this frame starts a new one."""
        finished = None
        if self.number is not None and number != self.number and self.frames:
            finished = self.size * 8 * self.timescale // (self.frames * AAC_FRAME)
        if number != self.number:
            self.number, self.size, self.frames = number, 0, 0
        self.size += size
        self.frames += 1
        return finished

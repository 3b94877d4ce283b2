"""Closed captions on their way through the encoder (``kubecast.media.captions`` reads and writes them).

Live encoding: FFmpeg's H.264 decoder gives each picture its ``cc_data`` (A/53 side data, in
presentation order); ``PictureCaptions`` hands it to the slot that picture takes on the
constant-frame-rate grid, and the renditions write it back as SEI into that slot's picture.  A
picture the grid drops passes its captions on to the next one, and a repeated picture repeats
none, so no caption byte is lost or doubled.  libx264's own A/53 writer is off: it would copy a
repeated picture's captions with it.

Malformed caption bytes cost that picture its captions, with a log line (at most one per
``LOG_SECONDS``) and ``kubecast_encoder_caption_errors_total``, and nothing else: the picture is
encoded or passed through as it came.
"""

from __future__ import annotations

import logging
import time

import av
from av.sidedata.sidedata import SideDataContainer, Type

from kubecast.media.captions import MAX_CC_COUNT, CaptionChannels, CaptionError, cc_data_of_sample, valid_triplets

from . import metrics

log = logging.getLogger("kubecast.encoder")

LOG_SECONDS = 10.0
# Caption triplets waiting for a picture: a second of the most a 60 fps source can send.
MAX_PENDING = 3 * MAX_CC_COUNT * 60


class CaptionErrors:
    """Counts malformed caption input and logs it, at most once per ``LOG_SECONDS``."""

    def __init__(self, where: str) -> None:
        self.where = where
        self._logged_at = float("-inf")
        self._unlogged = 0

    def __call__(self, reason: str, detail: str) -> None:
        metrics.CAPTION_ERRORS.labels(reason).inc()
        now = time.monotonic()
        if now - self._logged_at < LOG_SECONDS:
            self._unlogged += 1
            return
        more = f" ({self._unlogged} more since the last report)" if self._unlogged else ""
        log.warning("caption data of %s dropped: %s%s", self.where, detail, more)
        self._logged_at, self._unlogged = now, 0


class PictureCaptions:
    """The captions of the decoded pictures of one contribution, on their way to the grid's slots."""

    def __init__(self) -> None:
        self.channels = CaptionChannels()
        self._pending = bytearray()
        self._errors = CaptionErrors("the contribution's video")

    def arrive(self, frame: av.VideoFrame) -> None:
        # Not ``frame.side_data``: the frame keeps that container and the container the frame, a
        # cycle that only Python's garbage collector frees, so every decoded picture (with its
        # buffer from the decoder's pool, which never shrinks) outlived its use by up to minutes,
        # and the pool grew to hundreds of pictures (bench/starve.py).  A container of our own
        # refers to the frame without the frame referring back.
        found = SideDataContainer(frame).get(Type.A53_CC)  # type: ignore[call-arg]  # the stub omits __init__
        if found is None:
            return
        data = bytes(found)
        if len(data) % 3:
            self._errors("truncated", f"{len(data)} bytes of cc_data are not whole triplets")
        triplets = valid_triplets(data)
        self.channels.feed(triplets)
        self._pending += triplets
        if len(self._pending) > MAX_PENDING:
            excess = len(self._pending) - MAX_PENDING
            del self._pending[: excess + (3 - excess % 3) % 3]
            self._errors("overflow", "more caption data than the pictures can carry")

    def take(self) -> bytes:
        """The captions for the next slot a picture of the contribution takes (not a repeat)."""
        taken = bytes(self._pending[: 3 * MAX_CC_COUNT])
        del self._pending[: 3 * MAX_CC_COUNT]
        return taken

    def discard(self) -> None:
        """The captions of pictures that are not encoded (before the first segment this connection encodes)."""
        self._pending.clear()


class SampleCaptions:
    """Which 608 channels a passed-through track carries, read from its samples' SEI."""

    def __init__(self, track: str) -> None:
        self.channels = CaptionChannels()
        self._errors = CaptionErrors(f"pass-through track {track}")

    def read(self, sample: bytes) -> None:
        try:
            triplets = cc_data_of_sample(sample)
        except CaptionError as error:
            self._errors("malformed", str(error))
            return
        if triplets:
            self.channels.feed(valid_triplets(triplets))

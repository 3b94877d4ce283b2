"""The rule every ingest applies to timed metadata (ID3 tags) before the encoders see it.

The tags must be whole (``kubecast.media.id3``: header, sizes, frames) and their time must lie
near the media: not more than ``MAX_DISTANCE_SECONDS`` before or after the newest frame of the
contribution (a tag hours away is a broken clock, and would land in no segment anyone plays).
Anything else is dropped with a reason counted in
``kubecast_ingest_metadata_rejected_total{channel,reason}`` and logged once per reason and
contribution, as ad markers are (``kubecast.ingest.cues``): the media goes on untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubecast.media.contribution import Metadata
from kubecast.media.id3 import Id3Error, split_tags

from . import metrics
from .refusals import Refusals

MAX_DISTANCE_SECONDS = 60


@dataclass
class MetadataGate(Refusals):
    """Judges one contribution's timed metadata."""

    counter = metrics.METADATA_REJECTED
    dropping = "timed metadata"

    def id3(self, data: bytes, *, timescale: int, time: int, now: int | None) -> Metadata | None:
        """The item of ID3 tags ``data`` at ``time`` (the contribution's clock, in ``timescale``),
        or None (refused).  ``now`` is the newest frame's time (None: no frame yet)."""
        try:
            split_tags(data)
        except Id3Error as error:
            self.refuse(error.reason, str(error))
            return None
        if now is None:
            self.refuse("early", "ID3 tags before the contribution's first frame")
            return None
        if abs(time - now) > MAX_DISTANCE_SECONDS * timescale:
            self.refuse("time", f"ID3 tags {(time - now) / timescale:.0f} s from the newest frame")
            return None
        return Metadata(timescale, time, data)

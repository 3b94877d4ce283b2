"""Timed metadata on the channel timeline: ID3 tags an encoder placed, and what the timeline lists (pure).

The path of an ad marker (``kubecast.media.cues``), for the ID3 tags of a contribution: an
encoder places each at its media time on the channel timeline and lists it in its
``progress.json``; the timeline merge takes the union of both encoders' lists (a pair places an
item identically, so it is listed once) and keeps what still lies in the window; programs copy
them into their recordings; the endpoint writes them into the TS segments that cover their time,
and as ``emsg`` boxes (``event_message``) into the fMP4 segments of the video renditions.
The tags are as the contribution sent them (``kubecast.media.id3`` checked them at the ingest).
"""

from __future__ import annotations

import base64
import struct
import zlib
from fractions import Fraction

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from .contribution import Metadata
from .mp4 import full_box

ID3_SCHEME = "https://aomedia.org/emsg/ID3"  # AOM "Carriage of ID3 Timed Metadata in CMAF"
UNKNOWN_DURATION = 0xFFFFFFFF
MAX_ITEMS = 500  # listed per timeline, the newest: a tag every 10 s over an hour's window, bounded against a flood


class TimelineMetadata(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    time: int  # channel media time, in ``timescale``
    timescale: int
    id3: str  # the ID3v2 tags, base64

    @classmethod
    def placed(cls, item: Metadata, *, time: int, timescale: int) -> TimelineMetadata:
        """``item`` of the contribution, placed at ``time`` of the channel timeline."""
        return cls(time=time, timescale=timescale, id3=base64.b64encode(item.data).decode())

    @property
    def seconds(self) -> Fraction:
        return Fraction(self.time, self.timescale)

    @property
    def id3_bytes(self) -> bytes:
        return base64.b64decode(self.id3)

    @property
    def key(self) -> tuple[Fraction, str]:
        return self.seconds, self.id3


def merge_metadata(
    listed: list[TimelineMetadata], offered: list[TimelineMetadata], *, since: Fraction | None
) -> list[TimelineMetadata]:
    """``listed`` and ``offered``, each item once, in time order, without those before ``since``
    (the window's start; None: keep all)."""
    items = {item.key: item for item in listed}
    for item in offered:
        items.setdefault(item.key, item)
    kept = [item for item in items.values() if since is None or item.seconds >= since]
    return sorted(kept, key=lambda item: item.key)[-MAX_ITEMS:]


def in_range(items: list[TimelineMetadata], start: Fraction, end: Fraction) -> list[TimelineMetadata]:
    """The items at media times in [``start``, ``end``): those one segment carries."""
    return [item for item in items if start <= item.seconds < end]


def event_message(item: TimelineMetadata) -> bytes:
    """``item`` as an ``emsg`` box of version 1 (ISO/IEC 23009-1 5.10.3.3) as the AOM ID3-in-CMAF
    specification has it: its scheme, the presentation time on the track's media timeline (the
    channel's), no duration (0xFFFFFFFF), the tags as the message.  The id is derived from time
    and tags, so every replica and every rendition gives one item the same id (DASH players
    drop repeats by id)."""
    identifier = zlib.crc32(struct.pack(">Q", item.time) + item.id3.encode())
    fields = struct.pack(">IQII", item.timescale, item.time, UNKNOWN_DURATION, identifier)
    return full_box(b"emsg", 1, 0, fields, ID3_SCHEME.encode() + b"\x00", b"\x00", item.id3_bytes)

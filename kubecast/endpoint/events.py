"""ID3 timed metadata in the fMP4 segments (HLS with fMP4 segments, DASH): ``emsg`` boxes.

A video rendition's segment n is served with one ``emsg`` box per ID3 item of the timeline
whose time falls in it (``kubecast.media.metadata.event_message``), before its ``moof``: the
AOM ID3-in-CMAF carriage, which hls.js reads from the fMP4 segments as it reads the TS
segments' ID3 PES, and which the MPD announces with an ``InbandEventStream`` on the video
AdaptationSet.  The boxes go in front, so nothing inside the stored fragment moves (its data
offsets count from its ``moof``); the stored object stays as it is, and the served one is
cached under the items it carries, so a tag the timeline lists later is never missing from a
segment cached before it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from fractions import Fraction

from kubecast.media.metadata import event_message, in_range
from kubecast.media.timeline import Timeline, TimelineSegment, TimelineTrack

from .objects import CachedObject


def segment_events(timeline: Timeline, track: TimelineTrack, row: TimelineSegment) -> tuple[bytes, Hashable]:
    """The ``emsg`` boxes of a segment of ``track`` (none but for video renditions), and what
    tells them apart in a cache key."""
    if track.info.kind != "video" or not timeline.metadata:
        return b"", ()
    start = Fraction(row.start, track.info.timescale)
    items = in_range(timeline.metadata, start, start + Fraction(row.duration, track.info.timescale))
    return b"".join(event_message(item) for item in items), tuple(item.key for item in items)


def prepended(
    events: bytes, load: Callable[[], Awaitable[CachedObject | None]]
) -> Callable[[], Awaitable[bytes | None]]:
    """A loader of ``load()``'s bytes with ``events`` in front."""

    async def loader() -> bytes | None:
        found = await load()
        return None if found is None else events + found.data

    return loader

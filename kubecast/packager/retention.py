"""Storage retention: delete the segments that neither the live window nor any program needs.

A segment object is kept when
- the channel's live timeline could still list it: its number is at or after the window's
  first row minus the grace (everything newer, including what the encoders are
  writing right now and the other encoder's copies, is untouched);
- a program's timeline lists it (exactly that copy), or a program dropped it from the front of
  its window within the grace.
The grace is what RFC 8216 (6.2.2) asks of an HLS server: a segment removed from a playlist
stays available for its duration plus that of the playlist that listed it, so a player can
still fetch what a manifest it read just before the window slid lists.  Everything else — the
other encoder's copy of a recorded segment, what has slid out of every window — is deleted.

A rendition the live timeline does not list (a ladder changed, a pass-through rendition that
stopped) is kept while it may still be on its way in, and collected once its segments are
older than ``ORPHAN_AGE`` and no program lists them.  A low-latency part (``<n>.<k>.m4s``) is
only ever needed at the live edge (RFC 8216bis 6.2.2: listed for three target durations, then
downloadable for three more); no program lists parts, so a part goes once its segment is
``PART_SEGMENTS_KEPT`` behind the newest row of the live timeline.  ``collectable`` is pure; the
channel's packager runs ``clean``.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone

from kubecast.media.timeline import SegmentRows, Timeline
from kubecast.storage import Store, layout

log = logging.getLogger("kubecast.packager")

ORPHAN_AGE = timedelta(hours=1)
PART_SEGMENTS_KEPT = 10  # six target durations of 1 s segments or more, with a margin


def grace_segments(timeline: Timeline) -> int:
    """The playlist's length plus one segment, in segments (RFC 8216 6.2.2)."""
    return -(-timeline.window_ms // timeline.segment_duration_ms) + 1


_SEGMENT = re.compile(
    r"^channels/(?P<channel>[^/]+)/encoders/(?P<instance>[^/]+)/(?P<track>[^/]+)/(?P<number>\d+)(?P<part>\.\d+)?\.m4s$"
)


def collectable(
    keys: list[str], channel: Timeline | None, programs: list[Timeline], *, old: frozenset[str] = frozenset()
) -> list[str]:
    """The segment keys in ``keys`` that may be deleted now; ``old``: those stored longer ago
    than ``ORPHAN_AGE`` (only they are collected from a rendition the live timeline lacks)."""
    if channel is None:
        return []  # without the live window's position nothing is provably unneeded
    live_from = {t.info.id: t.segments[0].number - grace_segments(channel) for t in channel.tracks if t.segments}
    # Each recording's rows by track, looked up by number: no set of every row of every window
    # (a window of days has millions) is made every round.
    recorded: dict[str, list[SegmentRows]] = {}
    recently_dropped: dict[str, list[tuple[int, int]]] = {}
    for program in programs:
        for track in program.tracks:
            recorded.setdefault(track.info.id, []).append(track.segments)
            if track.segments:
                first = track.segments[0].number
                recently_dropped.setdefault(track.info.id, []).append((first - grace_segments(program), first))
    newest = {t.info.id: t.segments[-1].number for t in channel.tracks if t.segments}
    doomed = []
    for key in keys:
        match = _SEGMENT.match(key)
        if match is None or match["channel"] != channel.channel:
            continue
        track, number, instance = match["track"], int(match["number"]), match["instance"]
        if match["part"] is not None:
            if track in newest and number < newest[track] - PART_SEGMENTS_KEPT or track not in newest and key in old:
                doomed.append(key)
            continue
        if track not in live_from and key not in old:
            continue  # a rendition the live timeline does not list (yet?): left alone while recent
        if track in live_from and number >= live_from[track]:
            continue
        if any(_lists(rows, number, instance) for rows in recorded.get(track, ())):
            continue
        if any(low <= number < high for low, high in recently_dropped.get(track, ())):
            continue
        doomed.append(key)
    return doomed


def _lists(rows: SegmentRows, number: int, source: str) -> bool:
    """Whether ``rows`` list segment ``number`` from the encoder ``source``."""
    index = rows.position(number)
    return index is not None and rows[index].source == source


async def clean(store: Store, channel: Timeline | None, programs: list[Timeline]) -> int:
    """Delete what ``collectable`` allows; returns how many objects went."""
    if channel is None:
        return 0
    infos = await store.list(f"{layout.channel_prefix(channel.channel)}/encoders")
    cutoff = datetime.now(timezone.utc) - ORPHAN_AGE
    old = frozenset(info.key for info in infos if info.last_modified is not None and info.last_modified < cutoff)
    doomed = collectable([info.key for info in infos], channel, programs, old=old)
    for key in doomed:
        await store.delete(key)
    if doomed:
        log.info("retention: deleted %d segments of %s that no window needs", len(doomed), channel.channel)
    return len(doomed)

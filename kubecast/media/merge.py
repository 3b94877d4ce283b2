"""Merging encoder progress into the channel timeline (pure: no I/O, no clock of its own).

For every track and segment number the timeline takes one complete copy from an encoder
instance and remembers which instance it came from; later copies of a number already
published are ignored, so the timeline only ever grows at its live edge and a published
segment never changes.  The copy comes from the instance that supplied the previous segment
whenever it has one or may still bring one (the hold, below), so the source flips only when it
has to (a failover), not on every tie.  Copies are only mixed when their init
segments are identical (same name = same content hash); otherwise the track stays with its
first source and the InitSegmentsConsistent condition says why.

The packager runs this merge and writes its result as ``timeline.json``; a streaming endpoint
runs the very same function, read-only, over the stored timeline and the encoders' progress
while the packager is not keeping the timeline fresh (hung or dead: see
``kubecast.endpoint.timelines``).  Several readers that merge the same stored objects must list
the same copy under the same segment URL, so the choice of a copy must not depend on which
encoder happened to write its progress first.  Hence the hold: a new number is taken from the
encoder that supplied the previous segment while that encoder may still bring it: it is live,
its path connected, it has not gone past the number, it wrote its progress within ``hold_ms``
of ``now`` (as a working encoder does at every segment and every heartbeat), and no other
encoder has listed a later number yet.  So a hung encoder loses its claim when it falls silent
and a starved one (alive, but its ingest hung) when the other encoder is a whole segment
ahead: a failover costs at most one segment of publishing latency, and readers could only
disagree about an encoder that is a whole segment late and still writing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction

from .conditions import set_condition
from .cues import merge_cues
from .metadata import merge_metadata
from .progress import EncoderProgress
from .timeline import EncoderHealth, Timeline, TimelineSegment, TimelineTrack
from .tracks import SegmentRecord


@dataclass
class MergeResult:
    timeline: Timeline
    published: list[tuple[str, TimelineSegment]] = field(default_factory=list)  # (track id, segment)
    failovers: list[tuple[str, str, str]] = field(default_factory=list)  # (track id, from, to)
    duplicates: int = 0
    late: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.published)


def _live(progress: EncoderProgress, now: datetime, segment_duration_ms: int) -> bool:
    fresh = now - progress.updated < timedelta(milliseconds=max(3 * segment_duration_ms, 6000))
    return progress.state == "live" and fresh


def _may_still_offer(
    progress: EncoderProgress, track_id: str, number: int, now: datetime, segment_duration_ms: int
) -> bool:
    """A live encoder that has not yet gone past ``number`` on this track may still bring a
    complete copy of it."""
    if not _live(progress, now, segment_duration_ms) or not progress.ingest.connected:
        return False
    records = progress.segments.get(track_id) or []
    return not records or records[-1].number < number


def hold_ms(segment_duration_ms: int) -> int:
    """How long a silent source keeps its claim on the next number: an encoder writes its
    progress at every segment and at least every 2 s, and a little more covers a slow write."""
    return min(segment_duration_ms, 2000) + 1000


def _holds(progress: EncoderProgress, track_id: str, number: int, now: datetime, segment_duration_ms: int) -> bool:
    """The previous segment's source keeps ``number`` for itself: it may still bring it and
    has not been silent for longer than ``hold_ms``."""
    recent = now - progress.updated < timedelta(milliseconds=hold_ms(segment_duration_ms))
    return recent and _may_still_offer(progress, track_id, number, now, segment_duration_ms)


def _bandwidths(track: TimelineTrack) -> tuple[int | None, int | None]:
    rows = [r for r in track.segments if r.duration > 0]
    if not rows:
        return None, None
    timescale = track.info.timescale
    total_seconds = sum(r.duration for r in rows) / timescale
    average = int(sum(r.size for r in rows) * 8 / total_seconds)
    peak = int(max(r.size * 8 * timescale / r.duration for r in rows))
    return average, peak


def _drop_front(track: TimelineTrack, count: int, next_number: int) -> None:
    """Drop the first ``count`` rows, keeping the HLS bookkeeping: the numbers missing among
    them (up to ``next_number``, the first kept) are skipped numbers, their discontinuities
    trimmed ones."""
    dropped, track.segments = track.segments[:count], track.segments[count:]
    if dropped:
        track.numbers_skipped += next_number - dropped[0].number - len(dropped)
        track.discontinuities_trimmed += sum(1 for r in dropped if r.discontinuity)


def trim_window(track: TimelineTrack, window_ms: int) -> None:
    if not track.segments:
        return
    newest_end = track.segments[-1].start + track.segments[-1].duration
    horizon = newest_end - window_ms * track.info.timescale // 1000
    count = sum(1 for r in track.segments if r.start + r.duration <= horizon)  # rows are in time order
    _drop_front(track, count, track.segments[count].number)


def window_start(timeline: Timeline) -> Fraction | None:
    """Media time (seconds) of the first listed segment of the first track: where the window begins."""
    track = next((t for t in timeline.tracks if t.segments), None)
    return Fraction(track.segments[0].start, track.info.timescale) if track is not None else None


def align_starts(tracks: list[TimelineTrack]) -> None:
    """Every track begins at the same segment number.  Trimming each track by time alone can
    leave one a segment longer at the front (AAC segments alternate a frame longer and
    shorter), and a player starting at the front of the window, at start-over or on demand,
    waits forever in the stretch where one kind has media and the other has none."""
    firsts = [t.segments[0].number for t in tracks if t.segments]
    if not firsts:
        return
    first = max(firsts)
    for track in tracks:
        count = sum(1 for r in track.segments if r.number < first)
        _drop_front(track, count, track.segments[count].number if count < len(track.segments) else first)


def _follow_active_source(timeline: Timeline, now: datetime) -> None:
    """Count a failover when the newest segment of the first rendition comes from another encoder."""
    if not timeline.tracks or not timeline.tracks[0].segments:
        return
    source = timeline.tracks[0].segments[-1].source
    if timeline.active_source is not None and source != timeline.active_source:
        timeline.failovers += 1
        timeline.last_failover = now
    timeline.active_source = source


def merge(
    timeline: Timeline | None,
    progress: dict[str, EncoderProgress | None],
    *,
    now: datetime,
    channel: str,
    segment_duration_ms: int,
    window_ms: int,
) -> MergeResult:
    if timeline is None:
        timeline = Timeline(
            channel=channel, state="waiting", updated=now, segment_duration_ms=segment_duration_ms, window_ms=window_ms
        )
    else:
        timeline = timeline.model_copy(deep=True)
        timeline.window_ms = window_ms
    result = MergeResult(timeline)
    present = {i: p for i, p in progress.items() if p is not None}  # the encoders that reported
    instances = sorted(present)
    if timeline.availability_start_time is None:
        timeline.availability_start_time = next(
            (present[i].availability_start_time for i in instances if present[i].availability_start_time), None
        )

    tracks = {track.info.id: track for track in timeline.tracks}
    mismatches = []
    for instance in instances:
        for info in present[instance].tracks:
            track = tracks.get(info.id)
            if track is None:
                track = tracks[info.id] = TimelineTrack(info=info, init_source=instance)
                timeline.tracks.append(track)
            elif track.init_source == instance and track.info != info:
                track.info = info  # the source's own description moved on (bitrate, frame rate, new header)
            elif track.info.init != info.init and track.init_source != instance:
                mismatches.append(
                    f"{info.id}: {instance} has {info.init}, published {track.info.init} from {track.init_source}"
                )

    reference = timeline.tracks[0].info.id if timeline.tracks else None  # the rendition whose segments are counted
    taken = {instance: health.segments_taken for instance, health in timeline.encoders.items()}
    for track_id, track in tracks.items():
        last = track.segments[-1] if track.segments else None
        offers: dict[int, dict[str, SegmentRecord]] = {}
        usable = []  # the encoders whose copies of this track may be listed
        for instance in instances:
            info = next((t for t in present[instance].tracks if t.id == track_id), None)
            if info is None or info.init != track.info.init:
                continue  # never mix segments that need another init segment
            usable.append(instance)
            for record in present[instance].segments.get(track_id, []):
                if last is not None and record.number <= last.number:
                    if record.number == last.number and instance != last.source:
                        result.duplicates += 1
                    continue
                offers.setdefault(record.number, {})[instance] = record
        for number in sorted(offers):
            copies = offers[number]
            previous_source = last.source if last else None
            complete = {i: r for i, r in copies.items() if not r.final}
            if not complete and any(
                _may_still_offer(present[i], track_id, number, now, segment_duration_ms)
                for i in instances
                if i not in copies
            ):
                break  # only a copy cut short by a dropped path so far: wait for the other encoder's
            preferred = previous_source or (usable[0] if usable else None)
            if (
                preferred is not None
                and preferred not in copies
                and preferred in usable
                and max(offers) == number  # no other encoder has gone past it: a starved one would
                and _holds(present[preferred], track_id, number, now, segment_duration_ms)
            ):
                break  # the other encoder was quicker; its copy would make the choice a race
            candidates = complete or copies
            source = previous_source if previous_source in candidates else sorted(candidates)[0]
            record = candidates[source]
            result.duplicates += len(copies) - 1
            discontinuity = record.discontinuity
            if last is not None:
                # Trust the media, not the flag: a gap is a discontinuity, contiguous media is not.
                discontinuity = record.start != last.start + last.duration
            segment = TimelineSegment(number, record.start, record.duration, record.size, source, discontinuity)
            track.segments.append(segment)
            result.published.append((track_id, segment))
            if track_id == reference:
                taken[source] = taken.get(source, 0) + 1
            if previous_source is not None and previous_source != source:
                result.failovers.append((track_id, previous_source, source))
            last = segment
        trim_window(track, window_ms)
        track.average_bandwidth, track.peak_bandwidth = _bandwidths(track)
    align_starts(timeline.tracks)
    _follow_active_source(timeline, now)
    timeline.cues = merge_cues(
        timeline.cues, [cue for instance in instances for cue in present[instance].cues], since=window_start(timeline)
    )
    timeline.metadata = merge_metadata(
        timeline.metadata,
        [m for instance in instances for m in present[instance].metadata],
        since=window_start(timeline),
    )

    any_live = False
    for instance in instances:
        p = present[instance]
        live = _live(p, now, segment_duration_ms)
        any_live |= live
        last_numbers = [records[-1].number for records in p.segments.values() if records]
        timeline.encoders[instance] = EncoderHealth(
            state=("live" if live else "waiting") if p.state != "error" else "error",
            updated=p.updated,
            last_segment=max(last_numbers, default=None),
            segments_taken=taken.get(instance, 0),
            ingest_connected=p.ingest.connected and live,
            ingest_bitrate=p.ingest.bitrate if live else 0.0,
            speed=p.speed,
            message=p.message,
        )
    for instance, p in progress.items():
        if p is None and instance in timeline.encoders:
            timeline.encoders[instance].state = "absent"
    timeline.state = "live" if any_live else "waiting"
    thumbnails = [(present[i].thumbnail_updated, i) for i in instances if present[i].thumbnail_updated]
    timeline.thumbnail_source = max(thumbnails)[1] if thumbnails else timeline.thumbnail_source

    newest = (
        max((r.start + r.duration) / t.info.timescale for t in timeline.tracks for r in t.segments[-1:])
        if any(t.segments for t in timeline.tracks)
        else None
    )
    flowing = False
    if newest is not None and timeline.availability_start_time is not None:
        age = now - (timeline.availability_start_time + timedelta(seconds=newest))
        flowing = age < timedelta(milliseconds=3 * segment_duration_ms + 5000)
    ingest = any(h.ingest_connected for h in timeline.encoders.values())
    set_condition(
        timeline.conditions,
        "IngestConnected",
        ingest,
        "ContributionReceived" if ingest else "NoContribution",
        "an encoder receives the contribution" if ingest else "no encoder receives a contribution",
        now,
    )
    set_condition(
        timeline.conditions,
        "InitSegmentsConsistent",
        not mismatches,
        "InitSegmentsMatch" if not mismatches else "InitSegmentMismatch",
        "; ".join(mismatches) or "all encoders produce identical init segments",
        now,
    )
    reports = [
        p.ingest
        for i in instances
        if (p := progress[i]) is not None and p.ingest.connected and p.ingest.keyframes_aligned is not None
    ]
    if reports:
        aligned = all(r.keyframes_aligned for r in reports)
        set_condition(
            timeline.conditions,
            "KeyframesAligned",
            aligned,
            "RenditionsAligned" if aligned else "RenditionsMisaligned",
            "the contribution's renditions have key frames at the same times"
            if aligned
            else "; ".join(sorted({r.alignment_message for r in reports if r.alignment_message})),
            now,
        )
    elif ingest:
        # A contribution that has nothing to align (one rendition, or live encoding): the last
        # multi-rendition contribution's verdict no longer applies.  With none connected it
        # stays, describing the last contribution.
        timeline.conditions[:] = [c for c in timeline.conditions if c["type"] != "KeyframesAligned"]
    ready = any_live and flowing
    set_condition(
        timeline.conditions,
        "Ready",
        ready,
        "Live" if ready else ("WaitingForSegments" if any_live else "WaitingForContribution"),
        "segments are being published" if ready else "no segments are being published",
        now,
    )
    if result.changed or timeline.updated < now:
        timeline.updated = now
    return result

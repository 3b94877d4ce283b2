"""A program's recorded window, grown from its channel's timeline (pure).

A program's timeline is a Timeline of its own that lists the channel's stored segments (no
copy is made): it begins with the segment being published when the program first runs, gains
every segment the channel publishes while it runs, and keeps the last ``archiveWindow`` of them
(a DVR window; HLS renders it as a sliding playlist, DASH as ``timeShiftBufferDepth``).  Once
the program stops it is frozen as state ``stopped``: the same URLs then serve it on demand
(HLS ``EXT-X-ENDLIST``, a static MPD).  A stopped program never records again, as in Azure
Media Services: start a new program instead.  The channel's ad markers (``Timeline.cues``) and
ID3 tags (``Timeline.metadata``) from the program's start on are recorded with it, so they stay
in its manifests and segments on demand.

``record`` lives here, below both of its callers, for the reason ``merge`` lives in media: the
packager writes every program's timeline with it, and while the packager does not keep the
channel's timeline fresh, each endpoint replica carries a running program's window on with it,
in memory and read-only, over the channel timeline it merged itself
(``kubecast.endpoint.timelines``).  One function, so the two never list different rows.
"""

from __future__ import annotations

from datetime import datetime

from kubecast.media.cues import merge_cues
from kubecast.media.merge import align_starts, trim_window, window_start
from kubecast.media.metadata import merge_metadata
from kubecast.media.timeline import Timeline, TimelineTrack

from .records import ProgramRecord


def _start(channel: Timeline, program: ProgramRecord, now: datetime) -> Timeline | None:
    if not channel.tracks or not any(t.segments for t in channel.tracks):
        return None
    first = max(t.segments[-1].number for t in channel.tracks if t.segments)  # the live edge when it starts
    tracks = []
    for track in channel.tracks:
        rows = [r for r in track.segments if r.number >= first]
        if rows:
            rows[0] = rows[0]._replace(
                discontinuity=False
            )  # nothing before it in this timeline to be discontinuous with
        tracks.append(
            TimelineTrack(
                info=track.info,
                init_source=track.init_source,
                average_bandwidth=track.average_bandwidth,
                peak_bandwidth=track.peak_bandwidth,
                segments=rows,
                numbers_skipped=first,
            )
        )
    started = Timeline(
        channel=channel.channel,
        state="live",
        updated=now,
        availability_start_time=channel.availability_start_time,
        segment_duration_ms=channel.segment_duration_ms,
        window_ms=int(program.archive_window_seconds * 1000),
        hls_start_offset_ms=channel.hls_start_offset_ms,
        tracks=tracks,
    )
    _record_timed(started, channel)
    return started


def _record_timed(recorded: Timeline, channel: Timeline) -> bool:
    """The channel's cues and ID3 tags from the program's first segment on; whether any changed."""
    start = window_start(recorded)
    offered = [cue for cue in channel.cues if start is not None and cue.seconds >= start]
    cues = merge_cues(recorded.cues, offered, since=start)
    changed = cues != recorded.cues
    recorded.cues = cues
    offered_metadata = [item for item in channel.metadata if start is not None and item.seconds >= start]
    metadata = merge_metadata(recorded.metadata, offered_metadata, since=start)
    changed |= metadata != recorded.metadata
    recorded.metadata = metadata
    return changed


def record(
    recorded: Timeline | None, program: ProgramRecord, channel: Timeline | None, now: datetime
) -> tuple[Timeline | None, bool]:
    """(the program's timeline, whether it changed) after the channel's latest timeline.

    A program stopped while it ran first takes what the channel lists by then, so its recording
    ends with every segment an endpoint may have listed in its playlist (endpoints list a running
    program's window as far as the channel's, see ``kubecast.endpoint.timelines``)."""
    if recorded is not None and recorded.state == "stopped":
        return recorded, False
    if program.state == "Stopped":
        if recorded is None:
            return None, False  # stopped before it ever ran: nothing to keep
        if channel is not None:
            _grow(recorded, program, channel)
        recorded.state, recorded.updated = "stopped", now
        return recorded, True
    if channel is None:
        return recorded, False
    if recorded is None:
        started = _start(channel, program, now)
        return started, started is not None
    changed = _grow(recorded, program, channel)
    if changed:
        recorded.updated = now
    return recorded, changed


def _grow(recorded: Timeline, program: ProgramRecord, channel: Timeline) -> bool:
    """Append the channel's segments the recording lacks, slide its window; whether it changed."""
    changed = False
    window_ms = int(program.archive_window_seconds * 1000)
    if recorded.window_ms != window_ms:
        recorded.window_ms, changed = window_ms, True
    if recorded.hls_start_offset_ms != channel.hls_start_offset_ms:  # while it runs, the channel's players' start
        recorded.hls_start_offset_ms, changed = channel.hls_start_offset_ms, True
    for source in channel.tracks:
        track = next((t for t in recorded.tracks if t.info.id == source.info.id), None)
        if track is None:
            first = source.segments[-1].number if source.segments else 0
            track = TimelineTrack(info=source.info, init_source=source.init_source, numbers_skipped=first)
            recorded.tracks.append(track)
            changed = True
        elif track.info != source.info or track.init_source != source.init_source:
            track.info, track.init_source, changed = source.info, source.init_source, True
        last = track.segments[-1] if track.segments else None
        appended = False
        for row in source.segments:
            if last is not None and row.number <= last.number:
                continue
            if last is not None and row.start != last.start + last.duration:
                row = row._replace(
                    discontinuity=True
                )  # the channel lost media (or this recorder missed rows) in between
            track.segments.append(row)
            last, appended = row, True
        if appended or changed:
            trim_window(track, window_ms)
            track.average_bandwidth, track.peak_bandwidth = source.average_bandwidth, source.peak_bandwidth
        changed |= appended
    if changed:
        align_starts(recorded.tracks)
    changed |= _record_timed(recorded, channel)
    return changed

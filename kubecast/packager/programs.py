"""Programs: recording windows of a channel's timeline (pure ``record``, and the packager's loop part).

A program's timeline is a Timeline of its own that lists the channel's stored segments (no
copy is made): it begins with the segment being published when the program first runs, gains
every segment the channel publishes while it runs, and keeps the last ``archiveWindow`` of them
(a DVR window; HLS renders it as a sliding playlist, DASH as ``timeShiftBufferDepth``).  Once
the program stops it is frozen as state ``stopped``: the same URLs then serve it on demand
(HLS ``EXT-X-ENDLIST``, a static MPD).  A stopped program never records again, as in Azure
Media Services: start a new program instead.
"""

from __future__ import annotations

import logging
from datetime import datetime

from kubecast.media.merge import align_starts, trim_window
from kubecast.media.timeline import Timeline, TimelineTrack
from kubecast.storage import ProgramRecord, Store, layout

log = logging.getLogger("kubecast.packager")


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
    return Timeline(
        channel=channel.channel,
        state="live",
        updated=now,
        availability_start_time=channel.availability_start_time,
        segment_duration_ms=channel.segment_duration_ms,
        window_ms=int(program.archive_window_seconds * 1000),
        tracks=tracks,
    )


def record(
    recorded: Timeline | None, program: ProgramRecord, channel: Timeline | None, now: datetime
) -> tuple[Timeline | None, bool]:
    """(the program's timeline, whether it changed) after the channel's latest timeline."""
    if recorded is not None and recorded.state == "stopped":
        return recorded, False
    if program.state == "Stopped":
        if recorded is None:
            return None, False  # stopped before it ever ran: nothing to keep
        recorded.state, recorded.updated = "stopped", now
        return recorded, True
    if channel is None:
        return recorded, False
    if recorded is None:
        started = _start(channel, program, now)
        return started, started is not None
    changed = False
    window_ms = int(program.archive_window_seconds * 1000)
    if recorded.window_ms != window_ms:
        recorded.window_ms, changed = window_ms, True
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
        recorded.updated = now
    return recorded, changed


class ProgramRecorder:
    """The packager's part: list the channel's programs, record each, write what changed."""

    def __init__(self, store: Store, channel: str):
        self.store = store
        self.channel = channel
        self.timelines: dict[str, Timeline | None] = {}
        self._records: dict[str, tuple[str | None, ProgramRecord]] = {}

    async def _programs(self) -> list[ProgramRecord]:
        programs = []
        prefix = layout.programs_prefix(self.channel) + "/"
        for info in await self.store.list(prefix):
            if not info.key.endswith("/program.json"):
                continue
            name = info.key[len(prefix) :].split("/")[0]
            cached = self._records.get(name)
            if cached and cached[0] == info.etag and info.etag is not None:
                programs.append(cached[1])
                continue
            data = await self.store.get(info.key)
            try:
                program_record = ProgramRecord.from_json(data) if data else None
            except ValueError as error:
                log.warning("program %s of %s is unreadable: %s", name, self.channel, error)
                program_record = cached[1] if cached else None
            if program_record is not None:
                self._records[name] = (info.etag, program_record)
                programs.append(program_record)
        return programs

    async def kept(self) -> list[Timeline] | None:
        """Every recording stored for the channel, going by the recordings in storage rather than
        by the programs this recorder could parse: retention must keep a recording's segments
        even when its program.json is damaged.  The recorder's own copies stand in for the
        recordings it keeps (a window of days is a large object to read every round); only the
        others are read.  None when one is unreadable, so that nothing is collected until it is
        (losing a recording is worse than a late delete)."""
        recordings = []
        prefix = layout.programs_prefix(self.channel) + "/"
        for info in await self.store.list(prefix):
            if not info.key.endswith("/timeline.json"):
                continue
            held = self.timelines.get(info.key[len(prefix) :].split("/")[0])
            if held is not None:
                recordings.append(held)
                continue
            data = await self.store.get(info.key)
            if data is None:
                continue  # deleted meanwhile
            try:
                recordings.append(Timeline.from_json(data))
            except ValueError as error:
                log.warning("recording %s is unreadable (%s): retention waits until it is readable", info.key, error)
                return None
        return recordings

    async def step(self, channel: Timeline | None, now: datetime) -> None:
        programs = await self._programs()
        for name in set(self.timelines) - {p.name for p in programs}:
            # The Program was deleted: its recording goes (retention then frees its segments).
            await self.store.delete(layout.program_timeline_key(self.channel, name))
            del self.timelines[name]
            self._records.pop(name, None)
            log.info("program %s of %s deleted: its recording is released", name, self.channel)
        for program in programs:
            key = layout.program_timeline_key(self.channel, program.name)
            if program.name not in self.timelines:
                data = await self.store.get(key)
                try:
                    self.timelines[program.name] = Timeline.from_json(data) if data else None
                except ValueError as error:
                    log.warning(
                        "recording of program %s of %s is unreadable (%s): left alone",
                        program.name,
                        self.channel,
                        error,
                    )
                    continue  # neither recorded over nor released; retention keeps its segments (kept())
            recorded, changed = record(self.timelines[program.name], program, channel, now)
            if changed and recorded is not None:
                recorded.generation += 1
                await self.store.put(key, recorded.to_json())
                if recorded.state == "stopped":
                    log.info(
                        "program %s of %s stopped: %d segments kept on demand",
                        program.name,
                        self.channel,
                        len(recorded.tracks[0].segments),
                    )
            self.timelines[program.name] = recorded

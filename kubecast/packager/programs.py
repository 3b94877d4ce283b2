"""Programs: the packager lists a channel's programs, records each with the pure
``kubecast.storage.programs.record`` (shared with the endpoint, which carries a running
program's window on while the packager is away) and writes what changed.
"""

from __future__ import annotations

import logging
from datetime import datetime

from kubecast.media.timeline import Timeline
from kubecast.storage import ProgramRecord, Store, layout
from kubecast.storage.programs import record

log = logging.getLogger("kubecast.packager")


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

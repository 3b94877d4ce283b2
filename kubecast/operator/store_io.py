"""What the operator reads and writes in the media store: a Channel's or Program's timeline (for
their status), the Program records its packagers and the streaming endpoints read, and the
channel's control record (state, reset, manual slate, manual cues) its encoder pods follow.

No kopf here: the handlers call these and turn failures into log lines, events or retries."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from kubecast.api import Program
from kubecast.media.timeline import Timeline
from kubecast.storage import ChannelControl, ProgramRecord, Store, cue_ended, cue_started, layout, slate_switched

from .builders import namespace_store_url
from .settings import OperatorSettings

STORES: dict[str, Store] = {}


def store_for(namespace: str) -> Store:
    url = namespace_store_url(OperatorSettings.from_environment(), namespace)
    if url not in STORES:
        STORES[url] = Store(url)
    return STORES[url]


async def stored_timeline(namespace: str, key: str) -> Timeline | None:
    """The timeline stored at ``key`` (``layout.timeline_key`` or ``layout.program_timeline_key``),
    or None before the packager wrote one.  Storage trouble raises."""
    data = await store_for(namespace).get(key)
    return Timeline.from_json(data) if data is not None else None


async def publish_program(
    program: Program, namespace: str, logger: logging.Logger | logging.LoggerAdapter[logging.Logger]
) -> None:
    """The Program for its channel's packager (which records it) and its locator for the
    streaming endpoints, in the namespace's store.  Best effort: the refresh timer repeats it."""
    record = ProgramRecord.of(program)
    store = store_for(namespace)
    try:
        if await asyncio.wait_for(store.get(layout.program_key(record.channel, record.name)), 10) != record.to_json():
            await asyncio.wait_for(store.put(layout.program_key(record.channel, record.name), record.to_json()), 10)
            await asyncio.wait_for(store.put(layout.locator_key(record.locator), record.to_json()), 10)
    except Exception as error:  # noqa: BLE001 - storage trouble must not stop the status from being reported
        logger.warning("cannot write program %s to the store (%s); retrying with the next refresh", program.name, error)


async def unpublish_program(program: Program, namespace: str) -> None:
    """A deleted Program leaves the store (its locator too, if it is still this Program's):
    its packager then releases the recording.  Storage trouble raises."""
    await unpublish_record(ProgramRecord.of(program), namespace)


async def published_programs(namespace: str, channel: str) -> dict[str, ProgramRecord | None]:
    """The Program records stored for ``channel``: name -> record (None when unreadable)."""
    store = store_for(namespace)
    prefix = layout.programs_prefix(channel) + "/"
    records: dict[str, ProgramRecord | None] = {}
    for info in await asyncio.wait_for(store.list(prefix), 10):
        if info.key.endswith("/program.json"):
            data = await asyncio.wait_for(store.get(info.key), 10)
            try:
                records[info.key[len(prefix) :].split("/")[0]] = ProgramRecord.from_json(data) if data else None
            except ValueError:
                records[info.key[len(prefix) :].split("/")[0]] = None
    return records


async def unpublish_record(record: ProgramRecord, namespace: str) -> None:
    store = store_for(namespace)
    await asyncio.wait_for(store.delete(layout.program_key(record.channel, record.name)), 10)
    locator = await asyncio.wait_for(store.get(layout.locator_key(record.locator)), 10)
    if locator is not None and ProgramRecord.from_json(locator).name == record.name:
        await asyncio.wait_for(store.delete(layout.locator_key(record.locator)), 10)


def media_to_delete(
    keys: list[str], channel: str, programs: list[str], recordings: list[Timeline], *, every_recording_read: bool = True
) -> list[str]:
    """The keys of ``channel``'s objects (``keys``: everything stored under its prefix) that go when
    the Channel is deleted with ``deletionPolicy: Delete``: all but what the Programs that still
    exist (``programs``) need to stay playable: their folders, and the segments and headers their
    ``recordings`` list.  When a recording could not be read, every segment and header stays.  Pure."""
    base = layout.channel_prefix(channel) + "/"
    kept_programs = tuple(f"{layout.programs_prefix(channel)}/{name}/" for name in programs)
    needed: set[str] = set()
    for timeline in recordings:
        for track in timeline.tracks:
            sources = {row[4] for row in track.segments} | {track.init_source}
            needed.update(layout.init_key(channel, source, track.info.id, track.info.init) for source in sources)
            needed.update(layout.segment_key(channel, row[4], track.info.id, row[0]) for row in track.segments)
    encoders = layout.channel_prefix(channel) + "/encoders/"
    return [
        key
        for key in keys
        if key.startswith(base)
        and not key.startswith(kept_programs)
        and key not in needed
        and (every_recording_read or not key.startswith(encoders))
    ]


async def delete_channel_media(namespace: str, channel: str, programs: list[str]) -> int:
    """Delete what ``media_to_delete`` allows, ``programs`` being the Programs of the channel that
    still exist; returns how many objects went.  Storage trouble raises."""
    store = store_for(namespace)
    recordings: list[Timeline] = []
    every_recording_read = True
    for name in programs:
        try:
            timeline = await stored_timeline(namespace, layout.program_timeline_key(channel, name))
        except ValueError:
            every_recording_read = False
            continue
        if timeline is not None:
            recordings.append(timeline)
    keys = [info.key for info in await asyncio.wait_for(store.list(layout.channel_prefix(channel)), 30)]
    doomed = media_to_delete(keys, channel, programs, recordings, every_recording_read=every_recording_read)
    for key in doomed:
        await asyncio.wait_for(store.delete(key), 10)
    return len(doomed)


async def _change_control(namespace: str, channel: str, change: Callable[[ChannelControl], bool]) -> bool:
    """The channel's control record read, ``change``d in place and written back when ``change``
    says it changed it; storage trouble (and whatever ``change`` raises) raises."""
    store = store_for(namespace)
    key = layout.control_key(channel)
    data = await asyncio.wait_for(store.get(key), 10)
    control = ChannelControl.model_validate_json(data) if data is not None else ChannelControl()
    if not change(control):
        return False
    await asyncio.wait_for(store.put(key, control.to_json()), 10)
    return True


async def request_state(namespace: str, channel: str, state: Literal["Running", "Stopped"]) -> bool:
    """The Channel's ``spec.state`` in its control record, where its encoder pods' ingest reads it:
    a pod shutting down because its channel stopped refuses publishers with the reason meanwhile,
    and a pod starting for a started channel must not find it Stopped.  False when it says so already."""

    def change(control: ChannelControl) -> bool:
        changed, control.state = control.state != state, state
        return changed

    return await _change_control(namespace, channel, change)


async def request_reset(namespace: str, channel: str, token: str) -> bool:
    """The Channel's ``kubecast.io/reset`` token in its control record, where its encoders read it
    when the next contribution starts; False when the record already carries it."""

    def change(control: ChannelControl) -> bool:
        changed, control.reset = control.reset != token, token
        return changed

    return await _change_control(namespace, channel, change)


async def request_slate(namespace: str, channel: str, *, on: bool, now: datetime) -> bool:
    """The Channel's ``kubecast.io/slate`` switch in its control record, where its encoders follow
    it; False when the record already says so (asking again must not move the boundary)."""

    def change(control: ChannelControl) -> bool:
        switched = slate_switched(control.slate, on=on, now=now)
        changed, control.slate = switched is not control.slate, switched
        return changed

    return await _change_control(namespace, channel, change)


async def request_cue(namespace: str, channel: str, *, event_id: int, seconds: float | None, now: datetime) -> None:
    """The Channel's ``kubecast.io/cue``: a break of ``seconds`` started (None: the break
    ``event_id`` ended) in its control record, where its encoders follow it.  A request
    ``kubecast.storage.cue_requests`` refuses raises ``CueRefused``."""

    def change(control: ChannelControl) -> bool:
        if seconds is None:
            control.cues = cue_ended(control.cues, event_id=event_id, now=now)
        else:
            control.cues = cue_started(control.cues, event_id=event_id, seconds=seconds, now=now)
        return True

    await _change_control(namespace, channel, change)

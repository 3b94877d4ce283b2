"""What the operator reads and writes in the media store: a Channel's or Program's timeline (for
their status) and the Program records its packagers and the streaming endpoints read.

No kopf here: the handlers call these and turn failures into log lines, events or retries."""

from __future__ import annotations

import asyncio
import logging

from kubecast.api import Program
from kubecast.media.timeline import Timeline
from kubecast.storage import ProgramRecord, Store, layout

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


async def publish_program(program: Program, namespace: str, logger: logging.Logger | logging.LoggerAdapter) -> None:
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
    record = ProgramRecord.of(program)
    store = store_for(namespace)
    await asyncio.wait_for(store.delete(layout.program_key(record.channel, record.name)), 10)
    locator = await asyncio.wait_for(store.get(layout.locator_key(record.locator)), 10)
    if locator is not None and ProgramRecord.from_json(locator).name == record.name:
        await asyncio.wait_for(store.delete(layout.locator_key(record.locator)), 10)

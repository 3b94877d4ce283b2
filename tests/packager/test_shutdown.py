"""A packager that is told to go records the channel's programs once more: on a cluster a stopped
Channel's Programs turn Stopped just before its packager is scaled to zero, and nobody else would
freeze their recordings (they would stay "live" windows that never grow)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from merge_fixtures import progress

from kubecast.packager.service import Packager
from kubecast.storage import ProgramRecord, Store, layout, read_program_timeline


def packager(store: Store) -> Packager:
    return Packager(store=store, channel="c", instances=["A"], segment_duration_ms=2000, window_ms=60_000)


async def put_record(store: Store, record: ProgramRecord) -> None:
    await store.put(layout.program_key(record.channel, record.name), record.to_json())


async def test_a_packager_told_to_go_freezes_the_programs_stopped_just_before(tmp_path):
    store = Store(str(tmp_path))
    now = datetime.now(timezone.utc)
    await store.put(layout.progress_key("c", "A"), progress("A", [10, 11, 12], now=now).to_json())
    record = ProgramRecord(name="p1", channel="c", locator="loc", archive_window_seconds=60, state="Running")
    await put_record(store, record)

    stop = asyncio.Event()
    running = asyncio.create_task(packager(store).run(stop))
    deadline = asyncio.get_running_loop().time() + 30
    while await read_program_timeline(store, "c", "p1") is None:
        assert asyncio.get_running_loop().time() < deadline, "the program was never recorded"
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(running, 30)
    recorded = await read_program_timeline(store, "c", "p1")
    assert recorded is not None and recorded.state == "live"
    rows = [row.number for row in recorded.tracks[0].segments]

    # The record turns Stopped and the (next) packager is told to go before its loop ever ran.
    record.state = "Stopped"
    await put_record(store, record)
    gone = asyncio.Event()
    gone.set()
    await asyncio.wait_for(packager(store).run(gone), 30)
    frozen = await read_program_timeline(store, "c", "p1")
    assert frozen is not None and frozen.state == "stopped", "frozen: it plays on demand"
    assert [row.number for row in frozen.tracks[0].segments] == rows, "with what it recorded"

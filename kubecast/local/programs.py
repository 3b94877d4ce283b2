"""Programs on one machine: ``kubecast up`` publishes the Programs of its manifests to the store,
and ``kubecast program start|stop NAME`` changes one while it runs (on a cluster, the operator
does both from the Program resources)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from kubecast.api import Manifests
from kubecast.storage import ProgramRecord, Store, layout


async def publish_record(store: Store, record: ProgramRecord) -> None:
    """The program for its channel's packager, and its locator for the streaming endpoints."""
    await store.put(layout.program_key(record.channel, record.name), record.to_json())
    await store.put(layout.locator_key(record.locator), record.to_json())


async def publish_programs(store: Store, manifests: Manifests) -> None:
    for program in manifests.programs.values():
        await publish_record(store, ProgramRecord.of(program))


async def find_record(store: Store, name: str) -> ProgramRecord | None:
    for info in await store.list("channels"):
        if info.key.endswith(f"/programs/{name}/program.json"):
            data = await store.get(info.key)
            return ProgramRecord.from_json(data) if data else None
    return None


def main_program(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="kubecast program", description="Start or stop a Program of a running `kubecast up`."
    )
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("name")
    parser.add_argument("--store", default=str(Path(".kubecast/store").resolve()))
    args = parser.parse_args(argv)

    async def change() -> int:
        store = Store(args.store)
        record = await find_record(store, args.name)
        if record is None:
            print(f"kubecast program: no program {args.name!r} in {args.store}")
            return 1
        record.state = "Running" if args.action == "start" else "Stopped"
        await publish_record(store, record)
        print(f"program {args.name}: {record.state}")
        return 0

    return asyncio.run(change())

"""Stopping, starting and resetting a channel on one machine (``spec.state``; on a cluster the
operator scales the channel's Deployments instead, and writes the reset token).

``kubecast channel stop|start|reset NAME`` writes the channel's control record into the store, as
``kubecast program stop|start`` writes a Program's record: the store is what every local
command already shares with a running ``kubecast up`` (``--store``), whatever its run folder
and ports.  ``kubecast up`` writes each channel's record from its manifests when it starts and
follows the records while it runs (``ChannelSwitch``).

Stopping, in order: the ingests refuse the channel's publishers (the one that is live is cut
off), the encoders flush their last segment and the packager publishes it, the channel's
running Programs are stopped (and so stay playable on demand, as a stopped Program does), and
then the channel's encoders and packager exit: a stopped channel costs no encoder CPU.  The
streaming endpoint keeps serving what is stored.  Starting runs them again, then lets the
ingests take a publisher.  A channel with ``spec.idleTimeout`` is stopped the same way once it
has had no contribution for that long (``kubecast.media.idle``).  A reset puts a new token in
the record: the encoders start a fresh timeline with the next contribution (encoder/clock.py).
``kubecast channel slate NAME on|off`` puts the manual slate's switch, with the time it was asked,
in the record: the encoders follow it while they encode (encoder/manual_slate.py).
``kubecast channel cue NAME --duration S [--id N]`` starts an ad break, ``--end`` ends one: the
request, judged first (storage/cue_requests.py), joins the record's cues (encoder/manual_cue.py).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from kubecast.api.components import ChannelStates
from kubecast.encoder.manual_slate import SWITCH_LEAD_MS
from kubecast.media.idle import idle_seconds
from kubecast.storage import (
    ChannelControl,
    CueRefused,
    ProgramRecord,
    Store,
    cue_ended,
    cue_started,
    layout,
    read_program_timeline,
    read_timeline,
    slate_switched,
)

from .plan import Plan, ProcessSpec, write_states
from .programs import publish_record
from .supervisor import ManagedProcess, Supervisor

log = logging.getLogger("kubecast.local")

POLL_SECONDS = 0.5
SETTLE_SECONDS = 10.0  # at most this long for the last segment, then for the programs to freeze


async def read_control(store: Store, channel: str) -> ChannelControl | None:
    data = await store.get(layout.control_key(channel))
    if data is None:
        return None
    try:
        return ChannelControl.from_json(data)
    except ValueError as error:
        log.error("channel %s: its control record is unreadable (%s); nothing changes", channel, error)
        return None


async def publish_control(store: Store, channel: str, control: ChannelControl) -> None:
    await store.put(layout.control_key(channel), control.to_json())


async def change_control(
    store: Store,
    channel: str,
    *,
    state: Literal["Running", "Stopped"] | None = None,
    reset: str | None = None,
    slate: bool | None = None,
) -> ChannelControl | None:
    """The record with ``state``, ``reset`` and/or ``slate`` changed and the rest kept (a stop must
    not drop a reset no contribution has used yet); None when the slate asked is already so."""
    control = await read_control(store, channel) or ChannelControl()
    if state is not None:
        control.state = state
    if reset is not None:
        control.reset = reset
    if slate is not None:
        switched = slate_switched(control.slate, on=slate, now=datetime.now(timezone.utc))
        if switched is control.slate:
            return None
        control.slate = switched
    await publish_control(store, channel, control)
    return control


async def ask_cue(store: Store, channel: str, *, event_id: int | None, seconds: float | None) -> int:
    """A break of ``seconds`` started (None: the break ``event_id``, or the newest, ended) in the
    channel's record; prints what happens, and why not when the request is refused (exit 1)."""
    control = await read_control(store, channel) or ChannelControl()
    now = datetime.now(timezone.utc)
    try:
        if seconds is None:
            control.cues = cue_ended(control.cues, event_id=event_id, now=now)
        else:
            control.cues = cue_started(control.cues, event_id=event_id, seconds=seconds, now=now)
    except CueRefused as error:
        print(f"kubecast channel: cue refused: {error}")
        return 1
    await publish_control(store, channel, control)
    asked = control.cues[-1]
    what = f"ad break of {seconds:g} s" if seconds is not None else "end of the ad break"
    print(
        f"channel {channel}: {what} asked (cue id {asked.event_id}); the encoders insert it at a segment boundary "
        f"about {SWITCH_LEAD_MS / 1000:.0f} s from now"
    )
    return 0


async def channel_programs(store: Store, channel: str) -> list[ProgramRecord]:
    records = []
    for info in await store.list(layout.programs_prefix(channel) + "/"):
        if info.key.endswith("/program.json") and (data := await store.get(info.key)) is not None:
            try:
                records.append(ProgramRecord.from_json(data))
            except ValueError:
                continue  # the packager says so; nothing to stop
    return records


async def _until(condition: Callable[[], Awaitable[bool]], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.2)
    return True


class ChannelSwitch:
    """``kubecast up``'s part: follow the channels' control records, stop and start their processes."""

    def __init__(
        self, *, store: Store, plan: Plan, run_dir: Path, supervisor: Supervisor, channels: Iterable[str]
    ) -> None:
        self.store = store
        self.plan = plan
        self.run_dir = run_dir
        self.supervisor = supervisor
        self.channels = list(channels)
        self.stopped = set(plan.states.stopped)
        self.running_since = dict.fromkeys(self.channels, datetime.now(timezone.utc))

    async def publish(self) -> None:
        """Each channel's record as its manifest says (what a previous run left is replaced)."""
        for channel in self.channels:
            await change_control(self.store, channel, state="Stopped" if channel in self.stopped else "Running")

    async def follow(self) -> None:
        while True:
            for channel in self.channels:
                control = await read_control(self.store, channel)
                if control is None:
                    continue
                if control.state == "Stopped" and channel not in self.stopped:
                    await self.stop(channel)
                elif control.state == "Running" and channel in self.stopped:
                    await self.start(channel)
                elif channel not in self.stopped and channel in self.plan.idle_timeouts:
                    await self._stop_when_idle(channel, self.plan.idle_timeouts[channel])
            await asyncio.sleep(POLL_SECONDS)

    async def _stop_when_idle(self, channel: str, timeout: float) -> None:
        """spec.idleTimeout: stopped as `kubecast channel stop` would (the next round acts on it)."""
        timeline = await read_timeline(self.store, channel)
        idle = idle_seconds(timeline, running_since=self.running_since[channel], now=datetime.now(timezone.utc))
        if idle >= timeout:
            print(f"channel {channel}: no contribution for {idle:.0f} s (spec.idleTimeout): stopping it", flush=True)
            await change_control(self.store, channel, state="Stopped")

    def _write_states(self) -> None:
        write_states(self.run_dir, ChannelStates(stopped=sorted(self.stopped)))

    def _processes(self, channel: str) -> list[ManagedProcess]:
        return [managed for managed in self.supervisor.processes if managed.spec.channel == channel]

    async def stop(self, channel: str) -> None:
        print(f"channel {channel}: stopping", flush=True)
        self.stopped.add(channel)
        self._write_states()  # the ingests refuse its publishers from now on

        async def not_live() -> bool:
            timeline = await read_timeline(self.store, channel)
            return timeline is None or timeline.state != "live"

        if not await _until(not_live, SETTLE_SECONDS):
            log.warning("channel %s: still live after %.0f s; stopping it anyway", channel, SETTLE_SECONDS)
        running = [record for record in await channel_programs(self.store, channel) if record.state == "Running"]
        for record in running:
            record.state = "Stopped"
            await publish_record(self.store, record)
            print(f"program {record.name}: Stopped (its channel stopped); it stays playable on demand", flush=True)

        async def frozen() -> bool:
            for record in running:
                recorded = await read_program_timeline(self.store, channel, record.name)
                if recorded is not None and recorded.state != "stopped":
                    return False
            return True

        if not await _until(frozen, SETTLE_SECONDS):
            log.warning("channel %s: its packager did not freeze every program within %.0f s", channel, SETTLE_SECONDS)
        for managed in reversed(self._processes(channel)):
            await self.supervisor.remove(managed)
        print(f"channel {channel}: Stopped (`kubecast channel start {channel}` starts it)", flush=True)

    async def start(self, channel: str) -> None:
        print(f"channel {channel}: starting", flush=True)
        specs: list[ProcessSpec] = [spec for spec in self.plan.processes if spec.channel == channel]
        for spec in specs:
            await self.supervisor.start_one(self.supervisor.add(spec, echo=self.supervisor.echo))
        self.stopped.discard(channel)
        self.running_since[channel] = datetime.now(timezone.utc)
        self._write_states()  # its encoders listen: the ingests may take a publisher
        print(f"channel {channel}: Running", flush=True)


def main_channel(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="kubecast channel",
        description="Stop, start or reset a Channel of a running `kubecast up`, show and hide its slate, "
        "or start and end an ad break.",
    )
    parser.add_argument("action", choices=["start", "stop", "reset", "slate", "cue"])
    parser.add_argument("name")
    parser.add_argument("switch", nargs="?", choices=["on", "off"], help="slate: on (show the card) or off")
    parser.add_argument("--duration", type=float, help="cue: start an ad break of this many seconds")
    parser.add_argument("--end", action="store_true", help="cue: end the break (--id, or the newest) now")
    parser.add_argument("--id", type=int, help="cue: the break's splice_event_id (default: the next free one)")
    parser.add_argument("--store", default=str(Path(".kubecast/store").resolve()))
    args = parser.parse_args(argv)
    if (args.action == "slate") != (args.switch is not None):
        parser.error("`slate NAME on|off` takes on or off; the other actions take none")
    if args.action == "cue" and (args.duration is None) == (not args.end):
        parser.error("`cue NAME` takes either --duration SECONDS (start a break) or --end")
    if args.action != "cue" and (args.duration is not None or args.end or args.id is not None):
        parser.error("--duration, --end and --id go with `cue`")

    async def change() -> int:
        store = Store(args.store)
        if await read_control(store, args.name) is None:
            print(f"kubecast channel: no channel {args.name!r} in {args.store} (is `kubecast up` running?)")
            return 1
        if args.action == "slate":
            on = args.switch == "on"
            if not await change_control(store, args.name, slate=on):
                print(f"channel {args.name}: the slate is already {args.switch}")
                return 0
            print(
                f"channel {args.name}: slate {args.switch} asked; the encoders switch at a segment boundary "
                f"about {SWITCH_LEAD_MS / 1000:.0f} s from now"
            )
            return 0
        if args.action == "cue":
            return await ask_cue(store, args.name, event_id=args.id, seconds=None if args.end else args.duration)
        if args.action == "reset":
            await change_control(store, args.name, reset=secrets.token_hex(8))
            print(f"channel {args.name}: reset; its next contribution starts a fresh timeline")
            return 0
        state: Literal["Running", "Stopped"] = "Running" if args.action == "start" else "Stopped"
        await change_control(store, args.name, state=state)
        print(f"channel {args.name}: {state} asked; `kubecast up` follows within a second")
        return 0

    return asyncio.run(change())

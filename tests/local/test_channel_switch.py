"""kubecast up's channel switch, without processes: it follows the channels' control records in
the store (what `kubecast channel stop|start` writes), tells the ingests through the states
file, and stops a channel that has been idle for its spec.idleTimeout."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kubecast.api import load_text
from kubecast.ingest.states import read_states
from kubecast.local.channels import ChannelSwitch, main_channel, read_control
from kubecast.local.plan import Ports, build_plan, metrics_names, states_path, write_run_files
from kubecast.local.supervisor import ManagedProcess, Supervisor
from kubecast.storage import Store

MANIFESTS = """
apiVersion: kubecast.io/v1alpha1
kind: Channel
metadata: {name: news}
spec: {encoding: {preset: None}, idleTimeout: PT2S}
---
apiVersion: kubecast.io/v1alpha1
kind: Channel
metadata: {name: sport}
spec: {encoding: {preset: None}}
"""


class NoProcesses(Supervisor):
    """Starts nothing (the e2e test runs real processes): what the switch asks is recorded."""

    def __init__(self, specs: list) -> None:
        super().__init__(specs)
        self.started: list[str] = []

    async def start_one(self, managed: ManagedProcess) -> None:
        self.started.append(managed.spec.name)


def switch_for(tmp_path: Path) -> tuple[ChannelSwitch, Store]:
    manifests = load_text(MANIFESTS)
    ports = Ports(
        rtmp=1935,
        http=8080,
        contribution={("news", "A"): 7001, ("sport", "A"): 7002},
        metrics={name: 9000 + index for index, name in enumerate(metrics_names(manifests, redundant=False))},
    )
    run_dir = tmp_path / "run"
    plan = build_plan(manifests=manifests, store_url=str(tmp_path / "store"), run_dir=run_dir, host="h", ports=ports)
    write_run_files(plan, run_dir)
    store = Store(str(tmp_path / "store"))
    supervisor = NoProcesses([])
    return ChannelSwitch(
        store=store, plan=plan, run_dir=run_dir, supervisor=supervisor, channels=["news", "sport"]
    ), store


async def until(predicate, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.1)


async def test_the_command_stops_and_starts_a_channel_and_idleness_stops_it_too(tmp_path):
    switch, store = switch_for(tmp_path)
    await switch.publish()
    assert (await read_control(store, "news")).state == "Running"
    follower = asyncio.create_task(switch.follow())
    try:
        # news has no contribution: idle since it started, stopped after its 2 s
        await until(lambda: _stopped(switch, "news"), timeout=8)
        assert read_states(states_path(switch.run_dir)) == frozenset({"news"})
        assert (await read_control(store, "news")).state == "Stopped"
        assert "sport" not in switch.stopped, "no idleTimeout: never stopped for idleness"

        code = await asyncio.to_thread(main_channel, ["stop", "sport", "--store", str(tmp_path / "store")])
        assert code == 0
        await until(lambda: _stopped(switch, "sport"))
        code = await asyncio.to_thread(main_channel, ["start", "news", "--store", str(tmp_path / "store")])
        assert code == 0

        async def news_running() -> bool:
            return "news" not in switch.stopped

        await until(news_running)
        assert read_states(states_path(switch.run_dir)) == frozenset({"sport"})
        assert switch.supervisor.started == ["encoder news/A", "packager news"]
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)


async def _stopped(switch: ChannelSwitch, channel: str) -> bool:
    return channel in switch.stopped


def test_the_command_says_when_no_kubecast_up_knows_the_channel(tmp_path, capsys):
    assert main_channel(["stop", "nope", "--store", str(tmp_path)]) == 1
    assert "no channel 'nope'" in capsys.readouterr().out


async def test_reset_puts_a_new_token_in_the_record_and_a_stop_keeps_it(tmp_path):
    switch, store = switch_for(tmp_path)
    await switch.publish()
    folder = str(tmp_path / "store")
    assert await asyncio.to_thread(main_channel, ["reset", "sport", "--store", folder]) == 0
    first = (await read_control(store, "sport")).reset
    assert await asyncio.to_thread(main_channel, ["reset", "sport", "--store", folder]) == 0
    second = await read_control(store, "sport")
    assert first and second.reset and second.reset != first and second.state == "Running"
    assert await asyncio.to_thread(main_channel, ["stop", "sport", "--store", folder]) == 0
    stopped = await read_control(store, "sport")
    assert (stopped.state, stopped.reset) == ("Stopped", second.reset), "no contribution has used the reset yet"


async def test_slate_on_and_off_are_written_once_each_with_the_time_asked(tmp_path, capsys):
    switch, store = switch_for(tmp_path)
    await switch.publish()
    folder = str(tmp_path / "store")
    assert await asyncio.to_thread(main_channel, ["slate", "sport", "on", "--store", folder]) == 0
    on = (await read_control(store, "sport")).slate
    assert on is not None and on.on
    assert await asyncio.to_thread(main_channel, ["slate", "sport", "on", "--store", folder]) == 0
    assert "already on" in capsys.readouterr().out
    assert (await read_control(store, "sport")).slate == on, "asking again does not move the boundary"
    assert await asyncio.to_thread(main_channel, ["stop", "sport", "--store", folder]) == 0
    assert (await read_control(store, "sport")).slate == on, "a stop keeps the slate"
    assert await asyncio.to_thread(main_channel, ["slate", "sport", "off", "--store", folder]) == 0
    off = (await read_control(store, "sport")).slate
    assert off is not None and not off.on and off.asked >= on.asked


def test_slate_takes_on_or_off_and_nothing_else_does(tmp_path, capsys):
    for argv in (["slate", "sport"], ["slate", "sport", "maybe"], ["stop", "sport", "on"]):
        try:
            main_channel([*argv, "--store", str(tmp_path)])
        except SystemExit as refused:
            assert refused.code == 2, argv
        else:
            raise AssertionError(f"{argv} was taken")
    assert "on or off" in capsys.readouterr().err


async def test_cue_starts_and_ends_a_break_in_the_record_and_refuses_a_bad_one(tmp_path, capsys):
    switch, store = switch_for(tmp_path)
    await switch.publish()
    folder = str(tmp_path / "store")
    assert await asyncio.to_thread(main_channel, ["cue", "sport", "--duration", "30", "--store", folder]) == 0
    assert "cue id 1" in capsys.readouterr().out
    (out,) = (await read_control(store, "sport")).cues
    assert (out.event_id, out.out, out.duration_ms) == (1, True, 30_000)
    for argv, why in (
        (["--duration", "0"], "1 to 3600 seconds"),
        (["--duration", "7200"], "1 to 3600 seconds"),
        (["--duration", "30", "--id", "1"], "already used"),
        (["--end", "--id", "9"], "no break with cue id 9"),
    ):
        assert await asyncio.to_thread(main_channel, ["cue", "sport", *argv, "--store", folder]) == 1, argv
        assert why in capsys.readouterr().out, argv
    assert (await read_control(store, "sport")).cues == [out], "a refused request changes nothing"
    assert await asyncio.to_thread(main_channel, ["cue", "sport", "--end", "--store", folder]) == 0
    control = await read_control(store, "sport")
    assert [(c.event_id, c.out) for c in control.cues] == [(1, True), (1, False)]
    assert control.slate is None and control.state == "Running", "the rest of the record is kept"


def test_cue_takes_a_duration_or_end(tmp_path, capsys):
    for argv in (["cue", "sport"], ["cue", "sport", "--duration", "5", "--end"], ["stop", "sport", "--end"]):
        with pytest.raises(SystemExit) as refused:
            main_channel([*argv, "--store", str(tmp_path)])
        assert refused.value.code == 2, argv
    assert "--duration SECONDS" in capsys.readouterr().err

"""Channel stop and start with the operator under kopf against the kmock emulator: the encoder
and packager Deployments go to zero replicas and back, and status.phase with the conditions
follows what the Deployment controller (played by the test) reports."""

from __future__ import annotations

import asyncio
import json

import pytest
from emulator import (
    CHANNELS,
    DEPLOYMENTS,
    PROGRAMS,
    as_user,
    channel_body,
    conditions,
    eventually,
    obj,
    operator,
    path_of,
    put_stream_key,
)

from kubecast.operator.crds import all_crds
from kubecast.operator.handlers.channel_stop import state_to_record

pytestmark = pytest.mark.timeout(120)

PARTS = ("news-encoder-a", "news-encoder-b", "news-packager")


def replicas(cluster) -> dict[str, int]:
    return {name: obj(cluster, DEPLOYMENTS, name).raw["spec"]["replicas"] for name in PARTS}


def phase(cluster) -> str | None:
    return (obj(cluster, CHANNELS, "news").raw.get("status") or {}).get("phase")


async def controller(cluster, name: str, *, pods: int) -> None:
    """The Deployment controller has acted on the current generation: ``pods`` ready pods."""
    generation = obj(cluster, DEPLOYMENTS, name).raw["metadata"]["generation"]
    status = {"observedGeneration": generation, "replicas": pods, "updatedReplicas": pods, "readyReplicas": pods}
    path = f"/apis/apps/v1/namespaces/media/deployments/{name}/status"
    assert await as_user(cluster, "PATCH", path, {"status": status}) == 200


async def set_state(cluster, state: str, generation: int) -> None:
    change = {"metadata": {"generation": generation}, "spec": {"state": state}}
    assert await as_user(cluster, "PATCH", path_of(), change) == 200


def test_kubectl_get_channels_shows_the_phase():
    crd = next(c for c in all_crds() if c["spec"]["names"]["kind"] == "Channel")
    columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    assert columns[0] == {"name": "Phase", "type": "string", "jsonPath": ".status.phase"}
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["phase"]
    assert schema["enum"] == ["Starting", "Running", "Stopping", "Stopped"]


async def test_stopping_scales_to_zero_and_the_phase_follows_the_pods(cluster, tmp_path, monkeypatch):
    """And the control record in the store says Stopped before the zero replicas (the going pods' ingest
    reads it) and Running again before the pods are back."""
    store = tmp_path / "store"
    monkeypatch.setenv("KUBECAST_STORE_URL", str(store))
    put_stream_key(cluster)
    cluster.objects[CHANNELS, "media", "news"] = channel_body()
    async with operator():
        await eventually(lambda: obj(cluster, DEPLOYMENTS, "news-packager"), what="the Deployments")
        assert replicas(cluster) == dict.fromkeys(PARTS, 1)
        assert phase(cluster) in (None, "Starting")
        for name in PARTS:
            await controller(cluster, name, pods=1)
        await eventually(lambda: phase(cluster) == "Running", what="phase Running")

        assert control(store) is None, "a channel that never stopped has no state to record"
        await set_state(cluster, "Stopped", 2)
        await eventually(lambda: replicas(cluster) == dict.fromkeys(PARTS, 0), what="zero replicas")
        assert control(store)["state"] == "Stopped"
        await eventually(lambda: phase(cluster) == "Stopping", what="phase Stopping")
        assert conditions(cluster, "news")["Reconciling"]["status"] == "True"
        for name in PARTS:
            await controller(cluster, name, pods=0)
        await eventually(lambda: phase(cluster) == "Stopped", what="phase Stopped")
        stopped = conditions(cluster, "news")
        assert (stopped["Ready"]["status"], stopped["Ready"]["reason"]) == ("False", "Stopped")
        assert stopped["Reconciling"]["status"] == "False" and stopped["Stalled"]["status"] == "False"

        await set_state(cluster, "Running", 3)
        await eventually(lambda: replicas(cluster) == dict.fromkeys(PARTS, 1), what="one replica each again")
        assert control(store)["state"] == "Running"
        await eventually(lambda: phase(cluster) == "Starting", what="phase Starting")
        for name in PARTS:
            await controller(cluster, name, pods=1)
        await eventually(lambda: phase(cluster) == "Running", what="phase Running again")


async def test_a_channel_created_stopped_never_gets_pods(cluster):
    put_stream_key(cluster)
    body = channel_body()
    body["spec"]["state"] = "Stopped"
    cluster.objects[CHANNELS, "media", "news"] = body
    async with operator():
        await eventually(lambda: obj(cluster, DEPLOYMENTS, "news-packager"), what="the Deployments")
        assert replicas(cluster) == dict.fromkeys(PARTS, 0)
        await eventually(lambda: phase(cluster) in ("Stopping", "Stopped"), what="a stopped phase")
        for name in PARTS:
            await controller(cluster, name, pods=0)
        await eventually(lambda: phase(cluster) == "Stopped", what="phase Stopped")


@pytest.mark.parametrize(
    "stopped, phase, recorded",
    [
        (True, None, "Stopped"),
        (True, "Running", "Stopped"),
        (True, "Stopping", "Stopped"),
        (True, "Stopped", None),  # no pod is left to read it
        (False, "Stopped", "Running"),
        (False, "Stopping", "Running"),
        (False, "Starting", None),
        (False, None, None),  # never stopped: no record to undo
    ],
)
def test_the_state_is_recorded_where_a_stop_or_a_start_must_be_told(stopped, phase, recorded):
    assert state_to_record(stopped=stopped, phase=phase) == recorded


def idle_events(cluster) -> list:
    return [r for r in cluster if r.resource and r.resource.plural == "events" and "IdleTimeout" in r.text]


async def test_idle_timeout_stops_a_channel_without_contribution_with_an_event(cluster, tmp_path, monkeypatch):
    """A timeline that stopped being live 1 s ago, idleTimeout PT3S: the operator stops the
    channel a few seconds later (the stream report runs every second here), not before."""
    from datetime import datetime, timedelta, timezone

    from kubecast.media.timeline import Timeline, TimelineSegment, TimelineTrack
    from kubecast.media.tracks import TrackInfo

    store = tmp_path / "store"
    monkeypatch.setenv("KUBECAST_STORE_URL", str(store))
    put_stream_key(cluster)
    body = channel_body()
    body["spec"]["idleTimeout"] = "PT3S"
    cluster.objects[CHANNELS, "media", "news"] = body
    async with operator():
        await eventually(lambda: obj(cluster, DEPLOYMENTS, "news-packager"), what="the Deployments")
        for name in PARTS:
            await controller(cluster, name, pods=1)
        await eventually(lambda: phase(cluster) == "Running", what="phase Running")
        started = asyncio.get_running_loop().time()
        # The contribution's last segment (number 9 of 2 s) ended now: idle from here on.
        now = datetime.now(timezone.utc)
        track = TimelineTrack(
            info=TrackInfo(
                id="video", kind="video", codecs="avc1.64001f", bandwidth=1_000_000, timescale=90000, init="init-0.mp4"
            ),
            init_source="A",
            segments=[TimelineSegment(9, 9 * 180000, 180000, 1000, "A")],
        )
        timeline = Timeline(
            channel="news",
            state="waiting",
            updated=now,
            availability_start_time=now - timedelta(seconds=20),
            segment_duration_ms=2000,
            window_ms=60000,
            tracks=[track],
        )
        path = store / "media" / "channels" / "news" / "timeline.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(timeline.to_json())
        await eventually(
            lambda: obj(cluster, CHANNELS, "news").raw["spec"].get("state") == "Stopped",
            timeout=20,
            what="spec.state Stopped",
        )
        assert asyncio.get_running_loop().time() - started >= 2.5, "not before the timeout"
        event = await eventually(lambda: idle_events(cluster), what="an IdleTimeout event")
        assert event[0].data["type"] == "Normal" and "spec.idleTimeout PT3S" in event[0].data["message"]
        await eventually(lambda: replicas(cluster) == dict.fromkeys(PARTS, 0), what="zero replicas")


def control(store) -> dict | None:
    path = store / "media" / "channels" / "news" / "control.json"
    return json.loads(path.read_text()) if path.exists() else None


async def test_the_reset_annotation_puts_its_token_where_the_encoders_read_it(cluster, tmp_path, monkeypatch):
    store = tmp_path / "store"
    monkeypatch.setenv("KUBECAST_STORE_URL", str(store))
    put_stream_key(cluster)
    body = channel_body()
    body["metadata"]["annotations"] = {"kubecast.io/reset": "first"}
    cluster.objects[CHANNELS, "media", "news"] = body
    async with operator():
        await eventually(lambda: (control(store) or {}).get("reset") == "first", what="the first token stored")
        await eventually(lambda: obj(cluster, DEPLOYMENTS, "news-packager"), what="the Deployments")
        hashes = {name: obj(cluster, DEPLOYMENTS, name).raw["spec"]["template"]["metadata"] for name in PARTS}
        change = {"metadata": {"annotations": {"kubecast.io/reset": "second"}}}
        assert await as_user(cluster, "PATCH", path_of(), change) == 200
        await eventually(lambda: (control(store) or {}).get("reset") == "second", what="the new token stored")
        events = [r for r in cluster if r.resource and r.resource.plural == "events" and "fresh timeline" in r.text]
        assert any("'second'" in e.data["message"] and e.data["reason"] == "Reset" for e in events)
        assert {
            name: obj(cluster, DEPLOYMENTS, name).raw["spec"]["template"]["metadata"] for name in PARTS
        } == hashes, "a reset restarts no pod"


def program_body(name: str, channel: str, state: str = "Running") -> dict:
    return {
        "apiVersion": "kubecast.io/v1alpha1",
        "kind": "Program",
        "metadata": {"name": name, "namespace": "media", "uid": f"uid-{name}", "generation": 1, "resourceVersion": "1"},
        "spec": {"channelName": channel, "archiveWindow": "PT1H", "state": state},
    }


def record(store, channel: str, program: str) -> dict | None:
    path = store / "media" / "channels" / channel / "programs" / program / "program.json"
    return json.loads(path.read_text()) if path.exists() else None


async def test_stopping_a_channel_stops_its_running_programs_before_its_packager_goes(cluster, tmp_path, monkeypatch):
    """As locally: the channel's running Programs get spec.state Stopped with an Event, and their
    records in the store turn Stopped before the packager's zero replicas are written (the packager
    freezes them as it goes); other channels' Programs and a Program created later are left alone."""
    store = tmp_path / "store"
    monkeypatch.setenv("KUBECAST_STORE_URL", str(store))
    put_stream_key(cluster)
    cluster.objects[CHANNELS, "media", "news"] = channel_body()
    cluster.objects[PROGRAMS, "media", "evening"] = program_body("evening", "news")
    cluster.objects[PROGRAMS, "media", "sport"] = program_body("sport", "other")
    async with operator():
        await eventually(lambda: obj(cluster, DEPLOYMENTS, "news-packager"), what="the Deployments")
        for name in PARTS:
            await controller(cluster, name, pods=1)
        await eventually(lambda: phase(cluster) == "Running", what="phase Running")
        await eventually(lambda: (record(store, "news", "evening") or {}).get("state") == "Running", what="published")

        await set_state(cluster, "Stopped", 2)
        await eventually(lambda: replicas(cluster) == dict.fromkeys(PARTS, 0), what="zero replicas")
        await eventually(
            lambda: obj(cluster, PROGRAMS, "evening").raw["spec"]["state"] == "Stopped", what="the Program stopped"
        )
        assert record(store, "news", "evening")["state"] == "Stopped"
        assert control(store)["state"] == "Stopped", "written before the replicas: the going pods read it"
        assert obj(cluster, PROGRAMS, "sport").raw["spec"]["state"] == "Running", "another channel's program"
        requests = list(cluster)
        stop_patch = next(
            i
            for i, r in enumerate(requests)
            if r.resource and r.resource.plural == "programs" and r.name == "evening" and r.method.value == "PATCH"
        )
        zero = next(
            i
            for i, r in enumerate(requests)
            if r.resource
            and r.resource.plural == "deployments"
            and r.name == "news-packager"
            and r.method.value == "PATCH"
            and (r.data or {}).get("spec", {}).get("replicas") == 0
        )
        assert stop_patch < zero, "the program is stopped (record first, then spec) before the packager goes"
        events = [r for r in requests if r.resource and r.resource.plural == "events" and "ChannelStopped" in r.text]
        assert len(events) == 1 and events[0].data["involvedObject"]["name"] == "evening"
        assert "plays on demand" in events[0].data["message"]

        for name in PARTS:
            await controller(cluster, name, pods=0)
        await eventually(lambda: phase(cluster) == "Stopped", what="phase Stopped")
        ready = conditions(cluster, "news")["Ready"]
        assert ready["message"].startswith("channel news is stopped: start it to publish"), ready
        # A Program made for the stopped channel waits for its start: not stopped.
        collection = path_of("later", "programs").rsplit("/", 1)[0]
        assert await as_user(cluster, "POST", collection, program_body("later", "news")) in (200, 201)
        await eventually(lambda: (record(store, "news", "later") or {}).get("state") == "Running", what="published")
        change = {"metadata": {"generation": 3}, "spec": {"liveWindow": 40}}
        assert await as_user(cluster, "PATCH", path_of(), change) == 200  # a reconcile of the stopped channel
        await eventually(
            lambda: obj(cluster, CHANNELS, "news").raw["status"].get("observedGeneration") == 3, what="reconciled"
        )
        assert obj(cluster, PROGRAMS, "later").raw["spec"]["state"] == "Running"

"""A steady live stream costs no status write per report: a report that would only move the
progress fields (segment numbers, the timeline's time) waits up to status.PROGRESS_SECONDS, while
any other news goes out at once and takes the progress with it."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path

import pytest
from emulator import (
    CHANNELS,
    DEPLOYMENTS,
    ENDPOINTS,
    PROGRAMS,
    as_user,
    channel_body,
    conditions,
    eventually,
    exists,
    obj,
    operator,
    path_of,
    put_stream_key,
    roll_out,
)

from kubecast.media.timeline import EncoderHealth, Timeline

pytestmark = pytest.mark.timeout(120)


def write_timeline(store: Path, *, last_segment: int, failovers: int = 0) -> None:
    timeline = Timeline(
        channel="news",
        state="live",
        updated=datetime.now(timezone.utc),
        segment_duration_ms=2000,
        window_ms=60000,
        active_source="B" if failovers else "A",
        failovers=failovers,
        last_failover=datetime.now(timezone.utc) if failovers else None,
        encoders={
            "A": EncoderHealth(state="live", ingest_connected=True, last_segment=last_segment, segments_taken=3),
            "B": EncoderHealth(state="live", ingest_connected=True, last_segment=last_segment, segments_taken=3),
        },
    )
    path = store / "media" / "channels" / "news" / "timeline.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(timeline.to_json())


async def test_progress_alone_writes_no_status_and_news_takes_it_along(cluster, tmp_path, monkeypatch):
    store = tmp_path / "store"
    monkeypatch.setenv("KUBECAST_STORE_URL", str(store))
    put_stream_key(cluster)
    cluster.objects[CHANNELS, "media", "news"] = channel_body()
    write_timeline(store, last_segment=40)
    status = lambda: obj(cluster, CHANNELS, "news").raw.get("status") or {}  # noqa: E731
    writes = lambda: sum(1 for r in cluster if r.subresource == "status" and r.method.value == "PATCH")  # noqa: E731
    async with operator():
        await eventually(lambda: (status().get("stream") or {}).get("state") == "live", what="status.stream")
        await eventually(lambda: "ready" in status()["encoders"]["A"], what="the reconcile's status")
        await asyncio.sleep(2)  # the start-up's last writes
        before = writes()
        write_timeline(store, last_segment=50)
        await asyncio.sleep(2.5)  # two reports at the tests' 1 s interval
        assert writes() == before, "a report of progress alone waits"
        assert status()["encoders"]["A"]["lastSegment"] == 40
        write_timeline(store, last_segment=60, failovers=1)
        await eventually(lambda: status()["stream"]["failovers"] == 1, what="the failover")
        assert status()["encoders"]["A"]["lastSegment"] == 60, "the progress goes out with the news"


def endpoint_body() -> dict:
    return {
        "apiVersion": "kubecast.io/v1alpha1",
        "kind": "StreamingEndpoint",
        "metadata": {"name": "origin", "namespace": "media", "uid": "uid-origin", "generation": 1},
        "spec": {"replicas": 1},
    }


def program_body() -> dict:
    return {
        "apiVersion": "kubecast.io/v1alpha1",
        "kind": "Program",
        "metadata": {"name": "evening", "namespace": "media", "uid": "uid-evening", "generation": 1},
        "spec": {"channelName": "news", "archiveWindow": "PT1H", "manifestName": "show", "state": "Running"},
    }


def handled(body: dict) -> bool:
    """kopf has recorded the object as handled (its last write of the object's own)."""
    return "kubecast.io/last-handled-configuration" in (body.get("metadata", {}).get("annotations") or {})


def refreshes(kind: str) -> float:
    from kubecast.operator.metrics import RECONCILES

    return RECONCILES.labels(kind, "ok")._value.get()


async def test_a_steady_program_and_endpoint_write_nothing_in_ten_minutes_of_refreshes(cluster, tmp_path, monkeypatch):
    """Ten minutes of a Program's and an endpoint's 30 s refreshes (20 each, run here every 0.2 s):
    no status write, no child applied again, since nothing changed."""
    from kubecast.operator.handlers import endpoint, program

    monkeypatch.setenv("KUBECAST_STORE_URL", str(tmp_path / "store"))
    monkeypatch.setattr(endpoint, "REFRESH_SECONDS", 0.2)
    monkeypatch.setattr(program, "REFRESH_SECONDS", 0.2)
    put_stream_key(cluster)
    cluster.objects[CHANNELS, "media", "news"] = channel_body()
    cluster.objects[ENDPOINTS, "media", "origin"] = endpoint_body()
    cluster.objects[PROGRAMS, "media", "evening"] = program_body()
    ready = lambda resource, name: conditions(cluster, name, resource)["Ready"]["status"] == "True"  # noqa: E731
    writes = lambda: [  # noqa: E731 - the operator's writes of the endpoint, the Program and their children
        f"{r.method.value} {r.resource.plural}/{r.name}/{r.subresource or ''}"
        for r in cluster
        if r.method.value in ("POST", "PUT", "PATCH", "DELETE")
        and r.resource is not None
        and (r.name or "").startswith(("origin", "evening"))  # not the Channel's (its start may take a while)
        and r.headers.get("X-Test-Client") != "test"
    ]
    async with operator():
        await eventually(lambda: exists(cluster, DEPLOYMENTS, "origin-endpoint"), what="the endpoint's Deployment")
        await roll_out(cluster, "origin-endpoint")
        await eventually(lambda: ready(ENDPOINTS, "origin"), what="the endpoint Ready")
        await eventually(lambda: ready(PROGRAMS, "evening"), what="the Program Ready (published on the endpoint)")
        await eventually(
            lambda: refreshes("StreamingEndpoint") >= 3 and refreshes("Program") >= 3,
            timeout=40,
            what="the refreshes running",
        )
        assert conditions(cluster, "origin", ENDPOINTS)["Reconciling"]["status"] == "False"
        await eventually(
            lambda: all(handled(obj(cluster, *key).raw) for key in ((ENDPOINTS, "origin"), (PROGRAMS, "evening"))),
            timeout=40,
            what="kopf done with their creation (its last annotation patch)",
        )
        before, endpoints, programs = len(writes()), refreshes("StreamingEndpoint"), refreshes("Program")
        await eventually(
            lambda: refreshes("StreamingEndpoint") >= endpoints + 20 and refreshes("Program") >= programs + 20,
            timeout=40,
            what="20 more refreshes of each",
        )
        assert writes()[before:] == [], "a refresh that finds nothing new writes nothing"


async def test_a_channel_coming_up_is_written_once_and_progress_alone_is_told_after_the_hold(cluster, monkeypatch):
    """Statuses of progress alone (first sight, "waiting for encoder B") are held back and replaced
    by later ones (channel_state.STATUS_HOLD_SECONDS): a Channel whose Deployments are all ready
    within the hold gets one status write; a
    rollout left in progress is still told once the hold is over."""
    from kubecast.operator.handlers import channel_state

    monkeypatch.setattr(channel_state, "STATUS_HOLD_SECONDS", 60)  # nothing held goes out by time here
    put_stream_key(cluster)
    cluster.objects[CHANNELS, "media", "news"] = channel_body()
    writes = lambda: [  # noqa: E731
        r.data["status"]
        for r in cluster
        if r.resource is not None and r.resource.plural == "channels" and r.subresource == "status"
    ]
    async with operator():
        for name in ("news-encoder-a", "news-encoder-b", "news-packager"):
            await eventually(lambda: exists(cluster, DEPLOYMENTS, name), what=name)  # noqa: B023
            await roll_out(cluster, name)
        await eventually(lambda: conditions(cluster, "news")["Ready"]["reason"] == "Redundant", what="Redundant")
        [written] = writes()
        assert {c["type"]: c["status"] for c in written["conditions"]}["Reconciling"] == "False"

        monkeypatch.setattr(channel_state, "STATUS_HOLD_SECONDS", 0.5)
        change = {"spec": channel_body(ladder_top=2_000_000)["spec"]}
        assert await as_user(cluster, "PATCH", path_of(), change) == 200
        await eventually(lambda: conditions(cluster, "news")["Reconciling"]["status"] == "True", what="RollingOut told")
        assert conditions(cluster, "news")["Ready"]["reason"] == "Redundant"
        assert len(writes()) == 2

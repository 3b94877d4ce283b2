"""The operator running under kopf against the kmock Kubernetes emulator.

Asserts on what the operator sent (the children's bodies) and on the status it wrote.  The
emulator has no controllers and no garbage collector: Deployment readiness is simulated by
writing their status, and deletion is covered by checking owner references.
"""

from __future__ import annotations

import asyncio
import json

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
from timeline_fixtures import one_track_timeline

pytestmark = pytest.mark.timeout(120)


async def test_channel_gets_its_children_and_becomes_ready(cluster):
    put_stream_key(cluster)
    cluster.objects[CHANNELS, "media", "news"] = channel_body()
    async with operator():
        await eventually(lambda: obj(cluster, DEPLOYMENTS, "news-packager"), what="the packager Deployment")
        for name in ("news-encoder-a", "news-encoder-b", "news-packager"):
            deployment = obj(cluster, DEPLOYMENTS, name)
            assert deployment["metadata"]["ownerReferences"][0]["uid"] == "uid-news"
            assert deployment["metadata"]["labels"]["kubecast.io/channel"] == "news"
        for resource, name in (
            ("v1/services", "news-ingest-a"),
            ("v1/services", "news-ingest-b"),
            ("v1/configmaps", "news-encoder-a"),
            ("policy/v1/poddisruptionbudgets", "news-encoders"),
        ):
            assert obj(cluster, resource, name)["metadata"]["ownerReferences"][0]["kind"] == "Channel"
        # (a status of progress alone is held back a moment: channel_state.STATUS_HOLD_SECONDS)
        await eventually(
            lambda: conditions(cluster, "news").get("Ready", {}).get("status") in ("Unknown", "False"),
            what="Ready Unknown or False while nothing runs",
        )
        # the emulator runs no controllers: the Deployments report ready because the test says so
        for name in ("news-encoder-a", "news-encoder-b", "news-packager"):
            await roll_out(cluster, name)
        # the three readiness events arrive one by one: Ready=True/Degraded (one encoder up) may come first
        ready = await eventually(
            lambda: conditions(cluster, "news")["Ready"]["reason"] == "Redundant" and conditions(cluster, "news"),
            timeout=40,
            what="Ready=True/Redundant",
        )
        assert ready["Ready"]["status"] == "True" and ready["Stalled"]["status"] == "False"
        status = obj(cluster, CHANNELS, "news").raw["status"]
        assert status["observedGeneration"] == 1 and status["ingest"]["primary"].startswith(
            "rtmp://news-ingest-a.media.svc:1935/live/news"
        )
        text = json.dumps(obj(cluster, CHANNELS, "news").raw)
        assert "c2VjcmV0" not in text and "secret" not in json.dumps(status).lower(), "no secret in status"
        # kopf writes its annotation in a patch of its own after the handlers' status: under load it lands later
        await eventually(
            lambda: (
                "kubecast.io/last-handled-configuration"
                in obj(cluster, CHANNELS, "news").raw["metadata"].get("annotations", {})
            ),
            what="kopf's state in our annotations",
        )


async def test_missing_secret_is_reported_not_crash_looped(cluster):
    cluster.objects[CHANNELS, "media", "news"] = channel_body(key_secret="absent")
    async with operator():
        stalled = await eventually(
            lambda: (
                conditions(cluster, "news").get("Stalled", {}).get("status") == "True" and conditions(cluster, "news")
            ),
            what="Stalled",
        )
        assert stalled["Ready"]["status"] == "False" and stalled["Ready"]["reason"] == "SecretMissing"
        assert not exists(cluster, DEPLOYMENTS, "news-encoder-a")


async def test_autoscaled_endpoint_never_gets_replicas(cluster):
    cluster.objects[ENDPOINTS, "media", "origin"] = {
        "apiVersion": "kubecast.io/v1alpha1",
        "kind": "StreamingEndpoint",
        "metadata": {
            "name": "origin",
            "namespace": "media",
            "uid": "uid-origin",
            "generation": 1,
            "resourceVersion": "1",
        },
        "spec": {"scaling": {"minReplicas": 2, "maxReplicas": 6}},
    }
    async with operator():
        await eventually(
            lambda: obj(cluster, "autoscaling/v2/horizontalpodautoscalers", "origin-endpoint"), what="the HPA"
        )
        deployment = obj(cluster, DEPLOYMENTS, "origin-endpoint")
        assert "replicas" not in deployment["spec"]
        # a few reconciliations later, no version the operator ever wrote has replicas
        await eventually(lambda: len(deployment.history) >= 2, timeout=20, what="a second reconciliation")
        assert all("replicas" not in (version.raw if version else {}).get("spec", {}) for version in deployment.history)


def spec_hash(cluster, name):
    return obj(cluster, DEPLOYMENTS, name).raw["spec"]["template"]["metadata"]["annotations"]["kubecast.io/spec-hash"]


def reconciling(cluster) -> tuple[str, str, str]:
    condition = conditions(cluster, "news")["Reconciling"]
    return condition["status"], condition["reason"], condition["message"]


async def test_a_new_ladder_rolls_encoder_a_then_b_on_as_event_and_reconciles_until_both_run_it(cluster):
    """The emulator bumps a Deployment's generation with each new template, as the API server
    does; the test plays the Deployment controller (status through the API, so the operator's
    watch sees it)."""
    put_stream_key(cluster)
    cluster.objects[CHANNELS, "media", "news"] = channel_body()
    async with operator():
        await eventually(lambda: obj(cluster, DEPLOYMENTS, "news-packager"), what="the Deployments")
        for name in ("news-encoder-a", "news-encoder-b", "news-packager"):
            await roll_out(cluster, name)
        await eventually(lambda: reconciling(cluster)[0] == "False", what="Reconciled")
        old_a, old_b = spec_hash(cluster, "news-encoder-a"), spec_hash(cluster, "news-encoder-b")
        old_config = obj(cluster, "v1/configmaps", "news-encoder-b").raw["data"]["encoder.json"]

        change = {"metadata": {"generation": 2}, "spec": channel_body(ladder_top=2_000_000)["spec"]}
        assert await as_user(cluster, "PATCH", path_of(), change) == 200
        await eventually(lambda: spec_hash(cluster, "news-encoder-a") != old_a, what="encoder A on the new ladder")
        assert obj(cluster, DEPLOYMENTS, "news-encoder-a").raw["metadata"]["generation"] == 2
        await eventually(
            lambda: obj(cluster, CHANNELS, "news").raw["status"]["observedGeneration"] == 2,
            what="generation 2 observed",
        )
        # A's old pod is still ready (its controller has not seen generation 2): the pair is live, not rolled out
        assert (
            reconciling(cluster)[:2] == ("True", "RollingOut")
            and conditions(cluster, "news")["Ready"]["reason"] == "Redundant"
        )
        await roll_out(cluster, "news-encoder-a", ready=0)  # Recreate: A's new pod starts
        await asyncio.sleep(1)
        assert spec_hash(cluster, "news-encoder-b") == old_b, "B keeps the old ladder while A is not ready"
        assert obj(cluster, "v1/configmaps", "news-encoder-b").raw["data"]["encoder.json"] == old_config
        assert "2000000" in obj(cluster, "v1/configmaps", "news-encoder-a").raw["data"]["encoder.json"]
        assert reconciling(cluster)[:2] == ("True", "EncoderStarting")

        await roll_out(cluster, "news-encoder-a")
        ready_at = asyncio.get_running_loop().time()
        await eventually(
            lambda: spec_hash(cluster, "news-encoder-b") != old_b, timeout=5, what="encoder B rolled on A's event"
        )
        assert asyncio.get_running_loop().time() - ready_at < 5
        assert "2000000" in obj(cluster, "v1/configmaps", "news-encoder-b").raw["data"]["encoder.json"]
        assert obj(cluster, DEPLOYMENTS, "news-encoder-b").raw["metadata"]["generation"] == 2
        await roll_out(cluster, "news-packager")
        # B's controller has not acted on generation 2: its old pod still runs the old ladder
        # (progress alone: told after channel_state.STATUS_HOLD_SECONDS)
        await eventually(
            lambda: reconciling(cluster)[2].endswith("spec: news-encoder-b"), timeout=5, what="only B left to roll"
        )
        assert reconciling(cluster)[:2] == ("True", "RollingOut")

        # no version of the status at generation 2 said Reconciled before B had rolled out
        versions = [(v.raw.get("status") or {}) for v in obj(cluster, CHANNELS, "news").history if v]
        said = [
            {c["type"]: c["status"] for c in v.get("conditions", [])}.get("Reconciling")
            for v in versions
            if v.get("observedGeneration") == 2
        ]
        assert said and "False" not in said, said
        await roll_out(cluster, "news-encoder-b")
        await eventually(
            lambda: reconciling(cluster)[:2] == ("False", "Reconciled"), timeout=5, what="Reconciled once B runs it"
        )


def write_timeline(store, *, failovers: int, active: str, conditions: list[dict] | None = None) -> None:
    """What the packager writes into storage (namespace folder, as the operator configures it)."""
    from datetime import datetime, timezone

    from kubecast.media.timeline import EncoderHealth, Timeline

    now = datetime.now(timezone.utc)
    timeline = Timeline(
        channel="news",
        state="live",
        updated=now,
        segment_duration_ms=2000,
        window_ms=60000,
        active_source=active,
        failovers=failovers,
        last_failover=now if failovers else None,
        conditions=conditions or [],
        encoders={
            "A": EncoderHealth(state="waiting" if active == "B" else "live", last_segment=40, segments_taken=41),
            "B": EncoderHealth(state="live", ingest_connected=True, last_segment=44 + failovers, segments_taken=3),
        },
    )
    path = store / "media" / "channels" / "news" / "timeline.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(timeline.to_json())


async def test_stream_status_and_failover_events_come_from_the_timeline(cluster, tmp_path, monkeypatch):
    store = tmp_path / "store"
    monkeypatch.setenv("KUBECAST_STORE_URL", str(store))
    put_stream_key(cluster)
    cluster.objects[CHANNELS, "media", "news"] = channel_body()
    write_timeline(store, failovers=0, active="A")
    async with operator():
        stream = lambda: obj(cluster, CHANNELS, "news").raw.get("status", {}).get("stream")  # noqa: E731
        await eventually(lambda: (stream() or {}).get("state") == "live", what="status.stream")
        encoders = obj(cluster, CHANNELS, "news").raw["status"]["encoders"]
        assert (
            encoders["B"]["ingestConnected"] is True
            and encoders["A"]["segmentsTaken"] == 41
            and encoders["B"]["lastSegment"] == 44
        )
        # the Deployment side of the status lands next to the media side, not over it
        await eventually(
            lambda: "ready" in obj(cluster, CHANNELS, "news").raw["status"]["encoders"]["A"], what="encoder readiness"
        )
        assert "lastSegment" in obj(cluster, CHANNELS, "news").raw["status"]["encoders"]["A"]
        assert not [r for r in cluster if r.resource and r.resource.plural == "events" and "Failover" in r.text], (
            "no event for old failovers"
        )

        write_timeline(store, failovers=1, active="B")
        await eventually(lambda: (stream() or {}).get("failovers") == 1, what="the failover in status")
        assert stream()["activeEncoder"] == "B" and stream()["lastFailoverTime"]
        event = await eventually(
            lambda: [r for r in cluster if r.resource and r.resource.plural == "events" and "Failover" in r.text],
            what="a Failover event",
        )
        assert "encoder B" in event[0].data["message"] and event[0].data["type"] == "Warning"


MISALIGNED = (
    "rendition video1 is not key-frame aligned with video: segment 12 starts 40 ms away from the primary"
    " rendition's; it is not published"
)


def packager_conditions() -> list[dict]:
    """As the packager's merge sets them (its own Ready and IngestConnected included)."""
    return [
        {
            "type": "IngestConnected",
            "status": "True",
            "reason": "ContributionReceived",
            "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        },
        {
            "type": "InitSegmentsConsistent",
            "status": "True",
            "reason": "InitSegmentsMatch",
            "message": "",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        },
        {
            "type": "KeyframesAligned",
            "status": "False",
            "reason": "RenditionsMisaligned",
            "message": MISALIGNED,
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        },
        {
            "type": "Ready",
            "status": "True",
            "reason": "Live",
            "message": "segments are being published",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        },
    ]


async def test_a_misaligned_contribution_reaches_the_channel_next_to_ready(cluster, tmp_path, monkeypatch):
    store = tmp_path / "store"
    monkeypatch.setenv("KUBECAST_STORE_URL", str(store))
    put_stream_key(cluster)
    cluster.objects[CHANNELS, "media", "news"] = channel_body()
    write_timeline(store, failovers=0, active="A", conditions=packager_conditions())

    def events():
        return [r for r in cluster if r.resource and r.resource.plural == "events" and "RenditionsMisaligned" in r.text]

    async with operator():
        aligned = await eventually(
            lambda: conditions(cluster, "news")["KeyframesAligned"], what="KeyframesAligned on the Channel"
        )
        assert (
            aligned["status"] == "False"
            and aligned["reason"] == "RenditionsMisaligned"
            and "rendition video1" in aligned["message"]
        )
        assert aligned["observedGeneration"] == 1 and aligned["lastTransitionTime"]
        assert (
            "IngestConnected" not in conditions(cluster, "news")
            and conditions(cluster, "news")["InitSegmentsConsistent"]["status"] == "True"
        )
        # the Deployment side writes Ready next to it (the list is replaced whole: it must carry it)
        await eventually(lambda: obj(cluster, DEPLOYMENTS, "news-packager"), what="the packager Deployment")
        for name in ("news-encoder-a", "news-encoder-b", "news-packager"):
            await roll_out(cluster, name)
        both = await eventually(
            lambda: conditions(cluster, "news")["Ready"]["reason"] == "Redundant" and conditions(cluster, "news"),
            timeout=40,
            what="Ready=True/Redundant",
        )
        assert both["Ready"]["status"] == "True", "a misaligned rendition is withheld: the channel is still live"
        assert both["KeyframesAligned"] == aligned
        await asyncio.sleep(3)  # several stream reports later
        assert (
            conditions(cluster, "news")["Ready"]["reason"] == "Redundant"
            and conditions(cluster, "news")["KeyframesAligned"]["status"] == "False"
        )
        event = events()
        assert len(event) == 1 and event[0].data["type"] == "Warning" and "rendition video1" in event[0].data["message"]

        # a reconcile (a spec change) keeps it too, and the next report moves it to the new generation
        change = {"metadata": {"generation": 2}, "spec": channel_body(ladder_top=2_000_000)["spec"]}
        assert await as_user(cluster, "PATCH", path_of(), change) == 200
        await eventually(
            lambda: obj(cluster, CHANNELS, "news").raw.get("status", {}).get("observedGeneration") == 2,
            what="generation 2 observed",
        )
        assert conditions(cluster, "news")["KeyframesAligned"]["status"] == "False" and "Ready" in conditions(
            cluster, "news"
        )
        await eventually(
            lambda: conditions(cluster, "news")["KeyframesAligned"]["observedGeneration"] == 2,
            what="the condition at generation 2",
        )
        assert conditions(cluster, "news")["KeyframesAligned"]["lastTransitionTime"] == aligned["lastTransitionTime"], (
            "status unchanged: time kept"
        )
        assert len(events()) == 1, "announced once"
        # Once there, it stays in every later version: the writers send the whole list (a merge
        # patch), each computed under the Channel's status lock from the newest parts.
        history = [
            [c["type"] for c in ((v.raw if v else {}).get("status") or {}).get("conditions", [])]
            for v in obj(cluster, CHANNELS, "news").history
        ]
        since = next(i for i, types in enumerate(history) if "KeyframesAligned" in types)
        assert all("KeyframesAligned" in types for types in history[since:]), "\n".join(map(str, history))


async def test_a_missing_srt_passphrase_secret_is_reported_by_name(cluster):
    put_stream_key(cluster)
    body = channel_body()
    body["spec"]["ingest"].update(
        {"protocols": ["RTMP", "SRT"], "srt": {"passphraseSecretRef": {"name": "news-srt", "key": "passphrase"}}}
    )
    cluster.objects[CHANNELS, "media", "news"] = body
    async with operator():
        stalled = await eventually(
            lambda: (
                conditions(cluster, "news").get("Stalled", {}).get("status") == "True" and conditions(cluster, "news")
            ),
            what="Stalled",
        )
        assert (
            stalled["Ready"]["reason"] == "SecretMissing"
            and stalled["Ready"]["message"] == "Secret news-srt (SRT passphrase) does not exist"
        )
        assert not exists(cluster, DEPLOYMENTS, "news-encoder-a")
    # the Secret appears without that key: reported by the next reconcile (here the resume of a
    # restarted operator; on a cluster at the latest the 120 s refresh)
    cluster.objects["v1/secrets", "media", "news-srt"] = {
        "metadata": {"name": "news-srt", "namespace": "media"},
        "data": {"other": "eA=="},
    }
    async with operator():
        await eventually(
            lambda: "has no key passphrase" in conditions(cluster, "news")["Ready"]["message"], what="the missing key"
        )
        assert (
            conditions(cluster, "news")["Ready"]["message"] == "Secret news-srt (SRT passphrase) has no key passphrase"
        )
        assert "eA==" not in json.dumps(obj(cluster, CHANNELS, "news").raw)


def evening_program() -> dict:
    """The Program of the tests below: channel news with a two-hour archive window, at the locator evening-news."""
    return {
        "apiVersion": "kubecast.io/v1alpha1",
        "kind": "Program",
        "metadata": {
            "name": "evening",
            "namespace": "media",
            "uid": "uid-evening",
            "generation": 1,
            "resourceVersion": "1",
        },
        "spec": {
            "channelName": "news",
            "archiveWindow": "PT2H",
            "manifestName": "show",
            "locator": "evening-news",
            "state": "Running",
        },
    }


async def test_a_program_is_published_to_the_store_for_its_packager_and_the_endpoints(cluster, tmp_path, monkeypatch):
    store = tmp_path / "store"
    monkeypatch.setenv("KUBECAST_STORE_URL", str(store))
    put_stream_key(cluster)
    cluster.objects[CHANNELS, "media", "news"] = channel_body()
    cluster.objects[PROGRAMS, "media", "evening"] = evening_program()
    async with operator():
        program_file = store / "media" / "channels" / "news" / "programs" / "evening" / "program.json"
        locator_file = store / "media" / "locators" / "evening-news.json"
        await eventually(
            lambda: program_file.exists() and locator_file.exists(), what="the program record and its locator"
        )
        record = json.loads(program_file.read_text())
        assert (
            record["locator"] == "evening-news"
            and record["archiveWindowSeconds"] == 7200
            and record["state"] == "Running"
        )
        assert json.loads(locator_file.read_text())["name"] == "evening"


def write_program_timeline(store, *, state: str, numbers: range) -> None:
    """What the channel's packager records for the program (namespace folder, as above)."""
    timeline = one_track_timeline(numbers, state=state, video_id="hi", window_ms=7_200_000)
    path = store / "media" / "channels" / "news" / "programs" / "evening" / "timeline.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(timeline.to_json())


async def test_a_programs_recorded_range_and_state_come_from_its_timeline(cluster, tmp_path, monkeypatch, caplog):
    store = tmp_path / "store"
    monkeypatch.setenv("KUBECAST_STORE_URL", str(store))
    put_stream_key(cluster)
    cluster.objects[CHANNELS, "media", "news"] = channel_body()
    cluster.objects[PROGRAMS, "media", "evening"] = evening_program()
    recording = lambda: (obj(cluster, PROGRAMS, "evening").raw.get("status") or {}).get("recording") or {}  # noqa: E731
    async with operator():
        await eventually(lambda: recording().get("state") == "Waiting", what="Waiting before anything is recorded")
        assert recording()["segments"] == 0 and recording().get("start") is None
        # an unreadable timeline is a warning, and the last good report stays
        broken = store / "media" / "channels" / "news" / "programs" / "evening" / "timeline.json"
        broken.parent.mkdir(parents=True, exist_ok=True)
        broken.write_bytes(b"{not json")
        await eventually(lambda: "cannot read the recording of program media/evening" in caplog.text, what="a warning")
        assert recording()["state"] == "Waiting"

        write_program_timeline(store, state="live", numbers=range(30, 45))
        await eventually(lambda: recording().get("state") == "Recording", what="Recording")
        assert recording() == {
            "state": "Recording",
            "start": "2026-01-01T12:01:00Z",
            "end": "2026-01-01T12:01:30Z",
            "durationSeconds": 30,
            "segments": 15,
        }
        # the recording lands next to what reconcile_program writes, not over it
        await eventually(
            lambda: obj(cluster, PROGRAMS, "evening").raw["status"].get("conditions"), what="the Program's conditions"
        )
        assert "recording" in obj(cluster, PROGRAMS, "evening").raw["status"]

        write_program_timeline(store, state="stopped", numbers=range(30, 50))
        await eventually(lambda: recording().get("state") == "Stopped", what="Stopped")
        assert recording()["end"] == "2026-01-01T12:01:40Z" and recording()["segments"] == 20


async def test_a_missing_storage_secret_is_reported_and_clears_when_it_appears(cluster, monkeypatch):
    monkeypatch.setenv("KUBECAST_STORE_SECRET", "kubecast-store")
    put_stream_key(cluster)
    cluster.objects[CHANNELS, "media", "news"] = channel_body()
    async with operator():
        stalled = await eventually(
            lambda: (
                conditions(cluster, "news").get("Stalled", {}).get("status") == "True" and conditions(cluster, "news")
            ),
            what="Stalled",
        )
        assert stalled["Ready"]["status"] == "False" and stalled["Ready"]["reason"] == "StorageSecretMissing"
        assert stalled["Ready"]["message"].startswith(
            "Secret kubecast-store (object storage credentials) does not exist in namespace media"
        )
        assert stalled["Reconciling"]["status"] == "False", "nothing will change until the Secret exists"
        assert not exists(cluster, DEPLOYMENTS, "news-encoder-a"), (
            "no pods that would wait in CreateContainerConfigError"
        )
        # the Secret appears (kubectl create secret): found by the operator's next look, the Channel untouched
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "kubecast-store", "namespace": "media"},
            "data": {"AWS_ACCESS_KEY_ID": "eA=="},
        }
        assert await as_user(cluster, "POST", "/api/v1/namespaces/media/secrets", secret) in (200, 201)
        await eventually(
            lambda: obj(cluster, DEPLOYMENTS, "news-encoder-a"), timeout=20, what="the encoders, once the Secret exists"
        )
        cleared = await eventually(
            lambda: conditions(cluster, "news")["Stalled"]["status"] == "False" and conditions(cluster, "news"),
            what="Stalled cleared",
        )
        assert cleared["Ready"]["reason"] == "Starting"
        assert obj(cluster, DEPLOYMENTS, "news-encoder-a").raw["spec"]["template"]["spec"]["containers"][1][
            "envFrom"
        ] == [{"secretRef": {"name": "kubecast-store"}}]

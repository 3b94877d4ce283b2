"""The operator's part in the life of its resources on the kmock emulator: deletion that never
waits for an absent operator, what a deleted Channel leaves in storage, and the children it
prunes when the spec stops asking for them."""

from __future__ import annotations

import pytest
from emulator import (
    CHANNELS,
    DEPLOYMENTS,
    ENDPOINTS,
    PROGRAMS,
    as_user,
    channel_body,
    eventually,
    obj,
    operator,
    path_of,
)
from timeline_fixtures import one_track_timeline

pytestmark = pytest.mark.timeout(120)

KEY = {"metadata": {"name": "news-key", "namespace": "media"}, "data": {"streamKey": "c2VjcmV0"}}


def endpoint_body(**spec) -> dict:
    return {
        "apiVersion": "kubecast.io/v1alpha1",
        "kind": "StreamingEndpoint",
        "metadata": {
            "name": "origin",
            "namespace": "media",
            "uid": "uid-origin",
            "generation": 1,
            "resourceVersion": "1",
        },
        "spec": spec,
    }


def program_body(name: str = "evening", locator: str = "evening-news") -> dict:
    return {
        "apiVersion": "kubecast.io/v1alpha1",
        "kind": "Program",
        "metadata": {"name": name, "namespace": "media", "uid": f"uid-{name}", "generation": 1, "resourceVersion": "1"},
        "spec": {
            "channelName": "news",
            "archiveWindow": "PT2H",
            "manifestName": "show",
            "locator": locator,
            "state": "Running",
        },
    }


def gone(cluster, resource, name) -> bool:
    try:
        return cluster.objects[resource, "media", name].deleted
    except KeyError:
        return True  # never created


async def test_every_kind_is_deleted_while_the_operator_is_down(cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECAST_STORE_URL", str(tmp_path / "store"))
    cluster.objects["v1/secrets", "media", "news-key"] = KEY
    cluster.objects[CHANNELS, "media", "news"] = channel_body()
    cluster.objects[ENDPOINTS, "media", "origin"] = endpoint_body()
    cluster.objects[PROGRAMS, "media", "evening"] = program_body()
    async with operator():
        for resource, name in ((CHANNELS, "news"), (ENDPOINTS, "origin"), (PROGRAMS, "evening")):
            await eventually(
                lambda: obj(cluster, resource, name).raw.get("status", {}).get("observedGeneration") == 1,
                what=f"{name} reconciled",
            )
    finalizers = {
        name: obj(cluster, resource, name).raw["metadata"].get("finalizers")
        for resource, name in ((CHANNELS, "news"), (ENDPOINTS, "origin"), (PROGRAMS, "evening"))
    }
    assert not any(finalizers.values()), finalizers
    # the operator is gone (uninstalled, crash-looping): kubectl delete still completes
    for plural, name in (("channels", "news"), ("streamingendpoints", "origin"), ("programs", "evening")):
        assert await as_user(cluster, "DELETE", path_of(name, plural)) == 200
    for resource, name in ((CHANNELS, "news"), (ENDPOINTS, "origin"), (PROGRAMS, "evening")):
        assert gone(cluster, resource, name), f"{name} waits for a finalizer"


async def test_a_program_deleted_while_the_operator_is_down_leaves_the_store_when_it_is_back(
    cluster, tmp_path, monkeypatch
):
    store = tmp_path / "store"
    monkeypatch.setenv("KUBECAST_STORE_URL", str(store))
    cluster.objects["v1/secrets", "media", "news-key"] = KEY
    cluster.objects[CHANNELS, "media", "news"] = channel_body()
    cluster.objects[PROGRAMS, "media", "evening"] = program_body()
    cluster.objects[PROGRAMS, "media", "late"] = program_body("late", locator="late-news")
    record = lambda name: store / "media" / "channels" / "news" / "programs" / name / "program.json"  # noqa: E731
    locator = lambda name: store / "media" / "locators" / f"{name}.json"  # noqa: E731
    async with operator():
        await eventually(lambda: record("evening").exists() and record("late").exists(), what="both programs published")
        # deleted while the operator runs: it hears the deletion
        assert await as_user(cluster, "DELETE", path_of("late", "programs")) == 200
        await eventually(
            lambda: not record("late").exists() and not locator("late-news").exists(),
            what="the deleted program released",
        )
    assert await as_user(cluster, "DELETE", path_of("evening", "programs")) == 200
    assert gone(cluster, PROGRAMS, "evening")
    assert record("evening").exists(), "nobody was there to release it"
    async with operator():
        await eventually(
            lambda: not record("evening").exists() and not locator("evening-news").exists(),
            what="the orphaned program released",
        )


def store_media(store, channel: str) -> None:
    """What a Channel's encoders and packager leave in storage: two segments, a header, the
    timeline, and a program's recording that lists segment 41 only."""
    base = store / "media" / "channels" / channel
    for key in (
        "encoders/A/hi/40.m4s",
        "encoders/A/hi/41.m4s",
        "encoders/B/hi/41.m4s",
        "encoders/A/hi/init-aa.mp4",
        "encoders/A/progress.json",
        "clock/start.json",
    ):
        (base / key).parent.mkdir(parents=True, exist_ok=True)
        (base / key).write_bytes(b"x")
    recording = one_track_timeline([41], state="stopped", channel=channel, video_id="hi", window_ms=7_200_000)
    (base / "timeline.json").write_bytes(recording.model_copy(update={"channel": channel, "state": "live"}).to_json())
    for name in ("evening", "forgotten"):
        (base / "programs" / name).mkdir(parents=True, exist_ok=True)
        (base / "programs" / name / "timeline.json").write_bytes(
            recording.model_copy(update={"channel": channel}).to_json()
        )


def stored(store, channel: str) -> set[str]:
    base = store / "media" / "channels" / channel
    return {str(path.relative_to(base)) for path in base.rglob("*") if path.is_file()}


async def test_deletion_policy_delete_removes_the_media_no_existing_program_needs(cluster, tmp_path, monkeypatch):
    store = tmp_path / "store"
    monkeypatch.setenv("KUBECAST_STORE_URL", str(store))
    cluster.objects["v1/secrets", "media", "news-key"] = KEY
    doomed = channel_body()
    doomed["spec"]["deletionPolicy"] = "Delete"
    kept = channel_body()
    kept["metadata"].update(name="sports", uid="uid-sports")
    cluster.objects[CHANNELS, "media", "news"] = doomed
    cluster.objects[CHANNELS, "media", "sports"] = kept
    cluster.objects[PROGRAMS, "media", "evening"] = program_body()  # "forgotten" no longer exists
    store_media(store, "news")
    store_media(store, "sports")
    before = stored(store, "sports")
    async with operator():
        await eventually(
            lambda: obj(cluster, CHANNELS, "news").raw["metadata"].get("finalizers"),
            what="the finalizer of a Delete channel",
        )
        await eventually(
            lambda: obj(cluster, CHANNELS, "sports").raw.get("status", {}).get("observedGeneration") == 1,
            what="sports reconciled",
        )
        assert not obj(cluster, CHANNELS, "sports").raw["metadata"].get("finalizers"), (
            "Retain (the default) needs no finalizer"
        )
        await eventually(lambda: "programs/evening/program.json" in stored(store, "news"), what="the program published")
        assert await as_user(cluster, "DELETE", path_of("news")) == 200
        assert await as_user(cluster, "DELETE", path_of("sports")) == 200
        await eventually(lambda: gone(cluster, CHANNELS, "news"), what="the Delete channel gone")
        assert gone(cluster, CHANNELS, "sports")
        # what the existing Program's recording lists stays playable: its timeline, segment 41
        # of encoder A and A's header; everything else of the channel went
        assert stored(store, "news") == {
            "programs/evening/timeline.json",
            "programs/evening/program.json",
            "encoders/A/hi/41.m4s",
            "encoders/A/hi/init-aa.mp4",
        }
        assert stored(store, "sports") == before, "Retain keeps everything"
        # the encoders and the packager were deleted before the media: nothing writes it again
        assert all(gone(cluster, DEPLOYMENTS, f"news-{name}") for name in ("encoder-a", "encoder-b", "packager"))


async def test_switching_to_retain_drops_the_finalizer(cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECAST_STORE_URL", str(tmp_path / "store"))
    cluster.objects["v1/secrets", "media", "news-key"] = KEY
    body = channel_body()
    body["spec"]["deletionPolicy"] = "Delete"
    cluster.objects[CHANNELS, "media", "news"] = body
    async with operator():
        await eventually(lambda: obj(cluster, CHANNELS, "news").raw["metadata"].get("finalizers"), what="the finalizer")
        assert (
            await as_user(
                cluster, "PATCH", path_of(), {"metadata": {"generation": 2}, "spec": {"deletionPolicy": "Retain"}}
            )
            == 200
        )
        await eventually(
            lambda: not obj(cluster, CHANNELS, "news").raw["metadata"].get("finalizers"),
            what="no finalizer under Retain",
        )
    assert await as_user(cluster, "DELETE", path_of()) == 200
    assert gone(cluster, CHANNELS, "news")


SERVICES, POLICIES = "v1/services", "networking.k8s.io/v1/networkpolicies"
HPAS, INGRESSES = "autoscaling/v2/horizontalpodautoscalers", "networking.k8s.io/v1/ingresses"


async def test_relay_to_dual_push_prunes_the_relay_services_and_policy_and_nothing_else(cluster):
    cluster.objects["v1/secrets", "media", "news-key"] = KEY
    body = channel_body()
    body["spec"]["ingest"]["redundancy"] = "Relay"
    cluster.objects[CHANNELS, "media", "news"] = body
    # the same label, but not the operator's: one without an owner, one another Channel (of the same
    # name, an earlier incarnation) owns
    label = {"kubecast.io/channel": "news"}
    cluster.objects[SERVICES, "media", "news-mine"] = {
        "metadata": {"name": "news-mine", "namespace": "media", "labels": label},
        "spec": {},
    }
    cluster.objects[SERVICES, "media", "news-contribution-c"] = {
        "metadata": {
            "name": "news-contribution-c",
            "namespace": "media",
            "labels": label,
            "ownerReferences": [
                {"apiVersion": "kubecast.io/v1alpha1", "kind": "Channel", "name": "news", "uid": "uid-earlier"}
            ],
        },
        "spec": {},
    }
    async with operator():
        await eventually(
            lambda: obj(cluster, POLICIES, "news-encoders") and obj(cluster, SERVICES, "news-contribution-b"),
            what="the relay children",
        )
        assert (
            await as_user(
                cluster,
                "PATCH",
                path_of(),
                {"metadata": {"generation": 2}, "spec": {"ingest": {"redundancy": "DualPush"}}},
            )
            == 200
        )
        await eventually(
            lambda: (
                all(gone(cluster, SERVICES, f"news-contribution-{i}") for i in "ab")
                and gone(cluster, POLICIES, "news-encoders")
            ),
            what="the relay Services and NetworkPolicy pruned",
        )
        for name in ("news-ingest-a", "news-ingest-b", "news-mine", "news-contribution-c"):
            assert not gone(cluster, SERVICES, name), name
        assert not gone(cluster, DEPLOYMENTS, "news-encoder-a")


async def test_an_endpoint_prunes_its_ingress_and_autoscaler_and_takes_replicas_back(cluster):
    cluster.objects[ENDPOINTS, "media", "origin"] = endpoint_body(
        hostNames=["tv.example.com"], scaling={"minReplicas": 2, "maxReplicas": 6}
    )
    async with operator():
        await eventually(
            lambda: obj(cluster, INGRESSES, "origin") and obj(cluster, HPAS, "origin-endpoint"),
            what="the Ingress and the HPA",
        )
        assert "replicas" not in obj(cluster, DEPLOYMENTS, "origin-endpoint").raw["spec"]
        assert (
            await as_user(
                cluster,
                "PATCH",
                path_of("origin", "streamingendpoints"),
                {"metadata": {"generation": 2}, "spec": {"hostNames": None}},
            )
            == 200
        )
        await eventually(lambda: gone(cluster, INGRESSES, "origin"), what="the Ingress pruned")
        assert not gone(cluster, HPAS, "origin-endpoint")
        assert (
            await as_user(
                cluster,
                "PATCH",
                path_of("origin", "streamingendpoints"),
                {"metadata": {"generation": 3}, "spec": {"scaling": None, "replicas": 3}},
            )
            == 200
        )
        await eventually(lambda: gone(cluster, HPAS, "origin-endpoint"), what="the HPA pruned")
        await eventually(
            lambda: obj(cluster, DEPLOYMENTS, "origin-endpoint").raw["spec"].get("replicas") == 3,
            what="replicas the operator's again",
        )
        assert not gone(cluster, SERVICES, "origin") and not gone(cluster, DEPLOYMENTS, "origin-endpoint")


@pytest.mark.parametrize("watch", [["media"], []], ids=["namespaced", "clusterwide"])
async def test_replicas_find_the_peering_objects_the_chart_creates(cluster, watch):
    from test_helm import render

    peerings = [
        d
        for d in render({"replicaCount": 2, "watchNamespaces": watch})
        if d["kind"] in ("KopfPeering", "ClusterKopfPeering")
    ]
    assert [(d["kind"], d["metadata"].get("namespace")) for d in peerings] == (
        [("KopfPeering", "media")] if watch else [("ClusterKopfPeering", None)]
    )
    for peering in peerings:
        plural = "kopfpeerings" if peering["kind"] == "KopfPeering" else "clusterkopfpeerings"
        cluster.objects[f"kopf.dev/v1/{plural}", peering["metadata"].get("namespace"), peering["metadata"]["name"]] = (
            peering
        )
    cluster.objects[ENDPOINTS, "media", "origin"] = endpoint_body()
    # as main.py starts it in a pod of a two-replica Deployment: peering on, not standalone
    async with operator(namespaces=watch, clusterwide=not watch, standalone=False, peering_name="kubecast", priority=1):
        await eventually(
            lambda: obj(cluster, ENDPOINTS, "origin").raw.get("status", {}).get("observedGeneration") == 1,
            what="not paused: reconciled",
        )
        peering = cluster.objects[f"kopf.dev/v1/{plural}", peerings[0]["metadata"].get("namespace"), "kubecast"]
        assert peering.raw.get("status"), "the replica announced itself to its peers"


CONFIG_MAPS = "v1/configmaps"


async def test_an_upgraded_operator_prunes_the_endpoint_access_config_map_an_earlier_version_wrote(cluster):
    cluster.objects[ENDPOINTS, "media", "origin"] = endpoint_body()
    owner = {"apiVersion": "kubecast.io/v1alpha1", "kind": "StreamingEndpoint", "name": "origin", "controller": True}
    labels = {"app.kubernetes.io/managed-by": "kubecast-operator", "kubecast.io/endpoint": "origin"}
    for name, uid in (("origin-endpoint-access", "uid-origin"), ("origin-endpoint-other", "uid-earlier")):
        cluster.objects[CONFIG_MAPS, "media", name] = {
            "metadata": {
                "name": name,
                "namespace": "media",
                "labels": labels,
                "ownerReferences": [{**owner, "uid": uid}],
            },
            "data": {"access.json": "{}"},
        }
    async with operator():
        await eventually(lambda: gone(cluster, CONFIG_MAPS, "origin-endpoint-access"), what="the old ConfigMap pruned")
        assert obj(cluster, CONFIG_MAPS, "origin-endpoint-config")
        assert not gone(cluster, CONFIG_MAPS, "origin-endpoint-config")
        assert not gone(cluster, CONFIG_MAPS, "origin-endpoint-other"), "another owner's ConfigMap"

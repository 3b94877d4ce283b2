"""A `helm upgrade` of the operator while a Channel is live: the new operator (new image and
chart version, its environment from the re-rendered chart) resumes the Channel and an endpoint
on the kmock emulator and leaves their pods' templates as they were; a changed encoder image is
a new spec, rolled encoder A first.  And the CRDs of a newer chart reach the cluster on upgrade
when the release manages them."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml
from emulator import (
    CHANNELS,
    DEPLOYMENTS,
    ENDPOINTS,
    channel_body,
    conditions,
    eventually,
    obj,
    operator,
    put_stream_key,
    roll_out,
)

pytestmark = pytest.mark.timeout(120)

CHART = Path(__file__).parents[2] / "helm" / "kubecast"
WORKLOADS = ("news-encoder-a", "news-encoder-b", "news-packager", "origin-endpoint")


def chart_version(tmp_path: Path, version: str) -> Path:
    """The chart as a later release ships it: its own version and appVersion, the operator image of that version."""
    chart = tmp_path / f"kubecast-{version}"
    shutil.copytree(CHART, chart)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    (chart / "Chart.yaml").write_text(yaml.safe_dump({**meta, "version": version, "appVersion": version}))
    return chart


def rendered(chart: Path, values: dict[str, Any] | None = None, *, upgrade: bool = False) -> list[dict[str, Any]]:
    texts = helm.Chart.load(str(chart)).render(
        values, name="kubecast", namespace="kubecast-system", is_install=not upgrade, is_upgrade=upgrade
    )
    return [doc for text in texts.values() for doc in yaml.safe_load_all(text) if doc]


def operator_env(documents: list[dict[str, Any]]) -> dict[str, str]:
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    return {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}


def templates(cluster: Any) -> dict[str, Any]:
    return {name: obj(cluster, DEPLOYMENTS, name).raw["spec"]["template"] for name in WORKLOADS}


def applies(cluster: Any) -> int:
    return len(
        [
            r
            for r in cluster
            if r.resource
            and r.resource.plural == "deployments"
            and r.method.value == "PATCH"
            and r.subresource is None
            and r.headers.get("X-Test-Client") != "test"
        ]
    )


async def test_an_operator_upgrade_leaves_live_pods_alone_unless_their_spec_changed(cluster, tmp_path, monkeypatch):
    def run_as(documents: list[dict[str, Any]]) -> None:
        for name, value in operator_env(documents).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("KUBECAST_STORE_URL", str(tmp_path / "store"))  # a folder: no object storage in the test

    before = rendered(CHART)
    newer = chart_version(tmp_path, "0.2.0")
    after = rendered(newer, {"image": {"operator": "ghcr.io/kubecast/operator:0.2.0"}}, upgrade=True)
    assert operator_env(before) == operator_env(after), "the chart hands the operator the same settings"
    put_stream_key(cluster)
    cluster.objects[CHANNELS, "media", "news"] = channel_body()
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
        "spec": {"replicas": 1},
    }
    run_as(before)
    async with operator():
        await eventually(lambda: all(obj(cluster, DEPLOYMENTS, name) for name in WORKLOADS), what="every workload")
        for name in WORKLOADS:
            await roll_out(cluster, name)
        await eventually(
            lambda: conditions(cluster, "news")["Reconciling"]["status"] == "False", what="live and reconciled"
        )
    live, generations = (
        templates(cluster),
        {name: obj(cluster, DEPLOYMENTS, name).raw["metadata"]["generation"] for name in WORKLOADS},
    )

    run_as(after)  # the old operator pod is gone, the new one starts with the re-rendered environment
    sent = applies(cluster)
    async with operator():
        await eventually(
            lambda: applies(cluster) >= sent + len(WORKLOADS), what="the new operator re-applies every workload"
        )
        await eventually(lambda: conditions(cluster, "news")["Reconciling"]["status"] == "False", what="reconciled")
    assert templates(cluster) == live
    assert {name: obj(cluster, DEPLOYMENTS, name).raw["metadata"]["generation"] for name in WORKLOADS} == generations

    # an upgrade that does change the pods (a new encoder image) is a new spec: A first, B held
    run_as(rendered(newer, {"image": {"encoder": "ghcr.io/kubecast/encoder:0.2.0"}}, upgrade=True))
    async with operator():
        await eventually(
            lambda: templates(cluster)["news-encoder-a"] != live["news-encoder-a"], what="encoder A on the new image"
        )
        await asyncio.sleep(2)  # the rest of that reconcile (B comes right after A in it)
        assert templates(cluster)["news-encoder-b"] == live["news-encoder-b"], "B waits until A runs it"
        await roll_out(cluster, "news-encoder-a")
        await eventually(
            lambda: templates(cluster)["news-encoder-b"] != live["news-encoder-b"], timeout=5, what="encoder B follows"
        )
    images = {name: [c["image"] for c in templates(cluster)[name]["spec"]["containers"]] for name in WORKLOADS}
    assert images["news-encoder-b"] == ["ghcr.io/kubecast/encoder:0.2.0"] * 2
    assert templates(cluster)["origin-endpoint"] == live["origin-endpoint"], "the endpoint runs the packager image"


def test_a_newer_charts_crds_reach_the_cluster_on_upgrade_when_the_release_manages_them(tmp_path):
    """Helm skips crds/ on upgrade; with crds.manage the CRDs are templates, rendered (and applied) by
    every upgrade.  A newer chart with a new field: its upgrade renders that field."""
    newer = chart_version(tmp_path, "0.2.0")
    crds = [d for d in yaml.safe_load_all((newer / "crds" / "kubecast.io.yaml").read_text()) if d]
    channel = next(c for c in crds if c["spec"]["names"]["kind"] == "Channel")
    spec = channel["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    spec["newField"] = {"type": "string", "description": "a field of the newer release"}
    (newer / "crds" / "kubecast.io.yaml").write_text(yaml.safe_dump_all(crds, sort_keys=False))

    def channel_crd(documents: list[dict[str, Any]]) -> dict[str, Any] | None:
        return next(
            (
                d
                for d in documents
                if d["kind"] == "CustomResourceDefinition" and d["spec"]["names"]["kind"] == "Channel"
            ),
            None,
        )

    installed = channel_crd(rendered(CHART, {"crds": {"manage": True}}))
    upgraded = channel_crd(rendered(newer, {"crds": {"manage": True}}, upgrade=True))
    assert installed is not None and upgraded is not None
    properties = lambda crd: crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]  # noqa: E731
    assert "newField" not in properties(installed) and properties(upgraded)["newField"]["type"] == "string"
    assert upgraded["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    # without it, an upgrade renders no CRD: the documented `kubectl apply --server-side -f crds/` step is the path
    assert channel_crd(rendered(newer, upgrade=True)) is None

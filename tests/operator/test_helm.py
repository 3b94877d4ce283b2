"""The Helm chart through the real Helm engine (helm-python-sdk), the plain manifests rendered
from it, and the Argo CD health check executed in Lua."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import lupa
import pytest
import yaml

ROOT = Path(__file__).parents[2]
CHART = ROOT / "helm" / "kubecast"
NOT_IN_KUBERNETES = {
    "ClusterKopfPeering",
    "KopfPeering",
    "PodMonitor",
    "PrometheusRule",
}  # CRD kinds the official schemas do not know


def render(values=None) -> list[dict]:
    rendered = helm.Chart.load(str(CHART)).render(values, name="kubecast", namespace="kubecast-system", is_install=True)
    return [doc for text in rendered.values() for doc in yaml.safe_load_all(text) if doc]


def test_chart_lints_clean():
    report = helm.lint(str(CHART), strict=True)
    assert report["errors"] == [] and not [m for m in report["messages"] if m["severity"] >= 2], report


@pytest.mark.parametrize(
    "values",
    [
        None,
        {
            "replicaCount": 1,
            "watchNamespaces": ["media", "events"],
            "store": {"url": "gs://bucket/live", "credentialsSecret": "gcs"},
            "serviceMonitor": {"enabled": True},
            "grafanaDashboard": {"enabled": True},
            "argocd": {"healthChecks": True},
            "prometheusRule": {"enabled": True, "labels": {"release": "prometheus"}},
            "nodeSelector": {"pool": "system"},
            "tolerations": [{"key": "system", "operator": "Exists", "effect": "NoSchedule"}],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "arch", "operator": "In", "values": ["amd64"]}]}
                        ]
                    }
                }
            },
            "imagePullSecrets": ["registry"],
            "priorityClassName": "system-cluster-critical",
            "workloads": {
                "nodeSelector": {"pool": "media"},
                "tolerations": [{"key": "media", "operator": "Exists"}],
                "priorityClassName": "live",
            },
        },
    ],
    ids=["defaults", "everything-on"],
)
def test_rendered_manifests_are_valid(values):
    documents = render(values)
    kinds = {d["kind"] for d in documents}
    assert {"Deployment", "ClusterRole", "ClusterRoleBinding", "ServiceAccount"} <= kinds
    for document in documents:
        if document["kind"] not in NOT_IN_KUBERNETES:
            kubernetes_validate.validate(document, "1.30", strict=True)
    operator = next(d for d in documents if d["kind"] == "Deployment")
    args = operator["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[0] == "operator"
    pod = operator["spec"]["template"]["spec"]
    container = pod["containers"][0]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}  # kopf's, on its loop
    # alive: the metrics server's /livez, on its own thread (kubecast/operator/main.py)
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "metrics"}
    assert f"--metrics-port={ports['metrics']}" in args
    if values:
        assert "--namespace=media" in args and "--standalone" in args
        assert {"PodMonitor", "ConfigMap", "PrometheusRule"} <= kinds and not {
            "ClusterKopfPeering",
            "PodDisruptionBudget",
        } & kinds  # one replica: no PDB
        assert (
            pod["nodeSelector"] == values["nodeSelector"]
            and pod["tolerations"] == values["tolerations"]
            and pod["affinity"] == values["affinity"]
        )
        assert (
            pod["imagePullSecrets"] == [{"name": "registry"}] and pod["priorityClassName"] == "system-cluster-critical"
        )
        assert (
            next(d for d in documents if d["kind"] == "PrometheusRule")["metadata"]["labels"]["release"] == "prometheus"
        )
    else:
        assert "--standalone" not in args and "ClusterKopfPeering" in kinds
        assert not {"nodeSelector", "tolerations", "affinity", "imagePullSecrets", "priorityClassName"} & set(pod)
        pdb = next(d for d in documents if d["kind"] == "PodDisruptionBudget")
        assert pdb["spec"] == {"maxUnavailable": 1, "selector": operator["spec"]["selector"]}


def test_rbac_is_least_privilege():
    role = next(d for d in render() if d["kind"] == "ClusterRole")
    secrets = [r for r in role["rules"] if "secrets" in r["resources"]]
    assert secrets == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
    assert not any("*" in r["verbs"] or "*" in r["resources"] for r in role["rules"])
    # delete only children it prunes (and a Channel's Deployments under deletionPolicy: Delete)
    deletable = {resource for r in role["rules"] if "delete" in r["verbs"] for resource in r["resources"]}
    assert deletable == {
        "services", "deployments", "horizontalpodautoscalers", "ingresses", "networkpolicies", "configmaps"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"replicaCount": "two"}, "replicaCount"),
        ({"store": {"url": "bucket"}}, "url"),
        ({"bogus": 1}, "bogus"),
        ({"tolerations": [{"key": "a", "effect": "Sometimes"}]}, "effect"),
        ({"nodeSelector": {"pool": 1}}, "pool"),
        ({"workloads": {"affinity": {}}}, "affinity"),
        ({"imagePullSecrets": [{"name": "registry"}]}, "imagePullSecrets"),
        ({"prometheusRule": {"redundancyLostFor": "five minutes"}}, "redundancyLostFor"),
    ],
)
def test_values_schema_refuses_wrong_values(values, key):
    with pytest.raises(helm.HelmError) as raised:
        helm.Chart.load(str(CHART)).validate_schema(values)
    assert key in str(raised.value)


def test_chart_crds_are_the_generated_ones():
    assert (CHART / "crds" / "kubecast.io.yaml").read_text() == (ROOT / "crds" / "kubecast.io.yaml").read_text()


def test_plain_manifests_are_rendered_from_the_chart():
    spec = importlib.util.spec_from_file_location("render_manifests", ROOT / "scripts" / "render_manifests.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (ROOT / "deploy" / "kubecast.yaml").read_text() == module.render(), (
        "run: python scripts/render_manifests.py > deploy/kubecast.yaml"
    )


def health(obj: dict) -> dict:
    runtime = lupa.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = runtime.table_from(obj, recursive=True)
    result = runtime.execute((CHART / "files" / "health.lua").read_text())
    return {"status": result["status"], "message": result["message"]}


def condition(type_, status, reason, message=""):
    return {"type": type_, "status": status, "reason": reason, "message": message}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, "Progressing"),
        (
            {"observedGeneration": 2, "conditions": [condition("Ready", "True", "Redundant", "both encoders")]},
            "Healthy",
        ),
        (
            {
                "observedGeneration": 2,
                "conditions": [
                    condition("Ready", "False", "Starting", "waiting for encoder B"),
                    condition("Stalled", "False", "Starting"),
                ],
            },
            "Progressing",
        ),
        (
            {
                "observedGeneration": 2,
                "conditions": [
                    condition("Ready", "False", "SecretMissing", "Secret news-key does not exist"),
                    condition("Stalled", "True", "SecretMissing", "Secret news-key does not exist"),
                ],
            },
            "Degraded",
        ),
        (
            {"observedGeneration": 1, "conditions": [condition("Ready", "True", "Redundant")]},
            "Progressing",
        ),  # an old generation's Ready
        (
            {
                "observedGeneration": 2,
                "phase": "Stopped",
                "conditions": [
                    condition("Ready", "False", "Stopped", "the channel is stopped (spec.state)"),
                    condition("Reconciling", "False", "Stopped"),
                    condition("Stalled", "False", "Stopped"),
                ],
            },
            "Suspended",
        ),
        (
            {
                "observedGeneration": 2,
                "phase": "Stopping",
                "conditions": [
                    condition("Ready", "False", "Stopped", "scaling down: encoder A"),
                    condition("Reconciling", "True", "Stopping"),
                    condition("Stalled", "False", "Stopped"),
                ],
            },
            "Progressing",
        ),  # still scaling down
        (
            {
                "observedGeneration": 2,
                "phase": "Stopped",
                "conditions": [condition("Ready", "False", "Starting"), condition("Stalled", "False", "Starting")],
            },
            "Progressing",
        ),  # the phase is for people: the check reads the conditions
    ],
)
def test_argocd_health_check(status, expected):
    obj = {"metadata": {"name": "news", "generation": 2}}
    if status is not None:
        obj["status"] = status
    result = health(obj)
    assert result["status"] == expected
    if expected == "Degraded":
        assert "news-key" in result["message"]


def test_crds_upgrade_with_the_release_when_the_chart_manages_them():
    """Helm never upgrades crds/. Both paths ship the same CRDs: `kubectl apply --server-side -f
    helm/kubecast/crds/` (the default) or crds.manage=true, where they are templates that each
    `helm upgrade` applies, kept on uninstall."""
    generated = [d for d in yaml.safe_load_all((CHART / "crds" / "kubecast.io.yaml").read_text()) if d]
    assert not [d for d in render() if d["kind"] == "CustomResourceDefinition"]
    managed = [d for d in render({"crds": {"manage": True}}) if d["kind"] == "CustomResourceDefinition"]
    assert len(managed) == len(generated) == 3
    for crd, source in zip(managed, generated):
        assert crd["metadata"].pop("annotations") == {"helm.sh/resource-policy": "keep"}
        assert crd == source
        kubernetes_validate.validate(crd, "1.30", strict=True)

import json
import os

import pytest

# The operator reads this when its handlers are registered (at import): the tests want the
# Channel's stream status reported within a second, not every 30 s.
os.environ.setdefault("KUBECAST_STREAM_STATUS_INTERVAL", "1")

from apiserver import ApplyingEmulator  # noqa: E402
from emulator import CORE, CRDS, VERBS, versioned  # noqa: E402 - after the environment it reads at import

# (verb, API group, resource[/subresource]) of every request the operator sent to an emulated
# cluster during this session: test_rbac.py compares it with the chart's ClusterRole.
SENT: set[tuple[str, str, str]] = set()
_VERB = {"LIST": "list", "WATCH": "watch", "FETCH": "get", "CREATE": "create", "UPDATE": "patch", "DELETE": "delete"}


@pytest.fixture(scope="session")
def sent_to_cluster() -> set[tuple[str, str, str]]:
    return SENT


@pytest.fixture
def kmock_options(kmock_options):
    # The operator creates its children by server-side apply, as on a cluster.
    return {**kmock_options, "cls": ApplyingEmulator}


def record(kmock) -> None:
    for request in kmock:
        if request.resource is None or request.resource.plural is None or request.action is None:
            continue  # discovery (/api/v1, /apis/<group>/<version>): every authenticated client may
        if request.headers.get("X-Test-Client") == "test":
            continue  # the test itself, acting as a user
        verb = "update" if request.method.value == "PUT" else _VERB[request.action.value]
        plural = request.resource.plural + (f"/{request.subresource}" if request.subresource else "")
        SENT.add((verb, request.resource.group or "", plural))
        if request.id in kmock.applied_creates:  # authorized as a create too
            SENT.add(("create", request.resource.group or "", plural))


def _parse_path(parse):
    """kmock 0.8 reads ``/api/v1/namespaces`` (the cluster-scoped list kopf watches in cluster-wide
    mode) as a namespaced path with no namespace and fails; everything else goes to its parser."""

    def parse_path(path: str):
        if path.rstrip("/") == "/api/v1/namespaces":
            return parse("/api/v1/namespaces/-").__class__("", "v1", "namespaces", None, None, None)
        return parse(path)

    return parse_path


@pytest.fixture
def cluster(kmock, tmp_path, monkeypatch):
    from kmock._internal import parsing

    monkeypatch.setattr(parsing, "parse_path", _parse_path(parsing.parse_path))
    monkeypatch.setattr(ApplyingEmulator, "_handle", versioned(ApplyingEmulator._handle))
    for resource, (kind, namespaced) in CORE.items():
        kmock.resources[resource] = {"kind": kind, "namespaced": namespaced, "verbs": VERBS}
    # kopf lists the namespaces and serves only those that exist
    kmock.objects["v1/namespaces", None, "media"] = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "media"},
    }
    for plural, kind in CRDS:
        kmock.resources[f"kubecast.io/v1alpha1/{plural}"] = {
            "kind": kind,
            "namespaced": True,
            "subresources": ["status"],
            "verbs": VERBS,
        }
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "kmock",
        "clusters": [{"name": "kmock", "cluster": {"server": str(kmock.url).rstrip("/")}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "tester"}}],
        "users": [{"name": "tester", "user": {"token": "test-token"}}],
    }
    (tmp_path / "kubeconfig").write_text(json.dumps(kubeconfig))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECAST_STORE_URL", "s3://media/live")
    yield kmock
    record(kmock)

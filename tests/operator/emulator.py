"""What the kmock tests of the operator share: the emulated cluster's resource names, a Channel,
the operator as a background task, and bounded waits."""

from __future__ import annotations

import asyncio
import contextlib

import kopf

import kubecast.operator.handlers  # noqa: F401 - registers the handlers in kopf's default registry

CHANNELS = "kubecast.io/v1alpha1/channels"
ENDPOINTS = "kubecast.io/v1alpha1/streamingendpoints"
PROGRAMS = "kubecast.io/v1alpha1/programs"
DEPLOYMENTS = "apps/v1/deployments"


def channel_body(ladder_top: int = 3_000_000, key_secret: str = "news-key") -> dict:
    return {
        "apiVersion": "kubecast.io/v1alpha1", "kind": "Channel",
        "metadata": {"name": "news", "namespace": "media", "uid": "uid-news", "generation": 1, "resourceVersion": "1"},
        "spec": {"ingest": {"streamKeySecretRef": {"name": key_secret, "key": "streamKey"}},
                 "encoding": {"preset": "Custom", "renditions": [{"name": "hi", "width": 1280, "height": 720, "bitrate": ladder_top}]}},
    }


# The emulator's discovery lists only what it is told: the core kinds kopf looks for, the
# kinds the operator creates, and our CRDs.
CORE = {
    "v1/namespaces": ("Namespace", False), "v1/events": ("Event", True), "v1/secrets": ("Secret", True),
    "v1/configmaps": ("ConfigMap", True), "v1/services": ("Service", True), "apps/v1/deployments": ("Deployment", True),
    "policy/v1/poddisruptionbudgets": ("PodDisruptionBudget", True), "autoscaling/v2/horizontalpodautoscalers": ("HorizontalPodAutoscaler", True),
    "networking.k8s.io/v1/ingresses": ("Ingress", True), "networking.k8s.io/v1/networkpolicies": ("NetworkPolicy", True),
    "apiextensions.k8s.io/v1/customresourcedefinitions": ("CustomResourceDefinition", False),
    "kopf.dev/v1/kopfpeerings": ("KopfPeering", True), "kopf.dev/v1/clusterkopfpeerings": ("ClusterKopfPeering", False),
}
VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]
CRDS = (("channels", "Channel"), ("programs", "Program"), ("streamingendpoints", "StreamingEndpoint"))


@contextlib.asynccontextmanager
async def operator(**options):
    """The operator as a background task (kopf.operator with stop and ready flags), always stopped;
    standalone in namespace media unless ``options`` (kopf.operator's) say otherwise."""
    settings = kopf.OperatorSettings()
    settings.watching.server_timeout = 10
    stop, ready = asyncio.Event(), asyncio.Event()
    options = {"namespaces": ["media"], "standalone": True, **options}
    task = asyncio.create_task(kopf.operator(settings=settings, stop_flag=stop, ready_flag=ready, **options))
    try:
        await asyncio.wait_for(ready.wait(), 30)
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def eventually(predicate, *, timeout: float = 30, what: str = "condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            result = predicate()
        except KeyError:
            result = None
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout}s")
        await asyncio.sleep(0.1)


def obj(cluster, resource, name):
    return cluster.objects[resource, "media", name]


def conditions(cluster, name, resource=CHANNELS):
    return {c["type"]: c for c in (obj(cluster, resource, name).get("status") or {}).get("conditions", [])}




async def as_user(cluster, method: str, path: str, body: dict | None = None) -> int:
    """A request of a user (kubectl), marked so that the RBAC comparison leaves it out;
    ``path`` under the emulator's URL, a merge patch for PATCH.  Returns the HTTP status."""
    import aiohttp

    headers = {"X-Test-Client": "test", "Content-Type": "application/merge-patch+json"}
    async with aiohttp.ClientSession() as session:
        async with session.request(method, f"{str(cluster.url).rstrip('/')}{path}", json=body, headers=headers) as response:
            return response.status


def path_of(name: str = "news", plural: str = "channels") -> str:
    return f"/apis/kubecast.io/v1alpha1/namespaces/media/{plural}/{name}"


def exists(cluster, resource: str, name: str) -> bool:
    """Whether the object is stored and not deleted.  (Not ``key in cluster.objects``: kmock
    0.8 compares a string resource with its parsed keys there, so that is always False.)"""
    try:
        return not cluster.objects[resource, "media", name].deleted
    except KeyError:
        return False

"""What the kmock tests of the operator share: the emulated cluster's resource names, a Channel,
the operator as a background task, and bounded waits."""

from __future__ import annotations

import asyncio
import contextlib
import itertools

import kopf

import kubecast.operator.handlers  # noqa: F401 - registers the handlers in kopf's default registry

CHANNELS = "kubecast.io/v1alpha1/channels"
ENDPOINTS = "kubecast.io/v1alpha1/streamingendpoints"
PROGRAMS = "kubecast.io/v1alpha1/programs"
DEPLOYMENTS = "apps/v1/deployments"


def put_stream_key(cluster) -> None:
    """The Secret ``news-key`` that channel_body()'s stream key refers to, in namespace media."""
    cluster.objects["v1/secrets", "media", "news-key"] = {
        "metadata": {"name": "news-key", "namespace": "media"},
        "data": {"streamKey": "c2VjcmV0"},
    }


def channel_body(ladder_top: int = 3_000_000, key_secret: str = "news-key") -> dict:
    return {
        "apiVersion": "kubecast.io/v1alpha1",
        "kind": "Channel",
        "metadata": {"name": "news", "namespace": "media", "uid": "uid-news", "generation": 1, "resourceVersion": "1"},
        "spec": {
            "ingest": {"streamKeySecretRef": {"name": key_secret, "key": "streamKey"}},
            "encoding": {
                "preset": "Custom",
                "renditions": [{"name": "hi", "width": 1280, "height": 720, "bitrate": ladder_top}],
            },
        },
    }


# The emulator's discovery lists only what it is told: the core kinds kopf looks for, the
# kinds the operator creates, and our CRDs.
CORE = {
    "v1/namespaces": ("Namespace", False),
    "v1/events": ("Event", True),
    "v1/secrets": ("Secret", True),
    "v1/configmaps": ("ConfigMap", True),
    "v1/services": ("Service", True),
    "apps/v1/deployments": ("Deployment", True),
    "policy/v1/poddisruptionbudgets": ("PodDisruptionBudget", True),
    "autoscaling/v2/horizontalpodautoscalers": ("HorizontalPodAutoscaler", True),
    "networking.k8s.io/v1/ingresses": ("Ingress", True),
    "networking.k8s.io/v1/networkpolicies": ("NetworkPolicy", True),
    "apiextensions.k8s.io/v1/customresourcedefinitions": ("CustomResourceDefinition", False),
    "kopf.dev/v1/kopfpeerings": ("KopfPeering", True),
    "kopf.dev/v1/clusterkopfpeerings": ("ClusterKopfPeering", False),
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
        async with session.request(
            method, f"{str(cluster.url).rstrip('/')}{path}", json=body, headers=headers
        ) as response:
            return response.status


def path_of(name: str = "news", plural: str = "channels") -> str:
    return f"/apis/kubecast.io/v1alpha1/namespaces/media/{plural}/{name}"


def versioned(handle):
    """kmock's request handler with two things of the API server that rollouts depend on, set in the
    write itself so that every watch event carries them:

    - ``metadata.resourceVersion`` from one counter bumped on every write (kmock keeps what it was
      given, so kopf cannot tell its own writes' echoes from news and re-runs handlers on them);
    - ``metadata.generation``: 1 when an object with a spec is created, one more on each write that
      changes the spec (not on status or metadata writes).  A write that sets the generation
      itself (the tests' spec changes of a Channel) keeps it."""
    counter = itertools.count(1000)

    async def handle_versioned(self, request):
        from kmock._internal import dicts, enums, k8s

        data = request.data if isinstance(request.data, dict) else None
        writes = (enums.action.CREATE, enums.action.UPDATE)
        if data is not None and request.resource is not None and request.action in writes:
            meta = data.setdefault("metadata", {})
            meta["resourceVersion"] = str(next(counter))
        if isinstance(request.data, list) and request.action == enums.action.UPDATE and request.name is not None:
            # A JSON patch (kopf's finalizers) tests the resourceVersion: a stale one is refused with 422,
            # which kopf answers by trying again with a fresh body (kmock would apply it or fail with 500).
            current = (_stored(self, request) or {}).get("metadata", {}).get("resourceVersion")
            for op in request.data:
                tests_version = op.get("op") == "test" and op.get("path") == "/metadata/resourceVersion"
                if tests_version and op.get("value") != current:
                    raise k8s.KubernetesError(status=422, reason="Invalid", message="the object has been modified")
            request.data.append({"op": "add", "path": "/metadata/resourceVersion", "value": str(next(counter))})
        if data is not None and request.resource is not None and request.subresource is None:
            meta = data.setdefault("metadata", {})
            if request.action == enums.action.CREATE and "spec" in data:
                meta.setdefault("generation", 1)
            elif request.action == enums.action.UPDATE and request.name is not None and "generation" not in meta:
                current = _stored(self, request)
                if current is None and "spec" in data:  # a server-side apply that creates
                    meta["generation"] = 1
                elif current is not None and dicts.patch_dict(current, data).get("spec") != current.get("spec"):
                    meta["generation"] = (current.get("metadata", {}).get("generation") or 1) + 1
        return await handle(self, request)

    return handle_versioned


def _stored(emulator, request) -> dict | None:
    try:
        stored = emulator.objects[request.resource, request.namespace, request.name]
    except KeyError:
        return None
    return None if stored.deleted else stored.raw


async def roll_out(cluster, name: str, *, ready: int = 1) -> None:
    """What the Deployment controller reports once it has acted on the Deployment's current
    generation (``ready``: ready pods of its one replica), sent through the API so that the
    operator's watch sees it, as it would on a cluster."""
    generation = obj(cluster, DEPLOYMENTS, name).raw["metadata"]["generation"]
    status = {
        "observedGeneration": generation,
        "replicas": 1,
        "updatedReplicas": 1,
        "readyReplicas": ready,
        "availableReplicas": ready,
    }
    path = f"/apis/apps/v1/namespaces/media/deployments/{name}/status"
    assert await as_user(cluster, "PATCH", path, {"status": status}) == 200


def exists(cluster, resource: str, name: str) -> bool:
    """Whether the object is stored and not deleted.  (Not ``key in cluster.objects``: kmock
    0.8 compares a string resource with its parsed keys there, so that is always False.)"""
    try:
        return not cluster.objects[resource, "media", name].deleted
    except KeyError:
        return False

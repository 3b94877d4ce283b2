"""kmock's Kubernetes emulator, taught what the operator's client relies on: a server-side apply
(a PATCH with ``application/apply-patch+yaml``) of an object that does not exist creates it, as
the API server does.  The API server authorizes such an apply as ``create`` too, so the requests
that created an object are kept (``applied_creates``) for the RBAC comparison."""

from __future__ import annotations

import asyncio
import collections
import copy
import dataclasses
import datetime
import itertools
import json
from typing import Any

import attrs
import kmock
from aiohttp import web
from aiohttp.web import StreamResponse
from kmock._internal import enums, rendering

APPLY = "application/apply-patch+yaml"


@attrs.define(kw_only=True)
class ApplyingEmulator(kmock.KubernetesEmulator):
    applied_creates: set[int] = attrs.field(factory=set, init=False)  # ids of the requests

    def _absent(self, request: rendering.Request) -> bool:
        try:
            return bool(self.objects[request.resource, request.namespace, request.name].deleted)
        except KeyError:
            return True

    async def _handle(self, request: rendering.Request) -> StreamResponse:
        applying = (
            request.action == enums.action.UPDATE
            and request.subresource is None
            and request.name is not None
            and request.headers.get("Content-Type", "").startswith(APPLY)
        )
        if applying and self._absent(request):
            # Created here as kmock creates on a POST; the apply then patches it with the same body.
            self.applied_creates.add(request.id)
            key = (request.resource, request.namespace, request.name)
            async with self._lock:
                if key in self._objects:  # deleted: created anew, as kmock does
                    self._objects[key].create(request.data)
                else:
                    self._objects[key] = request.data
                await self._buses[request.resource].put({"type": "ADDED", "object": self._objects[key].last.raw})
        return await super()._handle(request)


Json = dict[str, Any]
ResourceKey = tuple[str, str, str]  # group, version, plural
_VERBS = {"LIST": "list", "WATCH": "watch", "FETCH": "get", "CREATE": "create", "UPDATE": "patch", "DELETE": "delete"}


def _merge(target: Json, patch: Json) -> Json:
    """RFC 7386 JSON merge patch of ``patch`` into a copy of ``target``."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _selected(labels: dict[str, str], selector: str) -> bool:
    """Whether ``labels`` match a label selector of equality and existence terms."""
    for term in filter(None, (part.strip() for part in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


@dataclasses.dataclass
class _Watcher:
    namespace: str | None
    selector: str
    queue: asyncio.Queue[bytes | None]


@attrs.define(kw_only=True)
class ScaleEmulator(kmock.KubernetesEmulator):
    """An emulator for measuring an operator at scale, which behaves as the API server does where
    an operator's request count depends on it (kmock's own store scans every object on every
    request and never changes ``resourceVersion``, so kopf sees each of its own writes as news):

    - one global ``resourceVersion``, bumped by every write that changes an object, and sent with
      its watch event; a write that changes nothing changes no version and sends no event;
    - ``metadata.generation`` bumped when ``spec`` changes; a ``uid`` and ``generation`` on create;
    - objects found by (resource, namespace, name) in a dict, lists by namespace;
    - ``generateName``; a server-side apply of a missing object creates it;
    - the status subresource kept apart: a write to the object ignores ``status``, a write to
      ``/status`` changes only ``status``;
    - watches from a ``resourceVersion`` (the events after it are replayed), label selectors;
    - deletion with finalizers (``deletionTimestamp``) and preconditions on ``uid``;
    - the Deployment controller's part: a Deployment is reported ready (its ``observedGeneration``
      caught up) right after each change of its spec.

    Discovery, the HTTP server and request parsing stay kmock's.  Owner references are not
    garbage-collected and nothing is validated.  ``counts`` tells the requests by (verb, resource),
    ``creates_by_apply`` how many of the applies created their object.
    """

    counts: collections.Counter[tuple[str, str]] = attrs.field(factory=collections.Counter, init=False)
    creates_by_apply: collections.Counter[str] = attrs.field(factory=collections.Counter, init=False)
    revision: int = attrs.field(default=0, init=False)
    _store: dict[tuple[ResourceKey, str | None], dict[str, Json]] = attrs.field(factory=dict, init=False)
    _log: dict[ResourceKey, collections.deque[tuple[int, str | None, Json, bytes]]] = attrs.field(
        factory=dict, init=False
    )
    _watchers: dict[ResourceKey, list[_Watcher]] = attrs.field(factory=dict, init=False)
    _uids: itertools.count[int] = attrs.field(factory=itertools.count, init=False)
    _apart: dict[ResourceKey, bool] = attrs.field(factory=dict, init=False)

    def put(self, resource: str, namespace: str | None, body: Json) -> Json:
        """Store an object as a create would (for setting up a benchmark)."""
        group_version, plural = resource.rsplit("/", 1)
        group, version = group_version.rsplit("/", 1) if "/" in group_version else ("", group_version)
        return self._create((group, version, plural), namespace, body)

    def get_object(self, resource: ResourceKey, namespace: str | None, name: str) -> Json | None:
        return self._store.get((resource, namespace), {}).get(name)

    def _status_apart(self, resource: ResourceKey) -> bool:
        if resource not in self._apart:
            self._apart[resource] = any(
                "status" in self.resources[declared].subresources
                for declared in self.resources
                if (declared.group, declared.version, declared.plural) == resource
            )
        return self._apart[resource]

    def _publish(self, resource: ResourceKey, kind: str, obj: Json) -> None:
        line = json.dumps({"type": kind, "object": obj}).encode() + b"\n"
        meta = obj["metadata"]
        log = self._log.setdefault(resource, collections.deque(maxlen=100_000))
        log.append((self.revision, meta.get("namespace"), meta.get("labels") or {}, line))
        for watcher in self._watchers.get(resource, []):
            if watcher.namespace in (None, meta.get("namespace")) and _selected(
                meta.get("labels") or {}, watcher.selector
            ):
                watcher.queue.put_nowait(line)

    def _bump(self, obj: Json) -> None:
        self.revision += 1
        obj["metadata"]["resourceVersion"] = str(self.revision)

    def _create(self, resource: ResourceKey, namespace: str | None, body: Json) -> Json:
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{next(self._uids):06x}"
        objects = self._store.setdefault((resource, namespace), {})
        if meta.get("name") in objects:
            raise kmock.KubernetesError(
                status=409, reason="AlreadyExists", message=f"{meta.get('name')} already exists"
            )
        if namespace is not None:
            meta["namespace"] = namespace
        meta.update(
            {
                "uid": f"uid-{next(self._uids)}",
                "generation": 1,
                "creationTimestamp": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
        if self._status_apart(resource):
            obj.pop("status", None)
        self._bump(obj)
        objects[meta["name"]] = obj
        self._publish(resource, "ADDED", obj)
        self._after_write(resource, None, obj)
        return obj

    def _update(self, resource: ResourceKey, namespace: str | None, old: Json, new: Json) -> Json:
        if new == old:
            return old  # no change: no new version, no event, as the API server does
        meta = new["metadata"]
        if new.get("spec") != old.get("spec"):
            meta["generation"] = int(old["metadata"].get("generation") or 0) + 1
        self._bump(new)
        objects = self._store[(resource, namespace)]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            del objects[meta["name"]]
            self._publish(resource, "DELETED", new)
        else:
            objects[meta["name"]] = new
            self._publish(resource, "MODIFIED", new)
            self._after_write(resource, old, new)
        return new

    def _after_write(self, resource: ResourceKey, old: Json | None, new: Json) -> None:
        """The Deployment controller: ready at once with the newest generation."""
        if resource != ("apps", "v1", "deployments"):
            return
        generation = new["metadata"]["generation"]
        if old is not None and old["metadata"].get("generation") == generation:
            return
        meta = new["metadata"]
        status = {
            "observedGeneration": generation,
            "replicas": 1,
            "updatedReplicas": 1,
            "readyReplicas": 1,
            "availableReplicas": 1,
        }
        asyncio.get_running_loop().call_soon(self._set_status, resource, meta.get("namespace"), meta["name"], status)

    def _set_status(self, resource: ResourceKey, namespace: str | None, name: str, status: Json) -> None:
        old = self.get_object(resource, namespace, name)
        if old is not None:
            self._update(resource, namespace, old, {**copy.deepcopy(old), "status": status})

    async def _handle(self, request: rendering.Request) -> StreamResponse:
        if request.resource is None or request.resource.plural is None or request.action is None:
            return await super()._handle(request)  # discovery: kmock's
        resource: ResourceKey = (
            request.resource.group or "",
            request.resource.version or "",
            request.resource.plural or "",
        )
        plural = resource[2] + (f"/{request.subresource}" if request.subresource else "")
        self.counts[_VERBS[request.action.value], plural] += 1
        try:
            if request.action == enums.action.WATCH:
                return await self._watch(request, resource)
            return web.json_response(self._serve(request, resource))
        except kmock.KubernetesError as error:
            return web.json_response(
                {
                    "apiVersion": "v1",
                    "kind": "Status",
                    "status": "Failure",
                    "code": error.status,
                    "reason": error.reason,
                    "message": error.message,
                },
                status=error.status,
            )

    def _serve(self, request: rendering.Request, resource: ResourceKey) -> Json:
        namespace, name = request.namespace, request.name
        if request.action == enums.action.LIST:
            selector = request.params.get("labelSelector", "")
            spaces = [
                objects
                for (key, space), objects in self._store.items()
                if key == resource and namespace in (None, space)
            ]
            items = [
                obj
                for objects in spaces
                for obj in objects.values()
                if _selected(obj["metadata"].get("labels") or {}, selector)
            ]
            return {
                "apiVersion": "v1",
                "kind": "List",
                "metadata": {"resourceVersion": str(self.revision)},
                "items": items,
            }
        if request.action == enums.action.CREATE:
            return self._create(resource, namespace, request.data or {})
        assert name is not None
        old = self.get_object(resource, namespace, name)
        if (
            request.action == enums.action.UPDATE
            and old is None
            and request.headers.get("Content-Type", "").startswith(APPLY)
        ):
            self.creates_by_apply[resource[2]] += 1  # counted as a patch above; authorized as a create too
            return self._create(resource, namespace, request.data or {})
        if old is None:
            raise kmock.KubernetesError(status=404, reason="NotFound", message=f"{resource[2]} {name} not found")
        if request.action == enums.action.FETCH:
            return old
        if request.action == enums.action.UPDATE:
            patch = dict(request.data or {})
            if request.subresource == "status":
                patch = {"status": patch.get("status")}
            elif self._status_apart(resource):
                patch.pop("status", None)
            return self._update(resource, namespace, old, _merge(old, patch))
        if request.action == enums.action.DELETE:
            wanted = ((request.data or {}).get("preconditions") or {}).get("uid")
            if wanted is not None and wanted != old["metadata"]["uid"]:
                raise kmock.KubernetesError(status=409, reason="Conflict", message="uid precondition failed")
            deleted = copy.deepcopy(old)
            deleted["metadata"]["deletionTimestamp"] = deleted["metadata"].get(
                "deletionTimestamp"
            ) or datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            return self._update(resource, namespace, old, deleted)
        raise kmock.KubernetesError(status=405, reason="MethodNotAllowed", message=str(request.method))

    async def _watch(self, request: rendering.Request, resource: ResourceKey) -> StreamResponse:
        since = int(request.params.get("resourceVersion") or self.revision)
        watcher = _Watcher(request.namespace, request.params.get("labelSelector", ""), asyncio.Queue())
        raw = request._raw_request  # noqa: SLF001 - the stream is written here, not by kmock's renderer
        assert raw is not None
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(raw)
        for revision, namespace, labels, line in list(self._log.get(resource, ())):
            if revision > since and watcher.namespace in (None, namespace) and _selected(labels, watcher.selector):
                await response.write(line)
        self._watchers.setdefault(resource, []).append(watcher)
        timeout = float(request.params.get("timeoutSeconds") or 0) or None
        try:
            async with asyncio.timeout(timeout):
                while (line := await watcher.queue.get()) is not None:
                    await response.write(line)
        except (TimeoutError, ConnectionError):
            pass
        finally:
            self._watchers[resource].remove(watcher)
        return response

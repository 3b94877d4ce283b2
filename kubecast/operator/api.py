"""The operator's Kubernetes client: kubernetes_asyncio's dynamic client, logged in as kopf is.

kopf owns the watching; creating and patching children needs a client of our own.  It is built
from the very ``ConnectionInfo`` kopf logged in with (service account in a pod, kubeconfig
outside), so there is one source of credentials, and kopf's re-login after a 401 builds a new one.

Why kubernetes_asyncio rather than lightkube or kr8s: it runs on aiohttp, as kopf does (one HTTP
stack and event loop, no second connection library); its dynamic client finds each kind's
resource by API discovery (no table of plurals here, and CRDs resolve like built-in kinds); its
models are generated from the API server's OpenAPI (typed resources, the same generator as the
official client it replaces); and its errors carry the API server's ``Status`` (kind, reason,
the causes of an apply conflict).  Retries stay kopf's: a handler that raises is retried with
backoff, and a failed periodic round runs again at the next interval.

Children are applied with server-side apply (field manager ``kubecast``, forced: the operator
owns what it builds), which is idempotent and leaves alone fields that other controllers own,
such as an HPA's replicas.  Answers come back as plain dicts, as the pure builders and
aggregators expect them.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Awaitable
from typing import Any

import aiohttp
import kopf
from kubernetes_asyncio.client import ApiClient, Configuration
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.dynamic import DynamicClient, LazyDiscoverer
from kubernetes_asyncio.dynamic.exceptions import ConflictError, NotFoundError, api_exception
from kubernetes_asyncio.dynamic.resource import Resource

Json = dict[str, Any]
FIELD_MANAGER = "kubecast"
# How long the server may take to accept a connection and to send each part of its answer; not a
# total, which would also count the wait for one of the pool's 100 connections: in a burst (1000
# Channels at start-up) requests wait their turn rather than time out while the server is fine.
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=30)
# Bound on one kind's discovery (the library's discovery requests have no timeout of their own).
DISCOVERY_TIMEOUT = 60.0
_RAW: Json = {"serialize": False, "_request_timeout": TIMEOUT}  # every request: see _answer
# What a failed request raises (the dynamic client's subclasses by status: NotFoundError,
# ConflictError, ...); ``status`` is the HTTP status and ``body`` the server's Status.
ApiError = ApiException


class _Discovery(LazyDiscoverer):
    """Discovery kept in memory: the library would write it to a file under /tmp shared by every
    process that talks to the same server (and the operator's root filesystem may be read-only).
    Each kind's group version is asked once, when the kind is first used."""

    # A path that cannot exist (a file below /dev/null), so no earlier process's cache is read.
    NO_FILE = os.path.join(os.devnull, "kubecast-discovery")

    def __init__(self, client: DynamicClient, cache_file: str | None) -> None:
        super().__init__(client, self.NO_FILE)  # type: ignore[no-untyped-call]  # the library's is untyped

    def _write_cache(self) -> None:
        pass


async def _answer(sent: Awaitable[aiohttp.ClientResponse]) -> Json:
    """The answer to a request of the dynamic client as the server sent it (the library would wrap
    it in attribute-access objects), or the library's error for its status.  Asked for unwrapped,
    the dynamic client hands over the response without checking its status: done here."""
    response = await sent
    async with response:
        body = await response.read()
        if response.status >= 400:
            error = ApiException(status=response.status, reason=response.reason)
            error.body, error.headers = body, response.headers
            raise api_exception(error)
    answer: Json = json.loads(body) if body else {}
    return answer


class KubeApi:
    """get, list, delete, apply and patch status: all the operator sends beyond kopf's own requests."""

    def __init__(
        self,
        configuration: Configuration,
        files: tempfile.TemporaryDirectory[str] | None = None,
        *,
        trust_env: bool = False,
    ) -> None:
        self._configuration = configuration
        self._trust_env = trust_env
        self._files = files  # certificate data kopf had in memory, written for the TLS library
        self._api_client: ApiClient | None = None
        self._dynamic: DynamicClient | None = None
        self._resources: dict[tuple[str, str], Resource] = {}
        self._discovering = asyncio.Lock()
        self._resolving: dict[tuple[str, str], asyncio.Future[Resource]] = {}

    @classmethod
    def from_connection_info(cls, info: kopf.ConnectionInfo) -> KubeApi:
        if info.username or info.password:
            raise ValueError("basic authentication is not supported: log in with a token or a client certificate")
        configuration = Configuration(host=info.server.rstrip("/"))
        files = None

        def path(
            value: str | bytes | os.PathLike[str] | os.PathLike[bytes] | None, data: str | bytes | None, name: str
        ) -> str | None:
            nonlocal files
            if value is not None:
                return os.fsdecode(value)
            if data is None:
                return None
            if files is None:
                files = tempfile.TemporaryDirectory(prefix="kubecast-operator-")
            target = os.path.join(files.name, name)
            with open(target, "wb") as handle:
                handle.write(data.encode() if isinstance(data, str) else data)
            return target

        configuration.ssl_ca_cert = path(info.ca_path, info.ca_data, "ca.crt")
        configuration.cert_file = path(info.certificate_path, info.certificate_data, "client.crt")
        configuration.key_file = path(info.private_key_path, info.private_key_data, "client.key")
        configuration.verify_ssl = not info.insecure
        if info.token:
            configuration.api_key = {"BearerToken": info.token}
            configuration.api_key_prefix = {"BearerToken": info.scheme or "Bearer"}
        if info.proxy_url:
            configuration.proxy = info.proxy_url
        return cls(configuration, files, trust_env=info.trust_env)

    async def close(self) -> None:
        if self._api_client is not None:
            await self._api_client.close()
            self._api_client, self._dynamic = None, None
        if self._files is not None:
            self._files.cleanup()
            self._files = None

    async def _resource(self, api_version: str, kind: str) -> Resource:
        key = (api_version, kind)
        found = self._resources.get(key) if self._dynamic is not None else None
        if found is not None:
            return found
        # Every caller that needs a kind not yet discovered awaits one shared discovery of it.  Not
        # a lock they queue on: a lock wakes its waiters one per turn of the event loop, and at
        # start-up ~1000 reconciles want each kind at once, so each kind's discovery held them
        # for ~1000 turns (with ~10000 tasks a turn is slow): 1000 Channels sat minutes without a
        # single status (bench/operator_scale.py; tests/operator/test_api_client.py).  A shared
        # future wakes all of them in one turn.  Shielded, as one caller's cancellation (a kopf
        # handler timing out) must not cancel the discovery the others wait for.
        pending = self._resolving.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._discover(key))
            self._resolving[key] = pending
            pending.add_done_callback(lambda _: self._resolving.pop(key, None))  # a failure is tried again
        return await asyncio.shield(pending)

    async def _discover(self, key: tuple[str, str]) -> Resource:
        # One discovery at a time (the library's discoverer mutates its cache as it goes), bounded:
        # the library sends discovery requests without any timeout, and one the server never answers
        # would leave every request for that kind waiting.  A timeout fails only this round's callers
        # (kopf retries their handlers); the next caller discovers again.
        async with self._discovering:
            return await asyncio.wait_for(self._discover_unbounded(key), DISCOVERY_TIMEOUT)

    async def _discover_unbounded(self, key: tuple[str, str]) -> Resource:
        if self._dynamic is None:  # the first request, or one after close() (a handler still finishing)
            if self._api_client is None:  # else kept from a round that timed out
                self._api_client = ApiClient(configuration=self._configuration)
            # kubernetes_asyncio's session always trusts the environment, and aiohttp then
            # looks for ~/.netrc and the proxy variables in a thread for every request: two
            # thread hand-offs per request, the largest single cost of the operator's start-up
            # at 1000 Channels (profiled).  Whether to trust the environment is kopf's setting
            # (settings.networking.trust_env, off by default), as the credentials are.
            self._api_client.rest_client.pool_manager._trust_env = self._trust_env
            self._dynamic = await DynamicClient(self._api_client, discoverer=_Discovery)
            self._resources.clear()
        found = self._resources.get(key)
        if found is None:
            api_version, kind = key
            found = self._resources[key] = await self._dynamic.resources.get(api_version=api_version, kind=kind)
        return found

    @property
    def _client(self) -> DynamicClient:
        assert self._dynamic is not None  # set by the _resource() call that every request makes first
        return self._dynamic

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> Json | None:
        resource = await self._resource(api_version, kind)
        try:
            return await _answer(self._client.get(resource, name=name, namespace=namespace, **_RAW))
        except NotFoundError:
            return None

    async def list(
        self, api_version: str, kind: str, namespace: str, *, label_selector: str | None = None
    ) -> list[Json]:
        resource = await self._resource(api_version, kind)
        answer = await _answer(self._client.get(resource, namespace=namespace, label_selector=label_selector, **_RAW))
        items: list[Json] = answer.get("items") or []
        return items

    async def delete(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        *,
        uid: str | None = None,
        propagation: str = "Background",
    ) -> None:
        """Delete one object (gone already is fine); ``uid`` as a precondition, so that a newer object
        of the same name is never the one deleted."""
        options: Json = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        if uid is not None:
            options["preconditions"] = {"uid": uid}
        resource = await self._resource(api_version, kind)
        try:
            await _answer(self._client.delete(resource, name=name, namespace=namespace, body=options, **_RAW))
        except NotFoundError:
            pass
        except ConflictError:
            pass  # the uid precondition failed: another object now has the name

    async def patch_status(self, api_version: str, kind: str, namespace: str, name: str, status: Json) -> Json | None:
        """Merge ``status`` into the object's status subresource; None when the object is gone."""
        status_resource: Resource = (await self._resource(api_version, kind)).subresources["status"]
        try:
            return await _answer(
                self._client.patch(
                    status_resource,
                    body={"status": status},
                    name=name,
                    namespace=namespace,
                    content_type="application/merge-patch+json",
                    **_RAW,
                )
            )
        except NotFoundError:
            return None

    async def patch(self, api_version: str, kind: str, namespace: str, name: str, body: Json) -> Json | None:
        """Merge ``body`` into the object (not its status); None when the object is gone."""
        resource = await self._resource(api_version, kind)
        try:
            return await _answer(
                self._client.patch(
                    resource,
                    body=body,
                    name=name,
                    namespace=namespace,
                    content_type="application/merge-patch+json",
                    **_RAW,
                )
            )
        except NotFoundError:
            return None

    async def apply(self, manifest: Json) -> Json:
        """Server-side apply of ``manifest`` (created when absent); the object as the server now has it."""
        resource = await self._resource(manifest["apiVersion"], manifest["kind"])
        return await _answer(
            self._client.server_side_apply(
                resource,
                body=manifest,
                namespace=manifest["metadata"]["namespace"],
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
                **_RAW,
            )
        )

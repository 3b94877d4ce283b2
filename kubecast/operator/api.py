"""A small async Kubernetes API client: apply, get, list, patch status — all the operator needs.

kopf owns the watching; creating and patching children needs a client of our own.  This one
reuses the very connection info kopf logged in with (service account in a pod, kubeconfig
outside), so there is one source of credentials.  Children are applied with server-side apply
(field manager ``kubecast``), which is idempotent and leaves alone fields that other
controllers own, such as an HPA's replicas.
"""

from __future__ import annotations

import json
import ssl

import aiohttp

PLURALS = {
    "ConfigMap": "configmaps", "Secret": "secrets", "Service": "services", "Deployment": "deployments",
    "PodDisruptionBudget": "poddisruptionbudgets", "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "Ingress": "ingresses", "NetworkPolicy": "networkpolicies", "Channel": "channels", "Program": "programs", "StreamingEndpoint": "streamingendpoints",
}


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status


def collection_path(api_version: str, kind: str, namespace: str) -> str:
    prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    return f"{prefix}/namespaces/{namespace}/{PLURALS[kind]}"


class KubeApi:
    def __init__(self, *, server: str, token: str | None = None, ca_path=None, ca_data=None, insecure: bool = False,
                 certificate_path=None, private_key_path=None):
        self.server = server.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        context = None
        if self.server.startswith("https"):
            context = ssl.create_default_context(cafile=ca_path, cadata=ca_data.decode() if isinstance(ca_data, bytes) else ca_data)
            if insecure:
                context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            if certificate_path and private_key_path:
                context.load_cert_chain(certificate_path, private_key_path)
        self._ssl = context
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_connection_info(cls, info) -> "KubeApi":
        return cls(server=info.server, token=info.token, ca_path=info.ca_path, ca_data=info.ca_data, insecure=bool(info.insecure),
                   certificate_path=info.certificate_path, private_key_path=info.private_key_path)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers=self.headers, timeout=aiohttp.ClientTimeout(total=30))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _request(self, method: str, path: str, **kwargs) -> dict | None:
        async with self.session.request(method, self.server + path, ssl=self._ssl, **kwargs) as response:
            if response.status == 404:
                return None
            text = await response.text()
            if response.status >= 400:
                try:
                    message = json.loads(text).get("message", text)
                except ValueError:
                    message = text
                raise ApiError(response.status, message[:500])
            return json.loads(text) if text else {}

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict | None:
        return await self._request("GET", f"{collection_path(api_version, kind, namespace)}/{name}")

    async def list(self, api_version: str, kind: str, namespace: str, *, label_selector: str | None = None) -> list[dict]:
        params = {"labelSelector": label_selector} if label_selector else {}
        result = await self._request("GET", collection_path(api_version, kind, namespace), params=params)
        return (result or {}).get("items", [])

    async def delete(self, api_version: str, kind: str, namespace: str, name: str, *, uid: str | None = None, propagation: str = "Background") -> None:
        """Delete one object (gone already is fine); ``uid`` as a precondition, so that a newer object
        of the same name is never the one deleted."""
        options: dict = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        if uid is not None:
            options["preconditions"] = {"uid": uid}
        try:
            await self._request("DELETE", f"{collection_path(api_version, kind, namespace)}/{name}", data=json.dumps(options),
                                headers={"Content-Type": "application/json"})
        except ApiError as error:
            if error.status != 409:  # the uid precondition failed: another object now has the name
                raise

    async def patch_status(self, api_version: str, kind: str, namespace: str, name: str, status: dict) -> dict | None:
        return await self._request("PATCH", f"{collection_path(api_version, kind, namespace)}/{name}/status",
                                   data=json.dumps({"status": status}), headers={"Content-Type": "application/merge-patch+json"})

    async def apply(self, manifest: dict) -> dict:
        meta = manifest["metadata"]
        path = collection_path(manifest["apiVersion"], manifest["kind"], meta["namespace"])
        result = await self._request(
            "PATCH", f"{path}/{meta['name']}", params={"fieldManager": "kubecast", "force": "true"},
            data=json.dumps(manifest), headers={"Content-Type": "application/apply-patch+yaml"},
        )
        if result is None:  # an API without server-side apply for a missing object (the test emulator)
            result = await self._request("POST", path, data=json.dumps(manifest), headers={"Content-Type": "application/json"})
        return result or {}

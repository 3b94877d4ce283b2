"""kmock's Kubernetes emulator, taught what the operator's client relies on: a server-side apply
(a PATCH with ``application/apply-patch+yaml``) of an object that does not exist creates it, as
the API server does.  The API server authorizes such an apply as ``create`` too, so the requests
that created an object are kept (``applied_creates``) for the RBAC comparison."""

from __future__ import annotations

import attrs
import kmock
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
        applying = (request.action == enums.action.UPDATE and request.subresource is None and request.name is not None
                    and request.headers.get("Content-Type", "").startswith(APPLY))
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


"""kopf's bookkeeping storages, with the same results at a fraction of the copying.

For every watch event of every kind it watches, kopf builds the object's "essence" (what its
change detection compares: everything but ``status`` and most of ``metadata``) and strips its own
progress annotations from it.  kopf 1.45 deep-copies the whole body for the first (status and
metadata included, only to delete them) and the essence again for the second.  Those copies were
the largest single cost in the operator's own processing of an event (bench/operator_scale.py,
cProfile at 200 Channels: each Channel brings about 16 watch events at its start, 6 of them of
Deployments whose bodies are the largest).

``SpecEssenceStorage`` hands kopf's own ``build`` a body without what it would throw away, so it
copies only what the essence keeps; and for a kind without handlers that compare essences (no
change or daemon handler: the Deployments and Services watched only by indexes and event
handlers) it builds none.  ``OwnProgressStorage`` copies the essence only when it has our
progress annotations to strip.  The essences are equal to kopf's own
(tests/operator/test_essence.py, which also checks that no kind outside ``kubecast.io`` has such
handlers).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import kopf

# The only group whose resources have change or daemon handlers (creation, update, resume,
# the periodic ones): the essence of every other kind is never compared.
ESSENCE_GROUP = "kubecast.io/"

# What kopf's build reads from metadata: labels and annotations (kept), ownerReferences (the key
# of its annotation depends on them, for ReplicaSets).
_METADATA_READ = ("labels", "annotations", "ownerReferences")


class SpecEssenceStorage(kopf.AnnotationsDiffBaseStorage):
    def build(
        self,
        *,
        body: kopf.Body,
        extra_fields: Iterable[Any] | None = None,
    ) -> Any:
        if not str(body.get("apiVersion") or "").startswith(ESSENCE_GROUP):
            return cast(Any, {})
        extra = list(extra_fields or [])
        # A handler's field outside what the essence keeps (e.g. ``status.x``) is copied by kopf
        # from the body: then the body goes whole, as kopf would take it.
        if any(_outside(field) for field in extra):
            return super().build(body=body, extra_fields=extra)
        metadata = body.get("metadata") or {}
        trimmed = {key: value for key, value in body.items() if key not in ("metadata", "status")}
        trimmed["metadata"] = {key: metadata[key] for key in _METADATA_READ if key in metadata}
        # A field under a kept top-level key is in the essence already, copied once.
        return super().build(body=kopf.Body(cast(Any, trimmed)), extra_fields=[])


def _outside(field: Any) -> bool:
    path = field.split(".") if isinstance(field, str) else list(field)
    return not path or path[0] in ("metadata", "status", "apiVersion", "kind")


class OwnProgressStorage(kopf.AnnotationsProgressStorage):
    def clear(self, *, essence: Any) -> Any:
        # kopf calls this only on an essence it has just built or decoded, and keeps the result
        # alone, so one without our annotations can be handed back as it is.
        annotations = (essence.get("metadata") or {}).get("annotations") or {}
        if not any(self.prefix and key.startswith(f"{self.prefix}/") for key in annotations):
            return essence
        return super().clear(essence=essence)

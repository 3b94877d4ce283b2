"""What every resource's handlers share: the API client kopf logs in, kopf's settings, parsing a
body into its model, the status of an invalid spec, Secret checks, and the Ready event."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar, cast

import kopf
from pydantic import ValidationError

from kubecast.api import Channel, Program, StreamingEndpoint
from kubecast.api.loader import ManifestError, parse_document

from ..api import KubeApi
from ..builders import secret_references
from ..builders.endpoint_config import endpoint_secret_references
from ..essence import OwnProgressStorage, SpecEssenceStorage
from ..settings import OperatorSettings
from ..status import (
    PROGRESS_SECONDS,
    WAITING_FOR_SECRET,
    channel_conditions,
    conditions,
    contained,
    initial_conditions,
    progress_only,
    ready_event,
    secret_problems,
    storage_secret_problem,
)

GROUP_VERSION = ("kubecast.io", "v1alpha1")

CLIENT: dict[str, KubeApi] = {}

PROGRESS_MEMO = "progressWrittenAt"  # when a report last wrote its progress fields
# In a resource's kopf memo (in memory, per object, forgotten with it): the lock every writer of
# its status holds while it computes and sends it, and the status it last sent.  A Channel's and a
# StreamingEndpoint's status have several writers (the reconcile, the Deployment events, a
# Channel's stream report), and conditions go out as a whole list (a merge patch replaces it), so
# a list computed before another writer's newer one and sent after it would put back an older
# view.  Under the lock, each write is computed from the newest parts and sent at once, not left
# in kopf's patch to be applied after the handler returns.
STATUS_LOCK_MEMO = "statusLock"
LAST_STATUS_MEMO = "lastStatus"
# And a status computed but held back for a moment (a Channel's progress: channel_state.py),
# which the next writer builds on as the newest.
PENDING_STATUS_MEMO = "pendingStatus"
# Also in the memo: the fingerprint of each child as last applied, and when every child was last
# applied: a refresh applies only what changed or went away (refresh.py).
APPLIED_MEMO = "appliedChildren"
FULL_APPLY_MEMO = "fullApplyAt"


def one_slot(
    handler: Callable[..., Awaitable[None]],
) -> Callable[..., Awaitable[None]]:
    """Run the reconcile ``handler`` in one of the RECONCILE_SLOTS (all of them when the memo has
    none: a handler called outside a running operator)."""

    @functools.wraps(handler)
    async def bounded(*args: Any, memo: kopf.Memo, **kwargs: Any) -> None:
        slots: contextlib.AbstractAsyncContextManager[Any] = memo.get(SLOTS_MEMO) or contextlib.nullcontext()
        async with slots:
            await handler(*args, memo=memo, **kwargs)

    return bounded


def api() -> KubeApi:
    return CLIENT["api"]


def now() -> datetime:
    return datetime.now(timezone.utc)


# How many reconciles (create, update, resume and periodic refresh, of every kind) run at once.
# kopf starts one per object as soon as it has listed them all: at 1000 Channels, 1000 reconciles
# built their children and waited for their answers together, and what they held at that peak
# stayed in the process's RSS (bench/operator_scale.py, tracemalloc).  A reconcile spends most of
# its time waiting for the API server, so a few dozen at once keep the operator as busy; readiness
# does not wait for a slot (the Deployment events bring it up).
RECONCILE_SLOTS = 32
SLOTS_MEMO = "kubecast.reconcileSlots"  # in kopf's operator memo, which every object's memo copies


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    memo[SLOTS_MEMO] = asyncio.Semaphore(RECONCILE_SLOTS)
    # kopf's own bookkeeping goes into annotations under our prefix, never into status (built
    # with less copying: essence.py).
    settings.persistence.progress_storage = OwnProgressStorage(prefix="kubecast.io")
    settings.persistence.diffbase_storage = SpecEssenceStorage(prefix="kubecast.io", key="last-handled-configuration")
    settings.posting.level = logging.WARNING
    # After patching an object kopf waits for the watch to bring that version before it handles
    # the object's next event; past this timeout it goes on with the older event, whose body lacks
    # kopf's own last-handled annotation, and runs the create handlers again.  The default 5 s is
    # shorter than the watch lags behind when the operator is busy (1000 Channels starting:
    # bench/operator_scale.py counted 1.4 create reconciles per Channel, each re-applying every
    # child); the API server always sends the version, so waiting longer costs nothing else.
    settings.persistence.consistency_timeout = 60.0
    # The chart installs the CRDs before the operator starts: kopf finds them by discovery and
    # need not watch CustomResourceDefinitions (nor be allowed to).
    settings.scanning.disabled = True


@kopf.on.login()
def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo | None:
    info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(settings=settings)
    if info is not None:  # kopf logs in again after a 401: the client then uses the new credentials
        CLIENT["api"] = KubeApi.from_connection_info(info)
    return info


@kopf.on.cleanup()
async def close_client(**_: Any) -> None:
    if "api" in CLIENT:
        await CLIENT["api"].close()


def parse(body: Mapping[str, Any]) -> Channel | Program | StreamingEndpoint:
    document = {key: body.get(key) for key in ("apiVersion", "kind", "spec") if body.get(key) is not None}
    document["metadata"] = {"name": body["metadata"]["name"], "namespace": body["metadata"].get("namespace", "default")}
    return parse_document(document, f"{body['kind']} {body['metadata']['name']}")


Resource = TypeVar("Resource", Channel, Program, StreamingEndpoint)


def parse_as(model: type[Resource], body: Mapping[str, Any]) -> Resource:
    """``parse`` of a body whose kind the handler knows (the one it watches)."""
    resource = parse(body)
    if not isinstance(resource, model):
        raise ManifestError(f"{body['kind']} {body['metadata']['name']}: not a {model.__name__}")
    return resource


def invalid_status(
    status: Mapping[str, Any] | None,
    generation: int | None,
    error: Exception,
    data_plane: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    message = str(error).split(": ", 1)[-1]
    previous = dict(status or {}).get("conditions")
    # A Channel's data-plane conditions still describe its running stream: kept, not dropped.
    return {
        "observedGeneration": generation,
        "conditions": channel_conditions(
            conditions(
                previous,
                generation,
                now(),
                ("Ready", False, "InvalidSpec", message),
                ("Reconciling", False, "InvalidSpec", ""),
                ("Stalled", True, "InvalidSpec", message),
            ),
            previous,
            data_plane,
        ),
    }


def patch_invalid(
    patch: kopf.Patch, status: Mapping[str, Any] | None, generation: int | None, error: Exception
) -> None:
    """The InvalidSpec status into ``patch``, unless ``status`` already says it."""
    invalid = invalid_status(status, generation, error)
    if not contained(invalid, dict(status or {})):
        patch.status.update(invalid)


@kopf.on.create(*GROUP_VERSION, "streamingendpoints", id="observe")
@kopf.on.create(*GROUP_VERSION, "programs", id="observe")
async def observe(meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch, **_: Any) -> None:
    patch.status["conditions"] = channel_conditions(
        initial_conditions(meta.get("generation"), now()), dict(status or {}).get("conditions")
    )


async def valid_resources(namespace: str, model: type[Resource]) -> list[Resource]:
    """The namespace's valid resources of a kind (an invalid one has its own InvalidSpec)."""
    kind = model.__name__
    parsed = []
    for item in await api().list("kubecast.io/v1alpha1", kind, namespace):
        try:
            parsed.append(parse_as(model, {**item, "kind": kind, "apiVersion": "kubecast.io/v1alpha1"}))
        except (ManifestError, ValidationError):
            continue
    return parsed


async def storage_error_of(namespace: str, *, pods: str = "encoder and packager pods") -> str | None:
    name = OperatorSettings.from_environment().store_credentials_secret
    secret = await api().get("v1", "Secret", namespace, name) if name else None
    return storage_secret_problem(name, namespace, secret, pods=pods)


async def secret_error_of(namespace: str, channel: Channel | StreamingEndpoint) -> str | None:
    references = secret_references(channel) if isinstance(channel, Channel) else endpoint_secret_references(channel)
    secrets: dict[str, dict[str, Any] | None] = {}
    for _, ref, _ in references:
        if ref.name not in secrets:
            secrets[ref.name] = await api().get("v1", "Secret", namespace, ref.name)
    return secret_problems(references, secrets)


STREAM_STATUS_INTERVAL = float(os.environ.get("KUBECAST_STREAM_STATUS_INTERVAL", "30"))


def progress_may_wait(memo: kopf.Memo, new: dict[str, Any], previous: dict[str, Any]) -> bool:
    """Whether a periodic report that moves only progress fields waits (status.PROGRESS_SECONDS);
    when it does not, its write is noted as the latest."""
    last = memo.get(PROGRESS_MEMO)
    if progress_only(new, previous) and last is not None and time.monotonic() - last < PROGRESS_SECONDS:
        return True
    memo[PROGRESS_MEMO] = time.monotonic()
    return False


def status_lock(memo: kopf.Memo) -> asyncio.Lock:
    lock = memo.get(STATUS_LOCK_MEMO)
    if lock is None:
        lock = memo[STATUS_LOCK_MEMO] = asyncio.Lock()
    return lock


def last_written_status(memo: kopf.Memo, handed: Mapping[str, Any] | None) -> dict[str, Any]:
    """The status this operator last wrote, else the one kopf handed over (which lags: kopf
    refreshes a resource's body only between its handlers).  Not a copy: read it, never change it."""
    return memo.get(LAST_STATUS_MEMO) or dict(handed or {})


def newest_status(memo: kopf.Memo, handed: Mapping[str, Any] | None) -> dict[str, Any]:
    """``last_written_status`` with any status held back on top, as a copy to build on."""
    return copy.deepcopy({**last_written_status(memo, handed), **(memo.get(PENDING_STATUS_MEMO) or {})})


async def write_status(memo: kopf.Memo, kind: str, namespace: str, name: str, new_status: dict[str, Any]) -> None:
    await api().patch_status("kubecast.io/v1alpha1", kind, namespace, name, new_status)
    memo[LAST_STATUS_MEMO] = {**(memo.get(LAST_STATUS_MEMO) or {}), **copy.deepcopy(new_status)}


def blocked(status: dict[str, Any]) -> bool:
    """A missing Secret or an invalid spec: only a reconcile, which re-reads them, may go on."""
    return any(c.get("reason") in (*WAITING_FOR_SECRET, "InvalidSpec") for c in status.get("conditions", []))


def announce_transition(
    body: Mapping[str, Any], old_status: Mapping[str, Any] | None, new_status: dict[str, Any], logger: kopf.Logger
) -> None:
    event = ready_event(old_status, new_status)
    if event is not None:
        # kopf.event reads only the body's apiVersion, kind and metadata, which an index's plain dict has too
        kopf.event(cast(kopf.Body, body), type=event.type, reason=event.reason, message=event.message)
        logger.info("Ready is now %s (%s)", event.ready, event.reason)

"""What a Channel's handlers keep in its kopf memo and share: the status lock, the status last
written, the data-plane conditions, and the children as built (encoder B held while A rolls)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from typing import Any

import kopf

from kubecast.api import Channel

from ..builders import INSTANCES, build_channel_children
from ..rollout import DeploymentState
from ..settings import OperatorSettings
from ..status import WAITING_FOR_SECRET
from .common import api

# In a Channel's kopf memo (in memory, per object, forgotten with it): the data-plane conditions
# report_stream last derived.  The other writers of status.conditions carry these rather than
# the ones in the status they were handed, which lags: kopf updates a Channel's body and
# indexes only between that Channel's handlers, so not during a reconcile (seconds of applies).
DATA_PLANE_MEMO = "dataPlaneConditions"
# Also in the memo: the lock every writer of a Channel's conditions holds while it computes and
# sends the whole list, and the status it last sent.  The list goes out whole (a merge patch
# replaces it), so a list computed before another writer's newer one and sent after it would
# drop that writer's part.  Under the lock, each write is computed from the newest parts and
# sent at once, not left in kopf's patch to be applied after the handler returns.
STATUS_LOCK_MEMO = "statusLock"
LAST_STATUS_MEMO = "lastStatus"
# Also in the memo: the fingerprint of each child as last applied, and when every child was last
# applied: a refresh applies only what changed or went away (refresh.py).
APPLIED_MEMO = "appliedChildren"
FULL_APPLY_MEMO = "fullApplyAt"

# What encoder B keeps while A rolls a new spec: its pod template and the ConfigMap its pod
# reads the Channel from at start (a restart of B meanwhile must not pick up the new spec).
SECOND_HELD = ("Deployment", "ConfigMap")


def encoder_names(channel: str) -> tuple[str, str]:
    first, second = (f"{channel}-encoder-{i.lower()}" for i in INSTANCES)
    return first, second


def built_children(channel: Channel, uid: str, namespace: str) -> list[dict[str, Any]]:
    return build_channel_children(channel, uid=uid, namespace=namespace, settings=OperatorSettings.from_environment())


def indexed_states(index: kopf.Index[Any, Any], key: tuple[str, str], *names: str) -> list[DeploymentState | None]:
    indexed = dict(index.get(key, []))
    return [indexed.get(name) for name in names]


def status_lock(memo: kopf.Memo) -> asyncio.Lock:
    lock = memo.get(STATUS_LOCK_MEMO)
    if lock is None:
        lock = memo[STATUS_LOCK_MEMO] = asyncio.Lock()
    return lock


def newest_status(memo: kopf.Memo, handed: Mapping[str, Any] | None) -> dict[str, Any]:
    """The status this operator last wrote, else the one kopf handed over (which lags: kopf
    refreshes a Channel's body only between its handlers)."""
    return copy.deepcopy(memo.get(LAST_STATUS_MEMO) or dict(handed or {}))


async def write_channel_status(memo: kopf.Memo, namespace: str, name: str, new_status: dict[str, Any]) -> None:
    await api().patch_status("kubecast.io/v1alpha1", "Channel", namespace, name, new_status)
    memo[LAST_STATUS_MEMO] = {**(memo.get(LAST_STATUS_MEMO) or {}), **copy.deepcopy(new_status)}


def blocked(status: dict[str, Any]) -> bool:
    """A missing Secret or an invalid spec: only a reconcile, which re-reads them, may go on."""
    return any(c.get("reason") in (*WAITING_FOR_SECRET, "InvalidSpec") for c in status.get("conditions", []))

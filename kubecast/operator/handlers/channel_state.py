"""What a Channel's handlers keep in its kopf memo and share: the status lock, the status last
written, the data-plane conditions, and the children as built (encoder B held while A rolls)."""

from __future__ import annotations

from typing import Any

import kopf

from kubecast.api import Channel

from ..builders import INSTANCES, build_channel_children
from ..rollout import DeploymentState
from ..settings import OperatorSettings
from .common import write_status

# In a Channel's kopf memo (in memory, per object, forgotten with it): the data-plane conditions
# report_stream last derived.  The other writers of status.conditions carry these rather than
# the ones in the status they were handed, which lags: kopf updates a Channel's body and
# indexes only between that Channel's handlers, so not during a reconcile (seconds of applies).
DATA_PLANE_MEMO = "dataPlaneConditions"

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


async def write_channel_status(memo: kopf.Memo, namespace: str, name: str, new_status: dict[str, Any]) -> None:
    await write_status(memo, "Channel", namespace, name, new_status)

"""What a Channel's handlers keep in its kopf memo and share: the status lock, the status last
written, the data-plane conditions, and the children as built (encoder B held while A rolls)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from kubecast.api import Channel

from ..builders import INSTANCES, build_channel_children
from ..rollout import DeploymentState, wanted_hashes
from ..settings import OperatorSettings
from .common import parse_as, write_status

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


# Also in the memo: the Channel as last parsed and the spec hashes of its Deployments (``Parsed``).
PARSED_MEMO = "parsedChannel"


@dataclass(frozen=True)
class Parsed:
    """A Channel parsed, the spec hash of each Deployment built for it, and what they come from.
    Not the children themselves: kept for every Channel, they would cost tens of kB each."""

    spec: dict[str, Any]  # a copy of the spec
    uid: str
    namespace: str
    settings: OperatorSettings
    channel: Channel
    wanted: dict[str, str]  # Deployment name -> spec hash (rollout.wanted_hashes)

    def children(self) -> list[dict[str, Any]]:
        return build_channel_children(self.channel, uid=self.uid, namespace=self.namespace, settings=self.settings)


def build_for(
    memo: kopf.Memo, body: Mapping[str, Any], uid: str, namespace: str
) -> tuple[Parsed, list[dict[str, Any]]]:
    """The Channel of ``body`` parsed and its children built, noted in the memo (``parsed_for``).
    Raises what ``parse_as`` raises for an invalid spec."""
    spec = dict(body.get("spec") or {})
    settings = OperatorSettings.from_environment()
    channel = parse_as(Channel, body)
    children = build_channel_children(channel, uid=uid, namespace=namespace, settings=settings)
    parsed = Parsed(copy.deepcopy(spec), uid, namespace, settings, channel, wanted_hashes(children))
    memo[PARSED_MEMO] = parsed
    return parsed, children


def parsed_for(memo: kopf.Memo, body: Mapping[str, Any], uid: str, namespace: str) -> Parsed:
    """The Channel of ``body`` parsed, with its Deployments' spec hashes, from the memo while the
    spec (and uid, namespace, settings) is the one they were built from.  Every Deployment event
    of a Channel asks (six at its start: each encoder's and the packager's two), and parsing and
    building for each was the largest part of the operator's own CPU at start-up
    (bench/operator_scale.py, profiled).  Raises what ``parse_as`` raises for an invalid spec."""
    parsed: Parsed | None = memo.get(PARSED_MEMO)
    if (
        parsed is not None
        and parsed.spec == dict(body.get("spec") or {})
        and (parsed.uid, parsed.namespace, parsed.settings) == (uid, namespace, OperatorSettings.from_environment())
    ):
        return parsed
    return build_for(memo, body, uid, namespace)[0]


def indexed_states(index: kopf.Index[Any, Any], key: tuple[str, str], *names: str) -> list[DeploymentState | None]:
    indexed = dict(index.get(key, []))
    return [indexed.get(name) for name in names]


async def write_channel_status(memo: kopf.Memo, namespace: str, name: str, new_status: dict[str, Any]) -> None:
    await write_status(memo, "Channel", namespace, name, new_status)

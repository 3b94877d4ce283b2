"""What a Channel's handlers keep in its kopf memo and share: the status last written and the one
held back (and the writer that holds progress back), the data-plane conditions, and the children
as built (encoder B held while A rolls)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from kubecast.api import Channel

from ..builders import INSTANCES, build_channel_children
from ..rollout import DeploymentState, wanted_hashes
from ..settings import OperatorSettings
from ..status import contained, ready_event
from .common import PENDING_STATUS_MEMO, announce_transition, last_written_status, parse_as, status_lock, write_status

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


# A status that only tells progress is held back up to STATUS_HOLD_SECONDS, and any later one
# replaces it meanwhile: ``Reconciling`` True, not stalled, and ``Ready`` as the Channel already
# says it (the Deployments still to roll during a rollout), or not yet judged and starting
# ("waiting for encoder B, packager" after the Unknown of first sight).  Every other status
# (Ready, Degraded, a problem, the end of a rollout) goes out at once, with what was held.  So a
# Channel whose encoders and packager come up within that time is written once, not once per
# Deployment that becomes ready (bench/operator_scale.py: each write is also a watch event the
# operator processes, and they were most of a Channel's start-up cost).  kstatus readers see no
# gap: until the held status goes out, ``observedGeneration`` (or the Unknown of first sight)
# still says it is in progress.
STATUS_HOLD_SECONDS = 2.0
HELD_WRITE_MEMO = "heldStatusWrite"  # the task that sends the held status
_HELD_WRITES: set[asyncio.Task[None]] = set()


def _progress_only(new_status: Mapping[str, Any], sent: Mapping[str, Any]) -> bool:
    new = {c.get("type"): c for c in new_status.get("conditions", [])}
    ready, was = new.get("Ready") or {}, {c.get("type"): c for c in sent.get("conditions", [])}.get("Ready") or {}
    stalled = (new.get("Stalled") or {}).get("status") == "True"
    in_progress = (new.get("Reconciling") or {}).get("status") == "True" and not stalled
    ready_as_it_was = (ready.get("status"), ready.get("reason")) == (was.get("status"), was.get("reason"))
    first_sight = was.get("status") in (None, "Unknown") and ready_event(sent, new_status) is None
    return in_progress and (ready_as_it_was or first_sight)


async def write_channel_status(
    memo: kopf.Memo,
    body: Mapping[str, Any],
    handed: Mapping[str, Any] | None,
    new_status: dict[str, Any],
    logger: kopf.Logger,
) -> None:
    """Write ``new_status`` of the Channel of ``body`` (whose status kopf handed over as
    ``handed``), or hold it back while it only tells progress (``STATUS_HOLD_SECONDS``).  The
    caller holds the status lock and computed ``new_status`` from ``newest_status``."""
    held: asyncio.Task[None] | None = memo.get(HELD_WRITE_MEMO)
    if _progress_only(new_status, last_written_status(memo, handed)):
        memo[PENDING_STATUS_MEMO] = {**(memo.get(PENDING_STATUS_MEMO) or {}), **copy.deepcopy(new_status)}
        if held is None or held.done():
            held = memo[HELD_WRITE_MEMO] = asyncio.create_task(_write_held(memo, body, handed, logger))
            _HELD_WRITES.add(held)
            held.add_done_callback(_HELD_WRITES.discard)
        return
    if held is not None:
        held.cancel()  # what it holds goes out now
    await _send(memo, body, handed, {**(memo.pop(PENDING_STATUS_MEMO, None) or {}), **new_status}, logger)


async def _write_held(
    memo: kopf.Memo, body: Mapping[str, Any], handed: Mapping[str, Any] | None, logger: kopf.Logger
) -> None:
    await asyncio.sleep(STATUS_HOLD_SECONDS)
    async with status_lock(memo):
        held = memo.pop(PENDING_STATUS_MEMO, None)
        if not held:
            return  # a later status took it along
        try:
            await _send(memo, body, handed, held, logger)
        except Exception as error:  # noqa: BLE001 - a task of its own: nobody else would see the error
            # Kept for the next writer (a Deployment event, the refresh) to take along.
            memo[PENDING_STATUS_MEMO] = {**held, **(memo.get(PENDING_STATUS_MEMO) or {})}
            logger.warning("cannot write the status of Channel %s: %s", body["metadata"]["name"], error)


async def _send(
    memo: kopf.Memo,
    body: Mapping[str, Any],
    handed: Mapping[str, Any] | None,
    new_status: dict[str, Any],
    logger: kopf.Logger,
) -> None:
    sent = last_written_status(memo, handed)
    if contained(new_status, sent):
        return  # what was held came back to what the Channel already says
    announce_transition(body, sent, new_status, logger)
    meta = body["metadata"]
    await write_status(memo, "Channel", meta["namespace"], meta["name"], new_status)


@kopf.on.cleanup()
async def drop_held_writes(**_: Any) -> None:
    """A held status is not sent after the operator stops (its client is closed): the next
    operator's resume computes it again."""
    for held in list(_HELD_WRITES):
        held.cancel()

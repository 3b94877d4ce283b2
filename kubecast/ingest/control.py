"""Whether a stopping ingest's channel is stopped, from its control record in the store (``--store``,
on a cluster).

On a cluster the ingest runs in each encoder pod, and a stopped channel's pods are scaled to zero:
without more, a publisher would only see its connection dropped, then refused, with nobody to say
why.  The operator writes the channel's state into its control record before it changes the
replicas (``kubecast.operator.handlers.channel_stop``).  When its pod is told to stop, the ingest
reads that record once: if the channel is stopped, it refuses every publisher from then on with the
reason the local ingest gives (a live one cut off), and keeps its ports open for ``--stopped-linger``
seconds to say so to every publisher that tries again, before it stops.  A pod stopped for any other
reason (a rollout, a node drain) stops at once, as before.  Read only then, the record costs nothing
while the channel runs, and a record that cannot be read only means no linger.
"""

from __future__ import annotations

import asyncio
import logging

from kubecast.storage import ChannelControl, Store, layout

from .publication import Publications

log = logging.getLogger("kubecast.ingest")

READ_SECONDS = 5  # a store that hangs must not hold the shutdown up for long


async def stopped_channels(store: Store, channels: list[str]) -> frozenset[str]:
    """The channels among ``channels`` whose control record says Stopped (none: Running).  Raises
    on storage trouble and on a damaged record."""
    stopped = set()
    for channel in channels:
        data = await asyncio.wait_for(store.get(layout.control_key(channel)), READ_SECONDS)
        if data is not None and ChannelControl.from_json(data).state == "Stopped":
            stopped.add(channel)
    return frozenset(stopped)


async def lingers(store: Store, channels: list[str], publications: Publications, seconds: float) -> float:
    """On shutdown: ``seconds`` when one of the ingest's channels is stopped (whose publishers are
    refused from now on), else 0."""
    if seconds <= 0:
        return 0
    try:
        stopped = await stopped_channels(store, channels)
    except Exception as error:  # noqa: BLE001 - any storage or record trouble: stop without a linger
        log.error("stopping without a linger: the control records cannot be read (%s)", error)
        return 0
    if not stopped:
        return 0
    publications.set_stopped(stopped)
    return seconds

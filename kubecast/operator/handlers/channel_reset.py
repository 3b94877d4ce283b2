"""A Channel's reset (Azure Media Services' Reset): the annotation ``kubecast.io/reset: <token>``
puts the token into the channel's control record in the store, and its encoders start a fresh
timeline with the next contribution (numbers continue upward).  A new token is a new reset; the
same token again asks nothing.  Only the annotation is read, so a reset never restarts a pod.

An event handler, not an update handler: kopf leaves the annotations under its own prefix
(``kubecast.io/``) out of what it compares, so a new token is no update for it.  Each event
costs a look at the memo; the store is written once per new token.  (The handler's id must not
be ``reset``: kopf keeps a handler's progress in ``kubecast.io/<id>``.)"""

from __future__ import annotations

from typing import Any

import kopf

from ..store_io import request_reset
from .common import GROUP_VERSION

RESET = "kubecast.io/reset"
RESET_MEMO = "resetToken"  # the token last written to the store, in the Channel's kopf memo


@kopf.on.event(*GROUP_VERSION, "channels", id="restart-timeline", annotations={RESET: kopf.PRESENT})  # type: ignore[arg-type]
async def reset_channel(
    event: kopf.RawEvent,
    body: kopf.Body,
    annotations: kopf.Annotations,
    name: str,
    namespace: str,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    token = annotations[RESET]
    if event.get("type") == "DELETED" or memo.get(RESET_MEMO) == token:
        return
    try:
        written = await request_reset(namespace, name, token)
    except Exception as error:  # noqa: BLE001 - the Channel's next event tries again
        logger.warning("cannot write the reset of %s to the store (%s); trying again", name, error)
        return
    memo[RESET_MEMO] = token
    if written:
        message = f"reset {token!r}: the next contribution starts a fresh timeline"
        kopf.event(body, type="Normal", reason="Reset", message=message)
        logger.info("%s", message)

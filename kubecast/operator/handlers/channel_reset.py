"""A Channel's reset (Azure Media Services' Reset): the annotation ``kubecast.io/reset: <token>``
puts the token into the channel's control record in the store, and its encoders start a fresh
timeline with the next contribution (numbers continue upward).  A new token is a new reset; the
same token again asks nothing (``channel_requests.act_once``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from ..store_io import request_reset
from .channel_requests import Done, act_once
from .common import GROUP_VERSION

RESET = "kubecast.io/reset"
RESET_MEMO = "resetToken"  # the token last written to the store, in the Channel's kopf memo


async def follow_reset(token: str, spec: Mapping[str, Any], namespace: str, name: str) -> Done | None:
    if not await request_reset(namespace, name, token):
        return None
    return Done("Reset", f"reset {token!r}: the next contribution starts a fresh timeline")


@kopf.on.event(*GROUP_VERSION, "channels", id="restart-timeline", annotations={RESET: kopf.PRESENT})  # type: ignore[arg-type]
async def reset_channel(
    event: kopf.RawEvent,
    body: kopf.Body,
    spec: kopf.Spec,
    annotations: kopf.Annotations,
    name: str,
    namespace: str,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    await act_once(
        RESET,
        RESET_MEMO,
        follow_reset,
        event=event,
        body=body,
        spec=spec,
        annotations=annotations,
        name=name,
        namespace=namespace,
        memo=memo,
        logger=logger,
    )

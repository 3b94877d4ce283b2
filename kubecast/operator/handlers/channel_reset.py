"""A Channel's reset (Azure Media Services' Reset): the annotation ``kubecast.io/reset: <token>``
puts the token into the channel's control record in the store, and its encoders start a fresh
timeline with the next contribution (numbers continue upward).  A new token is a new reset; the
same token again asks nothing (``channel_requests.act_once``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..store_io import request_reset
from .channel_requests import Done, follow_annotation

RESET = "kubecast.io/reset"
RESET_MEMO = "resetToken"  # the token last written to the store, in the Channel's kopf memo


async def follow_reset(token: str, spec: Mapping[str, Any], namespace: str, name: str) -> Done | None:
    if not await request_reset(namespace, name, token):
        return None
    return Done("Reset", f"reset {token!r}: the next contribution starts a fresh timeline")


follow_annotation(RESET, handler_id="restart-timeline", memo_key=RESET_MEMO, follow=follow_reset)

"""A Channel's manual slate (Azure Media Services' ShowSlate / HideSlate): the annotation
``kubecast.io/slate: "on"`` or ``"off"`` puts the switch, with the time it was seen, into the
channel's control record in the store; its encoders follow the record while they encode and
switch at the same segment boundary (``kubecast.encoder.manual_slate``).

A value other than on or off, or a slate on a pass-through channel (nothing to draw a card with),
is refused with a Warning event, once per value (``channel_requests.act_once``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from ..store_io import request_slate
from .channel_requests import Done, Refused, follow_annotation

SLATE = "kubecast.io/slate"
SLATE_MEMO = "slateSwitch"  # the annotation's value last acted on, in the Channel's kopf memo


def slate_refusal(value: str, spec: Mapping[str, Any]) -> str | None:
    """Why the annotation's ``value`` cannot be followed, or None."""
    if value not in ("on", "off"):
        return f"{SLATE} is {value!r}; it takes \"on\" or \"off\""
    encoding = spec.get("encoding") or {}
    if value == "on" and encoding.get("preset") == "None":
        return "a manual slate needs live encoding (encoding.preset other than None); the channel is passed through"
    return None


async def follow_slate(value: str, spec: Mapping[str, Any], namespace: str, name: str) -> Done | None:
    if refusal := slate_refusal(value, spec):
        raise Refused("SlateRefused", "value" if value not in ("on", "off") else "passthrough", refusal)
    if not await request_slate(namespace, name, on=value == "on", now=datetime.now(timezone.utc)):
        return None
    message = f"slate {value}: the encoders switch at a segment boundary a few seconds from now"
    return Done("SlateOn" if value == "on" else "SlateOff", message)


follow_annotation(SLATE, handler_id="switch-slate", memo_key=SLATE_MEMO, follow=follow_slate)

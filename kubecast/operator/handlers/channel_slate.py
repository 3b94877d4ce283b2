"""A Channel's manual slate (Azure Media Services' ShowSlate / HideSlate): the annotation
``kubecast.io/slate: "on"`` or ``"off"`` puts the switch, with the time it was seen, into the
channel's control record in the store; its encoders follow the record while they encode and
switch at the same segment boundary (``kubecast.encoder.manual_slate``).  Only the annotation is
read, so a slate never restarts a pod.

An event handler for the same reason as the reset's (``channel_reset``): kopf leaves annotations
under its own prefix out of what it compares.  A value other than on or off, or a slate on a
pass-through channel (nothing to draw a card with), is refused with a Warning event, once per
value."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import kopf

from ..store_io import request_slate
from .common import GROUP_VERSION

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


@kopf.on.event(*GROUP_VERSION, "channels", id="switch-slate", annotations={SLATE: kopf.PRESENT})  # type: ignore[arg-type]
async def switch_slate(
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
    value = annotations[SLATE]
    if event.get("type") == "DELETED" or memo.get(SLATE_MEMO) == value:
        return
    if refusal := slate_refusal(value, spec):
        memo[SLATE_MEMO] = value
        kopf.event(body, type="Warning", reason="SlateRefused", message=refusal)
        logger.warning("%s: %s", name, refusal)
        return
    try:
        written = await request_slate(namespace, name, on=value == "on", now=datetime.now(timezone.utc))
    except Exception as error:  # noqa: BLE001 - the Channel's next event tries again
        logger.warning("cannot write the slate of %s to the store (%s); trying again", name, error)
        return
    memo[SLATE_MEMO] = value
    if written:
        message = f"slate {value}: the encoders switch at a segment boundary a few seconds from now"
        kopf.event(body, type="Normal", reason="SlateOn" if value == "on" else "SlateOff", message=message)
        logger.info("%s", message)

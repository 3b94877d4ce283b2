"""A Channel's manual cue (Azure Media Services' StartAdvertisement / EndAdvertisement): the
annotation ``kubecast.io/cue: "<id>/<seconds>"`` starts an ad break of that many seconds with that
splice_event_id, ``"<id>/end"`` ends the break ``<id>`` now.  The request, with the time it was
seen, joins the channel's control record; its encoders insert the same SCTE-35 splice_insert at the
same segment boundary (``kubecast.encoder.manual_cue``).

A value of another shape, a duration outside 1 s to an hour, an id used before, an end of a break
never started: refused with a Warning event, once per value (``channel_requests.act_once``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from kubecast.storage import CueRefused

from ..store_io import request_cue
from .channel_requests import Done, Refused, follow_annotation

CUE = "kubecast.io/cue"
CUE_MEMO = "cueRequest"  # the annotation's value last acted on, in the Channel's kopf memo

_VALUE = re.compile(r"(\d{1,10})/(end|\d{1,7}(?:\.\d{1,3})?)")


def parse_cue(value: str) -> tuple[int, float | None]:
    """The id and seconds (None: an end) of the annotation's ``value``; raises ``Refused``."""
    match = _VALUE.fullmatch(value.strip())
    if match is None:
        message = f'{CUE} is {value!r}; it takes "<id>/<seconds>" (start a break) or "<id>/end"'
        raise Refused("CueRefused", "value", message)
    seconds = None if match[2] == "end" else float(match[2])
    return int(match[1]), seconds


async def follow_cue(value: str, spec: Mapping[str, Any], namespace: str, name: str) -> Done | None:
    event_id, seconds = parse_cue(value)
    try:
        await request_cue(namespace, name, event_id=event_id, seconds=seconds, now=datetime.now(timezone.utc))
    except CueRefused as refused:
        raise Refused("CueRefused", refused.reason, f"{CUE} {value!r}: {refused}") from refused
    if seconds is None:
        return Done("CueIn", f"cue {event_id}: the break ends at a segment boundary a few seconds from now")
    return Done("CueOut", f"cue {event_id}: a {seconds:g} s break starts at a segment boundary a few seconds from now")


follow_annotation(CUE, handler_id="insert-cue", memo_key=CUE_MEMO, follow=follow_cue)

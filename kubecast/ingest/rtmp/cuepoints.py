"""Ad markers an RTMP publisher sends as AMF0 ``onCuePoint`` data messages (pure).

RTMP has no SCTE-35 PID: encoders that mark ad breaks on an RTMP output send a data message
named ``onCuePoint`` at (or ahead of) the splice, in one of three shapes:

- **YouTube's cue point**, as OBS plugins, hardware encoders and re-streaming servers send it
  for YouTube Live ad breaks: an object with ``type: "com.youtube.cuepoint"``,
  ``cue_point_start`` (true: a break starts; false: it ends early), ``break_duration_sec``,
  ``pre_roll_time_sec`` (the splice is that long after the message) and ``splice_event_id``.
- **Adobe's cue point carrying SCTE-35**: the FLV cue point object (``name``, ``time`` in seconds
  of the stream, ``type``, ``parameters``) whose ``parameters`` (or the object itself) holds
  ``scte35``, a base64 ``splice_info_section``.  The section is checked as strictly as one from a
  TS PID (``kubecast.media.scte35``) and says out or in, the event id and the duration; its PTS
  is on the sender's MPEG-TS clock, which an RTMP stream does not carry, so the splice is at the
  cue point's ``time`` (the message's timestamp without one).
- **Adobe's cue point spelling the splice out**: ``parameters`` with ``type`` ``SpliceOut`` or
  ``SpliceIn``, ``id`` and ``duration`` in seconds (the attributes of Adobe's ``EXT-X-CUE`` tag).

Each becomes a ``CuePoint`` at a time of the RTMP clock (milliseconds, as the frames); a cue
point of none of these shapes (a chapter, a navigation point) is no ad marker and gives None.
A message that claims to be one but is broken raises ``CuePointError`` with a fixed ``reason``
word for ``kubecast_ingest_cues_rejected_total``; the caller drops it and the connection goes on.
"""

from __future__ import annotations

import base64
import binascii
import math
import zlib
from dataclasses import dataclass
from typing import Any

from kubecast.media.scte35 import PTS_WRAP, Scte35Error, parse_splice_info, splice_insert_section

from . import amf0

NAME = "onCuePoint"
PREFIX = amf0.encode(NAME)  # how a data message carrying one starts
YOUTUBE = "com.youtube.cuepoint"
MAX_SECONDS = 4 * 3600.0  # a break, a pre-roll, a time ahead: anything longer is a broken field
MAX_SECTION = 4096  # a splice_info_section is at most 4093 bytes (12-bit section_length)
RTMP_TO_90K = 90


class CuePointError(ValueError):
    """A cue point that must not be acted on; ``reason`` is a fixed word for metrics."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CuePoint:
    time: int  # of the splice, in RTMP milliseconds (the frames' clock)
    out: bool
    duration: int | None  # of the break, in milliseconds; None: not stated
    event_id: int
    section: bytes  # the splice_info_section received, or one built for a cue point without


def _seconds(value: Any, field: str, *, allow_zero: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CuePointError("cuepoint", f"onCuePoint {field} is not a number of seconds")
    if value < 0 or value > MAX_SECONDS or (value == 0 and not allow_zero):
        raise CuePointError("cuepoint", f"onCuePoint {field} {value!r} s is out of range")
    return float(value)


def _event_id(value: Any) -> int:
    """A number as is; an Adobe string id (``"a2"``) as a stable 32-bit number, so an in pairs with its out."""
    if isinstance(value, bool) or value is None:
        raise CuePointError("cuepoint", "onCuePoint id is missing")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0 or value > 0xFFFFFFFF or value != int(value):
            raise CuePointError("cuepoint", f"onCuePoint event id {value!r} is not a 32-bit number")
        return int(value)
    if isinstance(value, str) and 0 < len(value) <= 256:
        return int(value) if value.isdigit() and int(value) <= 0xFFFFFFFF else zlib.crc32(value.encode())
    raise CuePointError("cuepoint", "onCuePoint id is neither a number nor a short string")


def _built(time: int, out: bool, duration: int | None, event_id: int) -> CuePoint:
    section = splice_insert_section(
        event_id=event_id,
        out=out,
        pts=time * RTMP_TO_90K % PTS_WRAP,
        duration=None if duration is None else duration * RTMP_TO_90K,
    )
    return CuePoint(time, out, duration, event_id, section)


def _youtube(point: dict[str, Any], timestamp: int) -> CuePoint:
    start = point.get("cue_point_start", True)
    if not isinstance(start, bool):
        raise CuePointError("cuepoint", "onCuePoint cue_point_start is not a boolean")
    pre_roll = _seconds(point.get("pre_roll_time_sec", 0), "pre_roll_time_sec")
    duration = point.get("break_duration_sec")
    if start:
        duration_ms: int | None = round(_seconds(duration, "break_duration_sec", allow_zero=False) * 1000)
    else:
        duration_ms = None
    return _built(timestamp + round(pre_roll * 1000), start, duration_ms, _event_id(point.get("splice_event_id", 0)))


def _section(text: Any) -> bytes:
    if not isinstance(text, str) or len(text) > MAX_SECTION * 2:
        raise CuePointError("base64", "onCuePoint scte35 is not a base64 string of a section's size")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CuePointError("base64", "onCuePoint scte35 is not valid base64") from None


def _adobe(point: dict[str, Any], parameters: dict[str, Any], timestamp: int) -> CuePoint | None:
    time = timestamp if point.get("time") is None else round(_seconds(point["time"], "time", allow_zero=True) * 1000)
    carried = parameters.get("scte35", point.get("scte35"))
    if carried is not None:
        section = _section(carried)
        try:
            splice = parse_splice_info(section).splice
        except Scte35Error as error:
            raise CuePointError(error.reason, f"onCuePoint scte35: {error}") from None
        if splice is None:
            return None  # a splice_null heartbeat, a cancel, a time_signal of no break
        duration = None if splice.duration is None else splice.duration * 1000 // 90_000
        return CuePoint(time, splice.out, duration, splice.event_id, section)
    kind = parameters.get("type")
    if kind not in ("SpliceOut", "SpliceIn"):
        return None  # a chapter, a navigation point: no ad marker
    out = kind == "SpliceOut"
    stated = parameters.get("duration")
    # Adobe's EXT-X-CUE: a duration of 0 means "not known".
    duration = round(_seconds(stated, "duration") * 1000) if out and stated is not None else None
    return _built(time, out, duration or None, _event_id(parameters.get("id")))


def parse_cue_point(body: bytes, *, timestamp: int) -> CuePoint | None:
    """The ad marker of an RTMP data message ``body`` (AMF0: ``onCuePoint`` and its object),
    sent at ``timestamp`` (ms); None when it is no ad marker.  Raises ``CuePointError``."""
    try:
        values = amf0.decode_all(body)
    except amf0.AmfError as error:
        raise CuePointError("amf", f"onCuePoint is not valid AMF0: {error}") from None
    if len(values) < 2 or values[0] != NAME or not isinstance(values[1], dict):
        raise CuePointError("cuepoint", "onCuePoint without its object")
    point: dict[str, Any] = values[1]
    if point.get("type") == YOUTUBE:
        return _youtube(point, timestamp)
    parameters = point.get("parameters", {})
    if not isinstance(parameters, dict):
        raise CuePointError("cuepoint", "onCuePoint parameters is not an object")
    return _adobe(point, parameters, timestamp)

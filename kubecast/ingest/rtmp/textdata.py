"""RTMP ``onTextData`` -> timed metadata (pure).

RTMP has no ID3 stream; timed text travels as an AMF0 data message ``onTextData`` with an object
whose ``text`` is the text (ffmpeg's FLV muxer writes a text subtitle stream so, ``{type: "Text",
text: …}``, at the subtitle's time).  Each becomes an ID3v2.4 tag of one ``TXXX`` frame
(description ``onTextData``, the text as its value) at the message's timestamp, and takes the
path of a TS contribution's ID3 tags from there (``kubecast.ingest.metadata`` judges it).  A
message that is not AMF0 or has no text is refused with a reason (``amf``, ``text``).
"""

from __future__ import annotations

from kubecast.media.contribution import Metadata
from kubecast.media.id3 import text_tag

from ..metadata import MetadataGate
from . import amf0

NAME = "onTextData"
PREFIX = amf0.encode(NAME)  # how a data message carrying one starts
TIMESCALE = 1000  # RTMP timestamps are milliseconds


def text_record(gate: MetadataGate, body: bytes, *, timestamp: int, newest: int | None) -> Metadata | None:
    """The timed metadata of an ``onTextData`` message at ``timestamp``, if ``gate`` lets it
    through (``newest``: the newest frame's timestamp), else None with the refusal in ``gate``."""
    try:
        values = amf0.decode_all(body)
    except amf0.AmfError as error:
        gate.refuse("amf", f"an onTextData message that is not AMF0: {error}")
        return None
    fields = values[1] if len(values) > 1 and isinstance(values[1], dict) else {}
    text = fields.get("text")
    if not isinstance(text, str) or not text:
        gate.refuse("text", "an onTextData message without a text")
        return None
    return gate.id3(text_tag(NAME, text), timescale=TIMESCALE, time=timestamp, now=newest)

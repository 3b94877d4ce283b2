"""The hand-over from an ingest to its encoder: one TCP connection per contribution.

The ingest connects to the encoder's contribution port and sends one hello line, then the
contribution as an FLV byte stream (``kubecast.media.flv``).  Closing the connection ends the
contribution; the encoder then waits for the next one and continues the channel timeline.
The hello line carries only facts the encoder reports in its status, never a stream key.

    KUBECAST-CONTRIBUTION 1 {"channel": "demo", "protocol": "RTMP", "session": "…"}\n
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

MAGIC = b"KUBECAST-CONTRIBUTION 1 "
MAX_HELLO = 4096


@dataclass(frozen=True)
class Hello:
    channel: str
    protocol: str  # RTMP, ...
    session: str  # the ingest's id for this publish session, for logs
    relayed: bool = False  # arrived through the other ingest's relay

    def encode(self) -> bytes:
        return MAGIC + json.dumps(asdict(self)).encode() + b"\n"


class HelloError(ValueError):
    pass


def parse_hello(line: bytes) -> Hello:
    if not line.startswith(MAGIC) or not line.endswith(b"\n") or len(line) > MAX_HELLO:
        raise HelloError("not a kubecast contribution hello line")
    try:
        fields = json.loads(line[len(MAGIC) :])
        return Hello(**fields)
    except (ValueError, TypeError) as error:
        raise HelloError(f"malformed contribution hello: {error}") from None

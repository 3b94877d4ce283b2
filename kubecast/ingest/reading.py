"""Reading a publisher's bytes with an idle timeout that a frozen ingest does not misread.

An ingest that was itself frozen (SIGSTOP, a paused container, a node stalled under memory
pressure) wakes with the publisher's bytes waiting in its socket and its timers long expired.
asyncio runs an expired timer before the read those bytes complete, so a plain
``wait_for(reader.read(...), timeout)`` closes a publisher that never stopped sending: the
publisher must reconnect (ffmpeg's ``tee`` with ``onfail=ignore`` never does), and a dual push
loses its second path for good although nothing but this process failed.  So a timeout is
looked at once more, briefly, before it counts.
"""

from __future__ import annotations

import asyncio

SECOND_LOOK = 0.5  # seconds; enough for the loop to take in what woke it


async def read_unless_idle(reader: asyncio.StreamReader, timeout: float, size: int = 65536) -> bytes | None:
    """The next bytes (``b""`` at the end of the stream), or None when none came for ``timeout``."""
    try:
        return await asyncio.wait_for(reader.read(size), timeout)
    except asyncio.TimeoutError:
        pass
    try:
        return await asyncio.wait_for(reader.read(size), min(SECOND_LOOK, timeout))
    except asyncio.TimeoutError:
        return None

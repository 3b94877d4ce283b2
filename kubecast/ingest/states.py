"""Which channels are stopped, from the file ``kubecast up`` rewrites (``--states``).

The ingest serves every channel of its ``ingest.json`` for its whole life; a channel stopped
or started meanwhile must not restart it (that would drop the other channels' publishers), so
the file is read again whenever it changes.  A file that cannot be read keeps the last good
answer and says why, once per change.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from pydantic import ValidationError

from kubecast.api.components import ChannelStates

from .publication import Publications

log = logging.getLogger("kubecast.ingest")

POLL_SECONDS = 0.25


def read_states(path: Path) -> frozenset[str]:
    """The stopped channels the file names (raises ``ValueError`` naming the file)."""
    try:
        return frozenset(ChannelStates.model_validate_json(path.read_bytes()).stopped)
    except (OSError, ValidationError) as error:
        raise ValueError(f"{path}: {error}") from None


async def follow_states(path: Path, publications: Publications) -> None:
    """Apply the file to ``publications`` now and on every change, until cancelled."""
    seen: tuple[int, int] | None = None
    while True:
        try:
            stat = path.stat()
            version: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            version = None
        if version != seen:
            seen = version
            try:
                publications.set_stopped(read_states(path))
            except ValueError as error:
                log.error("channel states unchanged: %s", error)
        await asyncio.sleep(POLL_SECONDS)

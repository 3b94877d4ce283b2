"""Reading a channel's timeline index for a summary: absent and unreadable both mean "none yet".

The packager and the endpoint read it themselves, because they must say why a stored index
could not be used; these are for readers that only show or derive something from it.
"""

from __future__ import annotations

from kubecast.media.timeline import Timeline

from . import layout
from .store import Store


def parse_timeline(data: bytes | None) -> Timeline | None:
    if data is None:
        return None
    try:
        return Timeline.from_json(data)
    except ValueError:
        return None


async def read_timeline(store: Store, channel: str) -> Timeline | None:
    return parse_timeline(await store.get(layout.timeline_key(channel)))


async def read_program_timeline(store: Store, channel: str, program: str) -> Timeline | None:
    """A program's recorded timeline (none: the packager has not recorded anything for it yet)."""
    return parse_timeline(await store.get(layout.program_timeline_key(channel, program)))


def read_timeline_sync(store: Store, channel: str) -> Timeline | None:
    return parse_timeline(store.get_sync(layout.timeline_key(channel)))

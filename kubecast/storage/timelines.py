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


def read_timeline_sync(store: Store, channel: str) -> Timeline | None:
    return parse_timeline(store.get_sync(layout.timeline_key(channel)))

"""kopf handlers: thin.  They parse the resource, call the pure builders and aggregators, apply
the children and patch the status; all decisions live in builders/ and status/, and the
store's reads and writes in store_io.py.  One module per resource (``channel``, with its indexes
and Deployment events in ``channel_events``, its reset in ``channel_reset``, its manual slate in
``channel_slate``, its manual cue in ``channel_cue`` (the three annotations' shared shape in
``channel_requests``), the Programs it stops in ``channel_stop`` and its per-object memo in
``channel_state``;
``endpoint``; ``program``) and what they share (``common``).  Importing this package registers
every handler in kopf's default registry.

Handlers kopf calls directly take ``namespace: str``: every kind here is namespaced, so kopf passes a
str, though its handler protocols allow None (hence the ``type: ignore[arg-type]`` on them)."""

from __future__ import annotations

from . import (
    channel,
    channel_cue,
    channel_events,
    channel_requests,
    channel_reset,
    channel_slate,
    channel_stop,
    common,
    endpoint,
    program,
)

__all__ = [
    "channel",
    "channel_cue",
    "channel_events",
    "channel_requests",
    "channel_reset",
    "channel_slate",
    "channel_stop",
    "common",
    "endpoint",
    "program",
]

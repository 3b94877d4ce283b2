"""Pure aggregators: what the children report -> the resource's status and conditions, one module
per resource (``channel``, ``endpoint``, ``program``) and what they share (``common``).

Conditions follow kstatus: ``Reconciling`` while the children have not caught up with the
spec, ``Stalled`` when they cannot without a change by the user (a missing Secret), and
``Ready`` as the summary.  ``lastTransitionTime`` only moves when a status changes.

A Channel's conditions have two writers: the reconcile side (``aggregate_channel``: Ready,
Reconciling, Stalled, from the children) and the stream report (``stream_report``: the data-plane
conditions, from the packager's timeline).  A merge patch replaces a list whole, so each
writer sends the full list: its own types freshly computed, the other writer's carried over
(``channel_conditions``).  The stream report sends a list only when its own part changed.
"""

from __future__ import annotations

from .channel import (
    WARN_WHEN_FALSE,
    aggregate_channel,
    aggregate_stream,
    data_plane_conditions,
    failover_message,
    ingest_url,
    preview_url,
    protocol_urls,
    service_address,
    stream_report,
)
from .common import (
    CHANNEL_CONDITIONS,
    DATA_PLANE_CONDITIONS,
    ENCODER_PROGRESS_FIELDS,
    PROGRESS_FIELDS,
    PROGRESS_SECONDS,
    STORAGE_SECRET_MISSING,
    WAITING_FOR_SECRET,
    ReadyEvent,
    channel_conditions,
    conditions,
    contained,
    endpoint_base,
    initial_conditions,
    progress_only,
    ready_event,
    replace_conditions,
    secret_problems,
    storage_secret_problem,
    timestamp,
    waiting_for_secret,
    without_progress,
)
from .endpoint import (
    aggregate_endpoint,
)
from .program import (
    aggregate_program,
    aggregate_recording,
)

__all__ = [
    "CHANNEL_CONDITIONS",
    "DATA_PLANE_CONDITIONS",
    "ENCODER_PROGRESS_FIELDS",
    "PROGRESS_FIELDS",
    "PROGRESS_SECONDS",
    "STORAGE_SECRET_MISSING",
    "WAITING_FOR_SECRET",
    "WARN_WHEN_FALSE",
    "aggregate_channel",
    "aggregate_endpoint",
    "aggregate_program",
    "aggregate_recording",
    "aggregate_stream",
    "channel_conditions",
    "conditions",
    "contained",
    "data_plane_conditions",
    "endpoint_base",
    "failover_message",
    "ingest_url",
    "initial_conditions",
    "preview_url",
    "ReadyEvent",
    "progress_only",
    "ready_event",
    "protocol_urls",
    "replace_conditions",
    "secret_problems",
    "service_address",
    "storage_secret_problem",
    "stream_report",
    "timestamp",
    "waiting_for_secret",
    "without_progress",
]

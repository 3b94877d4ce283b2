"""Object storage: the only state the components share."""

from kubecast.media.tracks import SegmentRecord, TrackInfo

from . import layout
from .records import (
    ChannelControl,
    ClockStart,
    EncoderProgress,
    Epoch,
    IngestInfo,
    ProgramRecord,
    SlateRequest,
    slate_switched,
)
from .store import InvalidKey, ObjectInfo, Store, check_key, storage_full
from .timelines import read_program_timeline, read_timeline, read_timeline_sync

__all__ = [
    "ChannelControl",
    "ClockStart",
    "EncoderProgress",
    "Epoch",
    "IngestInfo",
    "InvalidKey",
    "ObjectInfo",
    "ProgramRecord",
    "SegmentRecord",
    "SlateRequest",
    "Store",
    "TrackInfo",
    "check_key",
    "layout",
    "read_program_timeline",
    "read_timeline",
    "read_timeline_sync",
    "slate_switched",
    "storage_full",
]

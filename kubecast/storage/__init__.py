"""Object storage: the only state the components share."""

from kubecast.media.tracks import SegmentRecord, TrackInfo

from . import layout
from .cue_requests import CueRefused, cue_ended, cue_started
from .records import (
    ChannelControl,
    ClockStart,
    CueRequest,
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
    "CueRefused",
    "CueRequest",
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
    "cue_ended",
    "cue_started",
    "layout",
    "read_program_timeline",
    "read_timeline",
    "read_timeline_sync",
    "slate_switched",
    "storage_full",
]

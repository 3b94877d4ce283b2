"""What a contribution carries besides its pictures and sound, and what the channel's control
record asks for while it runs: ad markers (from the contribution and manual cues), ID3 tags and
the manual slate, each placed on the channel timeline of the connection's tracks.  Markers and
tags that arrive before the connection is placed wait and are placed with it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kubecast.api.components import EncoderConfig
from kubecast.media.contribution import Cue, Metadata
from kubecast.media.cues import TimelineCue
from kubecast.media.metadata import TimelineMetadata

from . import metrics
from .audio_tracks import AudioTracks
from .control import ControlFollower
from .ladder import LadderVideo
from .manual_cue import ManualCues
from .manual_slate import SlateSchedule
from .passthrough import PassthroughVideos
from .publisher import Publisher, now_utc
from .timing import VIDEO_TIMESCALE, ConnectionClock

log = logging.getLogger("kubecast.encoder")


@dataclass(frozen=True)
class ConnectionTracks:
    """The tracks of one connection, built once it is placed on the channel timeline."""

    video: PassthroughVideos | LadderVideo
    audio: AudioTracks
    clock: ConnectionClock
    slate: SlateSchedule | None = None  # the manual slate's segments (live encoding only)


class TimedEvents:
    """One contribution's markers, tags and manual requests, on their way to its tracks."""

    def __init__(self, config: EncoderConfig, publisher: Publisher, control: ControlFollower | None) -> None:
        self.config = config
        self.publisher = publisher
        self.control = control
        self._slate_ignored = False
        self._early_cues: list[Cue] = []  # before the connection is placed: placed with it
        self._early_metadata: list[Metadata] = []  # likewise
        self._manual_cues = ManualCues(config.segment_duration_ms)

    def arrive(self, record: Cue | Metadata, tracks: ConnectionTracks | None) -> None:
        if isinstance(record, Cue):
            self._cue(record, tracks)
        else:
            self._metadata(record, tracks)

    def placed(self, tracks: ConnectionTracks) -> None:
        """The connection is on the channel timeline: what came before it goes on now."""
        for cue in self._early_cues:
            self._cue(cue, tracks)
        for item in self._early_metadata:
            self._metadata(item, tracks)
        self._early_cues, self._early_metadata = [], []

    def follow_control(self, tracks: ConnectionTracks) -> None:
        self.follow_slate(tracks)
        self._follow_cues(tracks)

    def _cue(self, cue: Cue, tracks: ConnectionTracks | None) -> None:
        """An ad marker onto the channel timeline: the ladder forces an IDR at it and lists it when
        that frame is handed out; pass-through lists it at once, at its exact time."""
        if tracks is None:
            self._early_cues.append(cue)
            return
        self._place_cue(cue, tracks.clock.media_time(cue.splice_time, cue.timescale, VIDEO_TIMESCALE), tracks)

    def _place_cue(self, cue: Cue, media_time: int, tracks: ConnectionTracks, segment: int | None = None) -> None:
        log.info(
            "ad marker: splice %s (event %d) at media time %.3f s%s",
            "out" if cue.out else "in",
            cue.event_id,
            media_time / VIDEO_TIMESCALE,
            f" for {cue.duration / cue.timescale:.3f} s" if cue.duration is not None else "",
        )
        metrics.CUES.inc()
        if isinstance(tracks.video, LadderVideo):
            tracks.video.cue(cue, media_time, segment=segment)
        else:
            self.publisher.cue(TimelineCue.placed(cue, time=media_time, timescale=VIDEO_TIMESCALE))

    def _metadata(self, item: Metadata, tracks: ConnectionTracks | None) -> None:
        """ID3 tags onto the channel timeline at their exact media time (live encoding too: a tag
        needs no picture of its own, the TS segment carries it at its time)."""
        if tracks is None:
            self._early_metadata.append(item)
            return
        media_time = tracks.clock.media_time(item.time, item.timescale, VIDEO_TIMESCALE)
        metrics.METADATA.inc()
        self.publisher.metadata(TimelineMetadata.placed(item, time=media_time, timescale=VIDEO_TIMESCALE))

    def _follow_cues(self, tracks: ConnectionTracks) -> None:
        """The manual cues of the control record not placed yet (manual_cue.py)."""
        control = self.control.latest if self.control is not None else None
        start = self.publisher.progress.availability_start_time
        if control is None or not control.cues or start is None:
            return
        current = tracks.video.current_segment if isinstance(tracks.video, LadderVideo) else None
        for segment, cue in self._manual_cues.follow(
            control.cues, availability_start=start, now=now_utc(), current=current
        ):
            self._place_cue(cue, cue.splice_time, tracks, segment)  # already on the channel's 90 kHz media time

    def follow_slate(self, tracks: ConnectionTracks) -> None:
        """The manual slate's newest request onto this contribution's schedule (manual_slate.py)."""
        control = self.control.latest if self.control is not None else None
        request = control.slate if control is not None else None
        if tracks.slate is None or not isinstance(tracks.video, LadderVideo):
            if request is not None and request.on and not self._slate_ignored:
                self._slate_ignored = True
                log.warning("%s is passed through: a manual slate needs live encoding; ignored", self.config.channel)
            return
        start = self.publisher.progress.availability_start_time
        if start is None:
            return
        switch = tracks.slate.follow(request, availability_start=start, current=tracks.video.current_segment)
        if switch is not None:
            metrics.MANUAL_SLATES.labels("on" if switch.on else "off").inc()
            log.info("manual slate %s from segment %d", "on" if switch.on else "off", switch.first)

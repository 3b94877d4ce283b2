"""Pass-through video: the contribution's H.264 packaged as it is, cut at its own key frames.

Samples keep their bytes, durations and composition offsets.  The track's timescale is 90 kHz
when the source's clock converts into it exactly (RTMP's milliseconds, MPEG-TS's 90 kHz), the
source's own otherwise (a CMAF track's 15360, Smooth's 10 MHz), so no time is rounded; the
channel placement only adds one constant to every decode time.  A source whose key frames are
presented later than they are decoded (positive composition offsets with an edit list, as
ffmpeg writes) has every offset lowered by the key frame's, the edit list's shift, so that a
segment's decode time is the presentation time of its first picture (CMAF's negative offsets).
Closed captions in the samples' SEI stay where they are; the track says which 608 channels it
carries once it has seen them (``captions.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import av

from kubecast.media.contribution import Frame
from kubecast.media.mp4 import avc_codec_string, init_segment_video
from kubecast.media.tracks import TrackInfo
from kubecast.storage import layout

from .alignment import AlignmentGate
from .captions import SampleCaptions
from .rendition import estimate_frame_rate, frame_rate_text
from .segmenter import Emitted, EpochEnd, PendingEnd, PublishSegment, PublishTrack, Segment, TimedSample, TrackSegmenter
from .timing import VIDEO_TIMESCALE, ConnectionClock

DEFAULT_FRAME_RATE = 30  # for the duration of a contribution's last picture when its source does not say

log = logging.getLogger("kubecast.encoder")

TRACK_ID = "video"


def output_timescale(source_timescale: int) -> int:
    """90 kHz where the source's ticks are whole 90 kHz ticks, the source's own timescale otherwise."""
    return VIDEO_TIMESCALE if VIDEO_TIMESCALE % source_timescale == 0 else source_timescale


def track_id(index: int) -> str:
    """Rendition ids of a pass-through contribution: ``video``, then ``video1``, ``video2`` ..."""
    return TRACK_ID if index == 0 else f"{TRACK_ID}{index}"


class VideoPassthrough:
    def __init__(
        self,
        *,
        clock: ConnectionClock,
        segment_duration_ms: int,
        bandwidth_hint: int,
        publish_track: PublishTrack,
        publish_segment: PublishSegment,
        index: int = 0,
    ) -> None:
        self.track_id = track_id(index)
        self.clock = clock
        self.segment_duration_ms = segment_duration_ms
        self.segmenter: TrackSegmenter | None = None  # made with the first frame, in its timescale
        self.publish_track = publish_track
        self.publish_segment = publish_segment
        self.bandwidth_hint = bandwidth_hint
        self.avcc: bytes | None = None
        self.size: tuple[int, int] | None = None
        self.shift: int | None = None
        self.times: list[int] = []
        self.track: tuple[TrackInfo, bytes] | None = None  # as published
        self.captions = SampleCaptions(self.track_id)

    def configure(self, avcc: bytes) -> None:
        self.avcc = avcc
        self.size = None  # learnt from the next key frame

    def _learn_size(self, payload: bytes) -> None:
        decoder = av.CodecContext.create("h264", "r")
        decoder.extradata = self.avcc
        for frame in decoder.decode(av.Packet(payload)) + decoder.decode(None):
            self.size = (frame.width, frame.height)
            return

    def push(self, frame: Frame) -> None:
        if self.avcc is None:
            return
        if self.size is None:
            if not frame.keyframe:
                return
            self._learn_size(frame.data)
            if self.size is None:
                return
        if self.segmenter is None:
            timescale = output_timescale(frame.timescale)
            self.segmenter = TrackSegmenter(
                timescale,
                self.segment_duration_ms,
                video=True,
                default_duration=timescale // DEFAULT_FRAME_RATE,
                clock=self.clock,
            )
        timescale = self.segmenter.timescale
        decode_time = self.clock.media_time(frame.decode_time, frame.timescale, timescale)
        offset = frame.composition_offset * timescale // frame.timescale
        duration = frame.duration * timescale // frame.timescale if frame.duration else None
        if frame.keyframe or self.shift is None:
            self.shift = offset  # each segment's IDR then has decode time == presentation time
        if len(self.times) < 30:
            self.times.append((decode_time + offset) * VIDEO_TIMESCALE // timescale)
        self.captions.read(frame.data)
        sample = TimedSample(decode_time + self.shift, offset - self.shift, frame.keyframe, frame.data, duration)
        self._emit(self.segmenter.push(sample))

    def _emit(self, segments: Iterable[Emitted]) -> None:
        for segment in segments:
            if self.track is not None and self.track[0].captions != list(self.captions.channels.found):
                info, init = self.track
                self.track = (info.model_copy(update={"captions": list(self.captions.channels.found)}), init)
                self.publish_track(*self.track)
            if self.track is None:
                # a segment comes only after the size, the avcc and the segmenter
                assert self.size is not None and self.avcc is not None and self.segmenter is not None
                width, height = self.size
                timescale = self.segmenter.timescale
                init = init_segment_video(width=width, height=height, timescale=timescale, avcc=self.avcc)
                info = TrackInfo(
                    id=self.track_id,
                    kind="video",
                    codecs=avc_codec_string(self.avcc),
                    bandwidth=self.bandwidth_hint,
                    timescale=timescale,
                    init=layout.init_name(init),
                    width=width,
                    height=height,
                    frame_rate=frame_rate_text(estimate_frame_rate(self.times)),
                    captions=list(self.captions.channels.found),
                )
                self.track = (info, init)
                self.publish_track(info, init)
            self.publish_segment(self.track_id, segment)

    def finish(self, end: EpochEnd | None) -> None:
        if self.segmenter is not None:
            self._emit(self.segmenter.finish(end))


class PassthroughVideos:
    """Every video rendition of a pass-through contribution (tag track 0, 1, ...), published as
    one ABR set while their key frames stay aligned (``AlignmentGate``)."""

    def __init__(self, *, publish_segment: PublishSegment, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.publish_segment = publish_segment
        self.gate = AlignmentGate(primary=track_id(0))
        self.renditions: dict[int, VideoPassthrough] = {}

    def rendition(self, index: int) -> VideoPassthrough:
        if index not in self.renditions:
            self.renditions[index] = VideoPassthrough(index=index, publish_segment=self._offer, **self.kwargs)
        return self.renditions[index]

    @property
    def primary(self) -> VideoPassthrough:
        return self.rendition(0)

    def _offer(self, track: str, segment: Emitted) -> None:
        assert isinstance(segment, Segment)  # no parts: lowLatency needs live encoding
        for ready_track, ready in self.gate.offer(track, segment):
            self.publish_segment(ready_track, ready)

    def configure(self, index: int, avcc: bytes) -> None:
        self.rendition(index).configure(avcc)

    def push(self, frame: Frame) -> None:
        self.rendition(frame.track).push(frame)

    def drain(self) -> None:
        """Nothing is held back: every sample pushed is already in its segmenter."""

    def pending_ends(self) -> list[PendingEnd | None]:
        return [r.segmenter.pending for r in self.renditions.values() if r.segmenter is not None]

    def finish(self, end: EpochEnd | None) -> None:
        for index in sorted(self.renditions):
            self.renditions[index].finish(end)
        for ready_track, ready in self.gate.finish():
            self.publish_segment(ready_track, ready)

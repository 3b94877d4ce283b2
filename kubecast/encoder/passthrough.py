"""Pass-through video: the contribution's H.264 packaged as it is, cut at its own key frames."""

from __future__ import annotations

import logging

import av

from kubecast.media.flv import VideoPacket
from kubecast.media.mp4 import avc_codec_string, init_segment_video
from kubecast.media.tracks import TrackInfo
from kubecast.storage import layout

from .alignment import AlignmentGate
from .rendition import estimate_frame_rate, frame_rate_text
from .segmenter import EpochEnd, PendingEnd, TimedSample, TrackSegmenter
from .timing import VIDEO_TIMESCALE, ConnectionClock

log = logging.getLogger("kubecast.encoder")

TRACK_ID = "video"


def track_id(index: int) -> str:
    """Rendition ids of a pass-through contribution: ``video``, then ``video1``, ``video2`` ..."""
    return TRACK_ID if index == 0 else f"{TRACK_ID}{index}"


class VideoPassthrough:
    def __init__(self, *, clock: ConnectionClock, segment_duration_ms: int, bandwidth_hint: int, publish_track, publish_segment, index: int = 0):
        self.track_id = track_id(index)
        self.clock = clock
        self.segmenter = TrackSegmenter(VIDEO_TIMESCALE, segment_duration_ms, video=True, default_duration=3000)
        clock.follow(self.segmenter)
        self.publish_track = publish_track
        self.publish_segment = publish_segment
        self.bandwidth_hint = bandwidth_hint
        self.avcc: bytes | None = None
        self.size: tuple[int, int] | None = None
        self.shift: int | None = None
        self.times: list[int] = []
        self.track_published = False

    def configure(self, avcc: bytes) -> None:
        self.avcc = avcc
        self.size = None  # learnt from the next key frame

    def _learn_size(self, payload: bytes) -> None:
        decoder = av.CodecContext.create("h264", "r")
        decoder.extradata = self.avcc
        for frame in decoder.decode(av.Packet(payload)) + decoder.decode(None):
            self.size = (frame.width, frame.height)
            return

    def push(self, timestamp_ms: int, packet: VideoPacket, decoded_frame_hook=None) -> None:
        if self.avcc is None:
            return
        if self.size is None:
            if not packet.keyframe:
                return
            self._learn_size(packet.payload)
            if self.size is None:
                return
        decode_time = self.clock.media_time(timestamp_ms)
        offset = packet.composition_offset * VIDEO_TIMESCALE // 1000
        if packet.keyframe or self.shift is None:
            self.shift = offset  # each segment's IDR then has decode time == presentation time
        if len(self.times) < 30:
            self.times.append(decode_time + offset)
        sample = TimedSample(decode_time + self.shift, offset - self.shift, packet.keyframe, packet.payload)
        self._emit(self.segmenter.push(sample))

    def _emit(self, segments) -> None:
        for segment in segments:
            if not self.track_published:
                width, height = self.size
                init = init_segment_video(width=width, height=height, timescale=VIDEO_TIMESCALE, avcc=self.avcc)
                self.publish_track(
                    TrackInfo(id=self.track_id, kind="video", codecs=avc_codec_string(self.avcc), bandwidth=self.bandwidth_hint,
                              timescale=VIDEO_TIMESCALE, init=layout.init_name(init), width=width, height=height,
                              frame_rate=frame_rate_text(estimate_frame_rate(self.times))),
                    init,
                )
                self.track_published = True
            self.publish_segment(self.track_id, segment)

    def finish(self, end: EpochEnd | None) -> None:
        self._emit(self.segmenter.finish(end))


class PassthroughVideos:
    """Every video rendition of a pass-through contribution (tag track 0, 1, ...), published as
    one ABR set while their key frames stay aligned (``AlignmentGate``)."""

    def __init__(self, *, publish_segment, **kwargs):
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

    def _offer(self, track: str, segment) -> None:
        for ready_track, ready in self.gate.offer(track, segment):
            self.publish_segment(ready_track, ready)

    def configure(self, index: int, avcc: bytes) -> None:
        self.rendition(index).configure(avcc)

    def push(self, index: int, timestamp_ms: int, packet: VideoPacket) -> None:
        self.rendition(index).push(timestamp_ms, packet)

    def drain(self) -> None:
        """Nothing is held back: every sample pushed is already in its segmenter."""

    def pending_ends(self) -> list[PendingEnd | None]:
        return [r.segmenter.pending for r in self.renditions.values()]

    def finish(self, end: EpochEnd | None) -> None:
        for index in sorted(self.renditions):
            self.renditions[index].finish(end)
        for ready_track, ready in self.gate.finish():
            self.publish_segment(ready_track, ready)

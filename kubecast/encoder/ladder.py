"""Live ABR encoding: decode the contribution once, fan the pictures out to one encoder thread
per rendition, and decide the key frames here so that every rung gets the same ones."""

from __future__ import annotations

import logging

import av

from kubecast.api import Rendition
from kubecast.media.flv import VideoPacket
from kubecast.media.timeline import boundary_time, segment_number

from . import metrics
from .rendition import RenditionEncoder
from .timing import VIDEO_TIMESCALE, ConnectionClock, first_complete_segment

log = logging.getLogger("kubecast.encoder")


# Measured with bench/transcode.py on 2 cores (1080p30 source, 20 s; ratio = ours / ffmpeg CLI):
#   Default720p  (2.0 Mpx per frame): veryfast 1.05x real time, superfast 1.39x (ratio 1.12), ultrafast 1.71x
#   Default1080p (3.9 Mpx per frame): superfast 1.02x, ultrafast 1.07x (ratio 1.30)
# A live encoder that falls behind real time is useless, so an unset x264Preset takes the
# slowest (best) preset that keeps the ladder above real time with headroom on 2 cores.
PRESET_BY_PIXELS = ((1_200_000, "veryfast"), (2_200_000, "superfast"))


def default_x264_preset(ladder: list[Rendition]) -> str:
    pixels = sum(r.width * r.height for r in ladder)
    return next((preset for limit, preset in PRESET_BY_PIXELS if pixels <= limit), "ultrafast")


class LadderVideo:
    def __init__(self, *, renditions: list[Rendition], x264_preset: str, clock: ConnectionClock, segment_duration_ms: int, publish_track, publish_segment):
        self.clock = clock
        self.segment_duration_ms = segment_duration_ms
        self.decoder: av.VideoCodecContext | None = None
        self.current_segment: int | None = None
        self.latest_frame: av.VideoFrame | None = None
        self.media_seconds = 0.0
        self._gate: int | None = None  # first segment number this connection encodes
        self.workers = [
            RenditionEncoder(rendition=r, x264_preset=x264_preset, segment_duration_ms=segment_duration_ms,
                             publish_track=publish_track, publish_segment=publish_segment)
            for r in renditions
        ]
        for worker in self.workers:
            worker.start()

    def configure(self, avcc: bytes) -> None:
        self.decoder = av.CodecContext.create("h264", "r")
        self.decoder.extradata = avcc

    def push(self, timestamp_ms: int, packet: VideoPacket) -> None:
        if self.decoder is None:
            return
        decode_time = self.clock.media_time(timestamp_ms)
        av_packet = av.Packet(packet.payload)
        av_packet.dts = decode_time
        av_packet.pts = decode_time + packet.composition_offset * VIDEO_TIMESCALE // 1000
        try:
            frames = self.decoder.decode(av_packet)
        except av.error.FFmpegError as error:
            metrics.DECODE_ERRORS.inc()
            log.warning("dropping an undecodable video packet: %s", error)
            return
        for frame in frames:
            self._fan_out(frame)

    def _fan_out(self, frame: av.VideoFrame) -> None:
        if frame.pts is None:
            return
        number = segment_number(frame.pts, self.segment_duration_ms, VIDEO_TIMESCALE)
        if self._gate is None:
            # A connection that joined a running epoch starts at the first boundary it holds
            # whole (judged before the key-frame snap below, which would hide a partial one).
            self._gate = (first_complete_segment(frame.pts, self.segment_duration_ms, VIDEO_TIMESCALE) if self.clock.joined
                          else max(number, self.clock.placement.first_segment))
            if self.clock.discontinuity:
                for worker in self.workers:
                    worker.segmenter.mark_discontinuity()
        if number < self._gate:
            return
        force_key = self.current_segment is None or number > self.current_segment
        if force_key:
            self.current_segment = number
            # The contribution's pictures rarely fall exactly on n*D (millisecond timestamps,
            # B-frame delay, a connection's first picture): the key frame that opens segment n
            # is moved onto n*D, so every segment of every rendition and of either encoder starts
            # exactly there. Only this one picture is shown slightly longer or shorter.
            boundary = boundary_time(number, self.segment_duration_ms, VIDEO_TIMESCALE)
            if frame.pts - boundary < self.segment_duration_ms * VIDEO_TIMESCALE // 2000:
                frame.pts = boundary
        self.latest_frame = frame
        for worker in self.workers:
            worker.frames.put((frame, force_key))

    def failed(self) -> Exception | None:
        return next((w.error for w in self.workers if w.error), None)

    def busy_seconds(self) -> float:
        return max((w.busy_seconds for w in self.workers), default=0.0)

    def close(self) -> None:
        if self.decoder is not None:
            try:
                for frame in self.decoder.decode(None):
                    self._fan_out(frame)
            except av.error.FFmpegError:
                pass
        for worker in self.workers:
            worker.frames.put(None)
        for worker in self.workers:
            worker.join(60)

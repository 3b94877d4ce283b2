"""One rung of the ladder: scale, encode with libx264, cut into segments — in its own thread.

PyAV releases the GIL inside swscale and libx264, so one thread per rendition encodes the
ladder in parallel.  Each thread owns its reformatter and its encoder (neither is
thread-safe).  Key frames are forced at every segment boundary and suppressed everywhere
else (``scenecut=0``, a key-frame interval far beyond the segment), so every rendition cuts
the same frames into the same segments.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from fractions import Fraction

import av
from av.video.frame import PictureType
from av.video.reformatter import Interpolation, VideoReformatter

from kubecast.api import Rendition
from kubecast.media.h264 import avcc_from_annexb, to_length_prefixed
from kubecast.media.mp4 import avc_codec_string, init_segment_video
from kubecast.media.tracks import TrackInfo
from kubecast.storage import layout

from . import metrics
from .segmenter import TimedSample, TrackSegmenter
from .timing import VIDEO_TIMESCALE

log = logging.getLogger("kubecast.encoder")

QUEUE_FRAMES = 30  # about a second of back-pressure before the decoder waits for a slow rung


def frame_rate_text(rate: Fraction | None) -> str | None:
    if not rate:
        return None
    return str(int(rate)) if rate.denominator == 1 else f"{float(rate):.3f}"


def estimate_frame_rate(presentation_times: list[int]) -> Fraction | None:
    """Frames per second from 90 kHz timestamps, snapped to the common broadcast rates."""
    if len(presentation_times) < 5:
        return None
    ordered = sorted(presentation_times)
    span = ordered[-1] - ordered[0]
    if span <= 0:
        return None
    measured = (len(ordered) - 1) * VIDEO_TIMESCALE / span
    commons = (Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30), Fraction(50), Fraction(60000, 1001), Fraction(60))
    nearest = min(commons, key=lambda rate: abs(measured - float(rate)))
    if abs(measured - float(nearest)) < 0.02 * float(nearest):
        return nearest
    return Fraction(round(measured * 1000), 1000)


class RenditionEncoder(threading.Thread):
    def __init__(self, *, rendition: Rendition, x264_preset: str, segment_duration_ms: int, publish_track, publish_segment):
        super().__init__(name=f"rendition-{rendition.name}", daemon=True)
        self.rendition = rendition
        self.x264_preset = x264_preset
        self.segment_duration_ms = segment_duration_ms
        self.publish_track = publish_track
        self.publish_segment = publish_segment
        self.frames: queue.Queue = queue.Queue(QUEUE_FRAMES)
        self.segmenter = TrackSegmenter(VIDEO_TIMESCALE, segment_duration_ms, video=True, default_duration=3000)
        self.busy_seconds = 0.0
        self.error: Exception | None = None
        self._encoder: av.VideoCodecContext | None = None
        self._reformatter = VideoReformatter()
        self._reorder_delay: int | None = None
        self._track_published = False
        self._input_times: list[int] = []

    def _open_encoder(self) -> av.VideoCodecContext:
        rendition = self.rendition
        encoder = av.CodecContext.create("libx264", "w")
        encoder.width, encoder.height, encoder.pix_fmt = rendition.width, rendition.height, "yuv420p"
        encoder.time_base = Fraction(1, VIDEO_TIMESCALE)
        rate = estimate_frame_rate(self._input_times) or Fraction(30)
        encoder.framerate = rate
        encoder.bit_rate = rendition.bitrate
        encoder.flags |= av.codec.context.Flags.global_header  # extradata = avcC for the init segment
        encoder.thread_count = 1  # parallelism comes from one thread per rung, without frame-thread delay
        gop = 10 * int(float(rate) * self.segment_duration_ms / 1000)
        encoder.options = {
            "preset": self.x264_preset,
            "profile": rendition.profile.value.lower(),
            # No B-frames: decode order is presentation order, so every segment starts at
            # exactly n*D for every reader (FFmpeg shifts presentation times of fragments with
            # negative composition offsets), and the encoder adds no reorder delay to latency.
            "bf": "0",
            "forced-idr": "1",
            "maxrate": str(rendition.bitrate * 11 // 10),
            "bufsize": str(rendition.bitrate * 2),
            # Short lookahead and no frame threads keep the encoder's delay to a few frames,
            # which is what segment publish latency is made of.
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:open-gop=0:rc-lookahead=8:sync-lookahead=0",
        }
        encoder.open()
        return encoder

    def run(self) -> None:
        try:
            while True:
                item = self.frames.get()
                if item is None:
                    break
                frame, force_key = item
                started = time.perf_counter()
                self._encode(frame, force_key)
                self.busy_seconds += time.perf_counter() - started
            if self._encoder is not None:
                for packet in self._encoder.encode(None):
                    self._handle(packet)
            self._emit(self.segmenter.flush())
        except Exception as error:  # noqa: BLE001 - reported by the pipeline, which stops the contribution
            log.exception("rendition %s failed", self.rendition.name)
            self.error = error
            while self.frames.get() is not None:  # keep draining so the decoder never blocks on us
                pass

    def _encode(self, frame: av.VideoFrame, force_key: bool) -> None:
        if len(self._input_times) < 31 and not force_key:  # a segment's first picture may have been moved onto n*D
            self._input_times.append(frame.pts)
        if self._encoder is None:
            self._encoder = self._open_encoder()
        scaled = self._reformatter.reformat(frame, width=self.rendition.width, height=self.rendition.height, format="yuv420p", interpolation=Interpolation.BILINEAR)
        scaled.pts = frame.pts
        scaled.time_base = Fraction(1, VIDEO_TIMESCALE)
        scaled.pict_type = PictureType.I if force_key else PictureType.NONE
        for packet in self._encoder.encode(scaled):
            self._handle(packet)
        metrics.FRAMES.labels(self.rendition.name).inc()

    def _handle(self, packet: av.Packet) -> None:
        if packet.is_keyframe or self._reorder_delay is None:
            # Shift decode times so that each segment's IDR has decode time == presentation
            # time == n*D. The shift is re-taken at every IDR because x264's decode times follow
            # the (not always regular) presentation times of earlier pictures; a change of shift
            # is absorbed by the duration of the segment's last sample, so tfdt stays continuous.
            self._reorder_delay = packet.pts - packet.dts
        decode_time = packet.dts + self._reorder_delay
        self._emit(self.segmenter.push(TimedSample(decode_time, packet.pts - decode_time, packet.is_keyframe, to_length_prefixed(bytes(packet)))))

    def _emit(self, segments) -> None:
        for segment in segments:
            if not self._track_published:
                self._publish_track()
            self.publish_segment(self.rendition.name, segment)

    def _publish_track(self) -> None:
        avcc = avcc_from_annexb(bytes(self._encoder.extradata))
        init = init_segment_video(width=self.rendition.width, height=self.rendition.height, timescale=VIDEO_TIMESCALE, avcc=avcc)
        info = TrackInfo(
            id=self.rendition.name, kind="video", codecs=avc_codec_string(avcc), bandwidth=self.rendition.bitrate,
            timescale=VIDEO_TIMESCALE, init=layout.init_name(init), width=self.rendition.width, height=self.rendition.height,
            frame_rate=frame_rate_text(estimate_frame_rate(self._input_times)),
        )
        self.publish_track(info, init)
        self._track_published = True

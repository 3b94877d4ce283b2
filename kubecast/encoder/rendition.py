"""One rung of the ladder: scale, encode with libx264, cut into segments — in its own thread.

PyAV releases the GIL inside swscale and libx264, so one thread per rendition encodes the
ladder in parallel.  Each thread owns its reformatter and its encoder (neither is
thread-safe).  Pictures come with their slot of the constant-frame-rate grid
(``framerate.py``); the encoder's timestamps are slot numbers, so every sample lasts one slot.
Key frames are forced at the first slot of every segment and suppressed everywhere else
(``scenecut=0``, a key-frame interval far beyond the segment), so every rendition cuts the
same frames into the same segments.  Each picture's closed captions (``captions.py``) are
written into the picture encoded for its slot.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction

import av
from av.video.frame import PictureType
from av.video.reformatter import Interpolation, VideoReformatter

from kubecast.api import Rendition
from kubecast.liveness import HEARTBEATS, Heartbeat
from kubecast.media.captions import CaptionChannels, insert_sei, sei_nal
from kubecast.media.h264 import avcc_from_annexb, to_length_prefixed
from kubecast.media.mp4 import avc_codec_string, init_segment_video
from kubecast.media.tracks import TrackInfo
from kubecast.storage import layout

from . import metrics
from .framerate import FrameGrid, fit_rate, snap_rate
from .segmenter import Emitted, EpochEnd, PublishSegment, TimedSample, TrackSegmenter

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
    fit = fit_rate(presentation_times)
    return snap_rate(fit.rate, fit.error) if fit is not None else None


@dataclass(frozen=True)
class SlotFrame:
    """One picture for one slot of the grid (a repeated picture comes once per slot)."""

    frame: av.VideoFrame
    slot: int
    force_key: bool
    captions: bytes = b""  # cc_data triplets of the pictures that led to this slot (none for a repeat)


class RenditionEncoder(threading.Thread):
    def __init__(
        self,
        *,
        rendition: Rendition,
        x264_preset: str,
        grid: FrameGrid,
        publish_track: Callable[[TrackInfo, bytes], None],
        publish_segment: PublishSegment,
        caption_channels: CaptionChannels | None = None,
    ) -> None:
        super().__init__(name=f"rendition-{rendition.name}", daemon=True)
        self.rendition = rendition
        self.x264_preset = x264_preset
        self.grid = grid
        self.publish_track = publish_track
        self.publish_segment = publish_segment
        self.frames: queue.Queue[SlotFrame | None] = queue.Queue(QUEUE_FRAMES)
        self.segmenter = TrackSegmenter(
            grid.timescale,
            grid.segment_duration_ms,
            video=True,
            default_duration=grid.slot_ticks,
            part_duration_ms=grid.part_duration_ms,
        )
        self.busy_seconds = 0.0
        self.error: Exception | None = None
        self._encoder: av.VideoCodecContext | None = None
        self._reformatter = VideoReformatter()
        self._track: tuple[TrackInfo, bytes] | None = None  # as published
        self._last_slot: int | None = None
        self.caption_channels = caption_channels or CaptionChannels()
        self._captions: dict[int, bytes] = {}  # slot -> cc_data, until the encoder emits that slot's picture

    def _open_encoder(self) -> av.VideoCodecContext:
        rendition, rate = self.rendition, self.grid.rate
        encoder = av.CodecContext.create("libx264", "w")
        encoder.width, encoder.height, encoder.pix_fmt = rendition.width, rendition.height, "yuv420p"
        # One tick per slot: the encoder's timestamps are slot numbers, and its SPS states the rate.
        encoder.time_base = 1 / rate
        encoder.framerate = rate
        encoder.bit_rate = rendition.bitrate
        encoder.flags |= av.codec.context.Flags.global_header  # extradata = avcC for the init segment
        encoder.thread_count = 1  # parallelism comes from one thread per rung, without frame-thread delay
        gop = 10 * self.grid.first_slot(1)
        encoder.options = {
            "preset": self.x264_preset,
            "profile": rendition.profile.value.lower(),
            # No B-frames: decode order is presentation order, so every segment starts at
            # exactly its first slot for every reader (FFmpeg shifts presentation times of
            # fragments with negative composition offsets), and the encoder adds no reorder
            # delay to latency.
            "bf": "0",
            "forced-idr": "1",
            # The slots' captions are written by _handle: libx264 would copy a repeated picture's.
            "a53cc": "0",
            "maxrate": str(rendition.bitrate * 11 // 10),
            "bufsize": str(rendition.bitrate * 2),
            # Short lookahead and no frame threads keep the encoder's delay to a few frames,
            # which is what segment publish latency is made of.
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:open-gop=0:rc-lookahead=8:sync-lookahead=0",
        }
        encoder.open()
        return encoder

    def run(self) -> None:
        with HEARTBEATS.watch(f"encode {self.rendition.name}") as heartbeat:
            self._run(heartbeat)

    def _run(self, heartbeat: Heartbeat) -> None:
        try:
            while True:
                item = self.frames.get()  # idle while it waits: no contribution is no hang
                if item is None:
                    break
                started = time.perf_counter()
                with heartbeat.busy():
                    self._encode(item)
                self.busy_seconds += time.perf_counter() - started
            if self._encoder is not None:
                for packet in self._encoder.encode(None):
                    self._handle(packet)
        except Exception as error:  # noqa: BLE001 - reported by the pipeline, which stops the contribution
            log.exception("rendition %s failed", self.rendition.name)
            self.error = error
            while self.frames.get() is not None:  # keep draining so the decoder never blocks on us
                pass

    def finish(self, end: EpochEnd | None) -> None:
        """After the thread has ended: the open segment, if every track ends at or after it."""
        self._emit(self.segmenter.finish(end))

    def _encode(self, item: SlotFrame) -> None:
        if self._encoder is None:
            self._encoder = self._open_encoder()
        scaled = self._reformatter.reformat(
            item.frame,
            width=self.rendition.width,
            height=self.rendition.height,
            format="yuv420p",
            interpolation=Interpolation.BILINEAR,
        )
        scaled.pts = item.slot
        scaled.time_base = 1 / self.grid.rate
        scaled.pict_type = PictureType.I if item.force_key else PictureType.NONE
        if item.captions:
            self._captions[item.slot] = item.captions
        for packet in self._encoder.encode(scaled):
            self._handle(packet)
        metrics.FRAMES.labels(self.rendition.name).inc()

    def _handle(self, packet: av.Packet[av.VideoStream]) -> None:
        slot = packet.pts  # without B-frames, decode time == presentation time
        assert slot is not None  # the encoder stamps every packet
        if self._last_slot is not None and slot != self._last_slot + 1:
            # The ladder resumed after a jump of the contribution's clock: the segment before
            # the gap ends with its last picture, and the next one follows a gap.
            self._emit(self.segmenter.flush())
            self.segmenter.mark_discontinuity()
        self._last_slot = slot
        data = to_length_prefixed(bytes(packet))
        if captions := self._captions.pop(slot, None):
            data = insert_sei(data, sei_nal(captions))
        sample = TimedSample(self.grid.time_of(slot), 0, packet.is_keyframe, data)
        self._emit(self.segmenter.push(sample))

    def _emit(self, segments: Iterable[Emitted]) -> None:
        for segment in segments:
            if self._track is None:
                self._publish_track()
            elif self._track[0].captions != list(self.caption_channels.found):
                # The contribution's captions were found (or another channel): the manifests signal them.
                info, init = self._track
                self._track = (info.model_copy(update={"captions": list(self.caption_channels.found)}), init)
                self.publish_track(*self._track)
            self.publish_segment(self.rendition.name, segment)

    def _publish_track(self) -> None:
        assert self._encoder is not None and self._encoder.extradata is not None  # published after the first packet
        avcc = avcc_from_annexb(bytes(self._encoder.extradata))
        timescale = self.grid.timescale
        init = init_segment_video(
            width=self.rendition.width, height=self.rendition.height, timescale=timescale, avcc=avcc
        )
        info = TrackInfo(
            id=self.rendition.name,
            kind="video",
            codecs=avc_codec_string(avcc),
            bandwidth=self.rendition.bitrate,
            timescale=timescale,
            init=layout.init_name(init),
            width=self.rendition.width,
            height=self.rendition.height,
            frame_rate=frame_rate_text(self.grid.rate),
            captions=list(self.caption_channels.found),
        )
        self._track = (info, init)
        self.publish_track(info, init)

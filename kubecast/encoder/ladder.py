"""Live ABR encoding: decode the contribution once, put its pictures on a constant-frame-rate
grid of the channel clock (``framerate.py``), and fan them out to one encoder thread per
rendition.  The key frames are decided here, so that every rung gets the same ones: the first
slot of every segment, and the slot of every ad marker's splice (``cue``).

A splice point gets an IDR frame in every rendition, on the slot nearest the splice time, but
no segment boundary: segment n still covers [n*D, (n+1)*D), so numbering, the two encoders'
agreement and every player's arithmetic stay as they are, and the cue states the exact time
of that frame.  A splicer or a server-side ad inserter can cut at that IDR without
re-encoding; one that replaces whole segments replaces from the boundary around it.  A splice
asked for a segment's start (a manual cue) goes on that segment's first slot, which is a key frame
already, whatever the frame rate (the nearest slot may lie before the boundary)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from fractions import Fraction

import av

from kubecast.api import Rendition
from kubecast.media.contribution import Cue, Frame
from kubecast.media.cues import TimelineCue

from . import metrics
from .captions import PictureCaptions
from .card import card_frame
from .framerate import SOURCE_TIMESCALE, FrameGrid, FrameRateConverter, choose_frame_rate
from .manual_slate import SlateSchedule
from .rendition import RenditionEncoder, SlotFrame
from .segmenter import EpochEnd, PendingEnd, PublishSegment, PublishTrack
from .timing import VIDEO_TIMESCALE, ConnectionClock

log = logging.getLogger("kubecast.encoder")

# Decoded pictures held while the frame rate is undecided (a second at most is needed).
MAX_UNDECIDED = 150
# A hole in the contribution longer than this many segments is a jump of its clock, not lost
# pictures: it is not filled with repeats, and encoding resumes at the next boundary.
MAX_FILL_SEGMENTS = 2


# Measured with bench/transcode.py on 2 cores (1080p30 source, 20 s; ratio = ours / ffmpeg CLI):
#   Default720p  (2.0 Mpx per frame): veryfast 1.05x real time, superfast 1.39x (ratio 1.12), ultrafast 1.71x
#   Default1080p (3.9 Mpx per frame): superfast 1.02x, ultrafast 1.07x (ratio 1.30)
# A live encoder that falls behind real time is useless, so an unset x264Preset takes the
# slowest (best) preset that keeps the ladder above real time with headroom on 2 cores.
PRESET_BY_PIXELS = ((1_200_000, "veryfast"), (2_200_000, "superfast"))


def default_x264_preset(ladder: list[Rendition]) -> str:
    pixels = sum(r.width * r.height for r in ladder)
    return next((preset for limit, preset in PRESET_BY_PIXELS if pixels <= limit), "ultrafast")


def signalled_rate(decoder: av.VideoCodecContext) -> Fraction | None:
    """The frame rate the H.264 stream's SPS states, if any (FFmpeg reads it on decoding)."""
    try:
        rate = decoder.framerate
    except (AttributeError, ValueError, ZeroDivisionError):
        return None
    return Fraction(rate) if rate else None


class LadderVideo:
    def __init__(
        self,
        *,
        renditions: list[Rendition],
        x264_preset: str,
        clock: ConnectionClock,
        segment_duration_ms: int,
        publish_track: PublishTrack,
        publish_segment: PublishSegment,
        publish_cue: Callable[[TimelineCue], None],
        slate: SlateSchedule | None = None,
        card_title: str = "",
        part_duration_ms: int | None = None,
    ) -> None:
        self.part_duration_ms = part_duration_ms
        self.clock = clock
        self.slate = slate
        self.card_title = card_title
        self._card: av.VideoFrame | None = None
        self.publish_cue = publish_cue
        # (channel media time at 90 kHz, or the segment it starts, of a splice still ahead; the cue)
        self._cues: list[tuple[int | None, int | None, Cue]] = []
        self.renditions = renditions
        self.x264_preset = x264_preset
        self.segment_duration_ms = segment_duration_ms
        self.publish_track = publish_track
        self.publish_segment = publish_segment
        self.decoder: av.VideoCodecContext | None = None
        self.current_segment: int | None = None
        self.latest_frame: av.VideoFrame | None = None
        self.grid: FrameGrid | None = None
        self.workers: list[RenditionEncoder] = []
        self._undecided: list[av.VideoFrame] = []
        self._converter: FrameRateConverter | None = None
        self._start_slot: int | None = None  # first slot this connection encodes (a segment's first)
        self._previous: av.VideoFrame | None = None
        self._last_slot: int | None = None
        self.captions = PictureCaptions()

    def configure(self, avcc: bytes) -> None:
        self.decoder = av.CodecContext.create("h264", "r")
        self.decoder.extradata = avcc

    @property
    def media_seconds(self) -> float:
        """Channel media time of the newest picture handed to the renditions."""
        return float(self._last_slot / self.grid.rate) if self.grid is not None and self._last_slot is not None else 0.0

    def push(self, frame: Frame) -> None:
        if self.decoder is None:
            return
        av_packet = av.Packet(frame.data)
        av_packet.dts = self.clock.media_time(frame.decode_time, frame.timescale, VIDEO_TIMESCALE)
        av_packet.pts = self.clock.media_time(frame.presentation_time, frame.timescale, VIDEO_TIMESCALE)
        try:
            frames = self.decoder.decode(av_packet)
        except av.error.FFmpegError as error:
            metrics.DECODE_ERRORS.inc()
            log.warning("dropping an undecodable video packet: %s", error)
            return
        for picture in frames:
            self._arrive(picture)

    def _arrive(self, frame: av.VideoFrame, *, final: bool = False) -> None:
        if frame.pts is not None:
            self._undecided.append(frame)
        if self.grid is None:
            times = [f.pts for f in self._undecided if f.pts is not None]  # all are: only timed frames wait
            signalled = signalled_rate(self.decoder) if self.decoder is not None else None
            rate = choose_frame_rate(signalled=signalled, times=times, final=final or len(times) >= MAX_UNDECIDED)
            if rate is None:
                return
            self._start(rate)
        waiting, self._undecided = self._undecided, []
        for held in waiting:
            self._convert(held)

    def _start(self, rate: Fraction) -> None:
        self.grid = FrameGrid(rate, self.segment_duration_ms, self.part_duration_ms)
        log.info("encoding at %s frames per second (timescale %d)", rate, self.grid.timescale)
        slots_per_segment = self.grid.first_slot(1)
        self._converter = FrameRateConverter(max_fill=MAX_FILL_SEGMENTS * slots_per_segment)
        self.workers = [
            RenditionEncoder(
                rendition=r,
                x264_preset=self.x264_preset,
                grid=self.grid,
                caption_channels=self.captions.channels,
                publish_track=self.publish_track,
                publish_segment=self.publish_segment,
            )
            for r in self.renditions
        ]
        for worker in self.workers:
            worker.start()

    def _gate(self, number: int) -> None:
        """Encode from the first slot of segment ``number`` on: the first picture that comes
        fills the slots from there to its own (a segment always starts at its first slot)."""
        assert self.grid is not None and self._converter is not None  # _start made both
        self._start_slot = self.grid.first_slot(number)
        self._converter.next_slot = self._start_slot
        self._previous = None

    def _convert(self, frame: av.VideoFrame) -> None:
        grid, converter = self.grid, self._converter
        assert grid is not None and converter is not None and frame.pts is not None  # converted once started, timed
        slot = grid.slot_of(frame.pts, SOURCE_TIMESCALE)
        self.captions.arrive(frame)
        if self._start_slot is None:
            # The connection's placement says where the renditions start (their segmenters take
            # the grid as gated here): the slots of the segment it caught only part of, when it
            # joined a running epoch, are never encoded.
            self._gate(self.clock.first_segment(frame.pts, SOURCE_TIMESCALE, self.segment_duration_ms))
            if self.clock.discontinuity:
                for worker in self.workers:
                    worker.segmenter.mark_discontinuity()
        assert self._start_slot is not None  # _gate set it
        if slot < self._start_slot:
            self.captions.discard()
            return
        placed = converter.place(slot)
        if placed.jumped:
            # The contribution's clock jumped: resume at the next boundary, never reusing a number.
            number = grid.segment_of(slot)
            if grid.first_slot(number) < slot:
                number += 1
            if self.current_segment is not None:
                number = max(number, self.current_segment + 1)
            log.warning("the contribution's timestamps jumped; encoding resumes at segment %d", number)
            self._gate(number)
            if slot < self._start_slot:
                self.captions.discard()
                return
            placed = converter.place(slot)
        if placed.slot is None:
            metrics.FRAMES_DROPPED.inc()
            return  # its captions go with the next picture that takes a slot
        if placed.repeat:
            metrics.FRAMES_DUPLICATED.inc(len(placed.repeat))
        for repeated in placed.repeat:
            self._hand_out(self._previous or frame, repeated)
        self._hand_out(frame, placed.slot, self.captions.take())
        self._previous = frame

    def cue(self, cue: Cue, media_time: int, *, segment: int | None = None) -> None:
        """A splice at ``media_time`` (channel media time, 90 kHz): an IDR in every rendition on
        the slot nearest it, or on the first slot of ``segment`` when given (either way, on the
        next one handed out if that slot has gone by)."""
        self._cues.append((None if segment is not None else media_time, segment, cue))

    def _cue_slot(self, media_time: int | None, segment: int | None) -> int:
        assert self.grid is not None  # asked once started
        if segment is not None:
            return self.grid.first_slot(segment)
        assert media_time is not None
        return self.grid.slot_of(media_time, SOURCE_TIMESCALE)

    def _hand_out(self, frame: av.VideoFrame, slot: int, captions: bytes = b"") -> None:
        assert self.grid is not None  # handed out once started
        number = self.grid.segment_of(slot)
        force_key = self.current_segment is None or number > self.current_segment
        if force_key:
            self.current_segment = number
        if self.slate is not None and self.slate.on(number):
            # The manual slate: the card in the slot, the same slots and key frames as the picture's.
            if self._card is None:
                top = self.renditions[0]
                self._card = card_frame(top.width, top.height, self.card_title)
            frame, captions = self._card, b""
        if self._cues:
            due = [cue for time, segment, cue in self._cues if self._cue_slot(time, segment) <= slot]
            if due:
                force_key = True
                self._cues = [entry for entry in self._cues if entry[2] not in due]
                for cue in due:
                    self.publish_cue(
                        TimelineCue.placed(cue, time=self.grid.time_of(slot), timescale=self.grid.timescale)
                    )
        self.latest_frame = frame
        self._last_slot = slot
        for worker in self.workers:
            worker.frames.put(SlotFrame(frame, slot, force_key, captions))

    def failed(self) -> Exception | None:
        return next((w.error for w in self.workers if w.error), None)

    def busy_seconds(self) -> float:
        return max((w.busy_seconds for w in self.workers), default=0.0)

    def drain(self, *, pad: bool = False) -> int | None:
        """Encode everything received; the segments still open stay open for ``finish``.
        ``pad``: the last picture is repeated to the end of its segment (a slate follows from the
        boundary on); returns that boundary's segment number."""
        if self.decoder is not None:
            try:
                for frame in self.decoder.decode(None):
                    self._arrive(frame)
            except av.error.FFmpegError:
                pass
        if self.grid is None and self._undecided:
            self._arrive(self._undecided.pop(), final=True)
        boundary = None
        if pad and self.grid is not None and self._last_slot is not None and self.latest_frame is not None:
            boundary = self.grid.segment_of(self._last_slot) + 1
            for slot in range(self._last_slot + 1, self.grid.first_slot(boundary)):
                self._hand_out(self.latest_frame, slot)
        for worker in self.workers:
            worker.frames.put(None)
        for worker in self.workers:
            worker.join(60)
        return boundary

    def pending_ends(self) -> list[PendingEnd | None]:
        return [w.segmenter.pending for w in self.workers]

    def finish(self, end: EpochEnd | None) -> None:
        for worker in self.workers:
            if not worker.is_alive() and worker.error is None:
                worker.finish(end)

"""Audio: for a live-encoded channel, decoded once, resampled to 48 kHz stereo and encoded once to
AAC-LC (``aac.py``) for every rendition, or copied when the contribution sends just that
(``aac_copy.py``); for a pass-through channel, passed through unchanged.  Timestamps are
running sample counts anchored at the first frame, so audio segments are continuous to the
sample whatever jitter the contribution's timestamps carry (RTMP's are whole milliseconds).

A contribution with several languages (an MPEG-TS with an AAC PID per language) has one such
track per language, each on the same frame grid and segment numbers: ``audio`` for the first,
``audio-<n>`` for the contribution's audio track n (``audio_track_id``), each with its language."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Any

import av

from kubecast.media.contribution import Frame
from kubecast.media.mp4 import aac_codec_string, init_segment_audio
from kubecast.media.timeline import boundary_time, segment_number
from kubecast.media.tracks import TrackInfo
from kubecast.storage import layout

from . import metrics
from .aac import (
    AAC_FRAME,
    SAMPLE_RATE,
    aac_encoder,
    aac_track,
    asc_sample_rate_and_channels,
    mdhd_language,
    silent_frame,
)
from .aac_copy import BITRATE_TOLERANCE, SegmentBitrate, copy_refusal, silent_aac_frame
from .manual_slate import SlateSchedule
from .segmenter import Emitted, EpochEnd, PendingEnd, PublishSegment, PublishTrack, TimedSample, TrackSegmenter
from .timing import ConnectionClock

log = logging.getLogger("kubecast.encoder")

# A contribution whose timestamps drift further than this from the sample count is re-anchored.
RESYNC_SAMPLES = 4 * AAC_FRAME


def on_frame_grid(time: int, origin: int = 0) -> int:
    """Audio frames sit on one grid per epoch, 1024-sample frames counted from the epoch's first
    boundary (``origin``), so the two encoders' frames have the same times even though each
    started its own AAC stream at a different moment (their segments then follow each other
    without a gap or an overlap), and a contribution's audio starts on the same boundary as
    its video, not up to half a frame after it."""
    return origin + (time - origin + AAC_FRAME // 2) // AAC_FRAME * AAC_FRAME


def anchored(next_pts: int | None, expected: int, origin: Callable[[], int]) -> int | None:
    """Where a frame the contribution times at ``expected`` goes: at the running count
    ``next_pts`` while the contribution's clock stays within ``RESYNC_SAMPLES`` of it, on the
    frame grid from ``origin()`` at the first frame and when the clock moved ahead (a gap), and
    nowhere (None: dropped) when it went back: those times are given out already, and frames
    placed there again would overlap the ones before (a reader sees the decode times go back).
    The video drops the pictures whose slots are filled the same way (``FrameRateConverter``)."""
    if next_pts is not None and abs(expected - next_pts) <= RESYNC_SAMPLES:
        return next_pts
    time = on_frame_grid(expected, origin())
    return None if next_pts is not None and time < next_pts else time


def epoch_origin(clock: ConnectionClock, segment_duration_ms: int, timescale: int) -> int:
    """The audio grid's origin: the first boundary of the epoch the connection is placed in."""
    return boundary_time(clock.placement.first_segment, segment_duration_ms, timescale)


def audio_track_id(track: int) -> str:
    """The output track of the contribution's audio track ``track`` (0: ``audio``, as ever)."""
    return "audio" if track == 0 else f"audio-{track}"


def silence(frame: av.AudioFrame, ranges: list[tuple[int, int]]) -> None:
    """Zero the samples of a planar float ``frame`` that fall in ``ranges`` (its own pts units)."""
    assert frame.pts is not None  # placed on the channel timeline before it is silenced
    for plane in frame.planes:
        data = bytearray(bytes(plane))
        for start, end in ranges:
            first, last = max(start - frame.pts, 0), min(end - frame.pts, frame.samples)
            data[4 * first : 4 * last] = bytes(4 * (last - first))
        plane.update(bytes(data))


class _AudioTrack:
    def __init__(
        self,
        *,
        clock: ConnectionClock,
        segment_duration_ms: int,
        timescale: int,
        publish_track: PublishTrack,
        publish_segment: PublishSegment,
        track_id: str = "audio",
        language: str | None = None,
        part_duration_ms: int | None = None,
    ) -> None:
        self.track_id = track_id
        self.language = language
        self.timescale = timescale
        self.segment_duration_ms = segment_duration_ms
        self.segmenter = TrackSegmenter(
            timescale,
            segment_duration_ms,
            video=False,
            default_duration=AAC_FRAME,
            clock=clock,
            part_duration_ms=part_duration_ms,
        )
        self.publish_track = publish_track
        self.publish_segment = publish_segment
        self._track: tuple[TrackInfo, bytes] | None = None
        self._published = False

    def set_track(self, info: TrackInfo, init: bytes) -> None:
        self._track = (info, init)

    def emit(self, segments: Iterable[Emitted]) -> None:
        for segment in segments:
            if not self._published and self._track is not None:
                self.publish_track(*self._track)
                self._published = True
            self.publish_segment(self.track_id, segment)

    def drain(self) -> None:
        """Encode everything received; the segment still open stays open for ``finish``."""

    def pending_ends(self) -> list[PendingEnd | None]:
        return [self.segmenter.pending]

    def finish(self, end: EpochEnd | None) -> None:
        self.emit(self.segmenter.finish(end))


class AudioTranscoder(_AudioTrack):
    """A live-encoded channel's audio track: the contribution's frames copied when they already
    are what the channel sends (``aac_copy``), decoded, resampled and encoded otherwise; on the
    same frame grid, with the same init segment, either way.

    Whether to copy is decided at the connection's first configuration and holds until the
    track has a reason to stop (a configuration or a segment's bitrate the channel does not
    send); from then on it is re-encoded to the connection's end.  It never goes back to copying
    within a connection: the encoder holds frames it has not yet given out."""

    def __init__(
        self,
        *,
        bitrate: int,
        clock: ConnectionClock,
        origin: int | None = None,
        slate: SlateSchedule | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(timescale=SAMPLE_RATE, clock=clock, **kwargs)
        self.slate = slate  # the manual slate: silence in its segments
        # After a slate, its audio frame grid: the contribution's first whole frame starts where
        # the slate's audio ended (the frame before the boundary is dropped), so the audio is as
        # contiguous as the video, and the players see no discontinuity in one track only.
        self.origin = origin
        self.bitrate = bitrate
        self.clock = clock
        self.decoder: av.AudioCodecContext | None = None
        self.resampler = av.AudioResampler(format="fltp", layout="stereo", rate=SAMPLE_RATE)
        self.encoder = aac_encoder(bitrate)
        self.next_pts: int | None = None
        self.out_pts: int | None = None
        self.copying: bool | None = None  # None: not configured yet
        self.copied_bitrate = SegmentBitrate(SAMPLE_RATE)

    def configure(self, asc: bytes, language: str | None = None) -> None:
        if self._track is None:  # the track is described at its first packet, in the language known then
            self.language = language or self.language
        self.decoder = av.CodecContext.create("aac", "r")
        self.decoder.extradata = asc
        refusal = copy_refusal(asc)
        if self.copying is None:
            self.copying = refusal is None
            metrics.AUDIO_TRACKS.labels("copied" if self.copying else "reencoded").inc()
            how = "copied" if refusal is None else f"re-encoded ({refusal})"
            log.info("audio %s: the contribution's AAC is %s", self.track_id, how)
        elif self.copying and refusal is not None:
            self._stop_copying(f"its configuration changed to {refusal}")

    def _stop_copying(self, why: str) -> None:
        self.copying = False
        metrics.AUDIO_TRACKS.labels("copy_ended").inc()
        log.warning("audio %s: re-encoded from %d on: %s", self.track_id, self.next_pts or 0, why)

    def _anchor(self, frame: Frame) -> int | None:
        """The frame's time on the grid (``anchored``), None for a frame to drop."""
        expected = self.clock.media_time(frame.decode_time, frame.timescale, SAMPLE_RATE)

        def origin() -> int:
            if self.origin is not None:
                return self.origin
            return epoch_origin(self.clock, self.segment_duration_ms, SAMPLE_RATE)

        time = anchored(self.next_pts, expected, origin)
        if time is not None:
            self.next_pts = time
        return time

    def push(self, frame: Frame) -> None:
        if self.decoder is None:
            return  # no AudioSpecificConfig yet: nothing can be decoded
        if self.copying and self._copied(frame):
            return
        try:
            frames = self.decoder.decode(av.Packet(frame.data))
        except av.error.FFmpegError as error:
            metrics.DECODE_ERRORS.inc()
            log.warning("dropping an undecodable audio frame: %s", error)
            return
        pts = self._anchor(frame)
        if pts is None:
            return
        for decoded in frames:
            for resampled in self.resampler.resample(decoded):
                if self.out_pts is None:
                    self.out_pts = pts
                resampled.pts = pts
                resampled.time_base = Fraction(1, SAMPLE_RATE)
                if self.slate is not None:
                    silence(resampled, self.slate.silent_ranges(pts, pts + resampled.samples, SAMPLE_RATE))
                pts = self.next_pts = pts + resampled.samples
                for packet in self.encoder.encode(resampled):
                    self._handle(packet)

    def _copied(self, frame: Frame) -> bool:
        """The frame copied (silence in its place in a manual slate's segment); False when the
        segment it ends was above the bitrate, and the frame is to be re-encoded."""
        pts = self._anchor(frame)
        if pts is None:
            return True  # dropped, as a re-encoded one would be
        number = segment_number(pts, self.segment_duration_ms, SAMPLE_RATE)
        bitrate = self.copied_bitrate.add(number, len(frame.data))
        if bitrate is not None and bitrate > self.bitrate * BITRATE_TOLERANCE:
            self._stop_copying(f"{bitrate} bit/s in segment {number - 1}, above the channel's {self.bitrate}")
            return False
        silent = self.slate is not None and self.slate.on(number)
        self._copy(silent_aac_frame(self.bitrate) if silent else frame.data)
        return True

    def _copy(self, data: bytes) -> None:
        """One AAC frame at ``next_pts``, as it is."""
        assert self.next_pts is not None  # anchored by the contribution's first frame
        if self._track is None:
            self.set_track(*aac_track(self.encoder, self.bitrate, track_id=self.track_id, language=self.language))
        self.emit(self.segmenter.push(TimedSample(self.next_pts, 0, True, data)))
        self.next_pts += AAC_FRAME

    def _handle(self, packet: av.Packet[av.AudioStream]) -> None:
        if self._track is None:
            self.set_track(*aac_track(self.encoder, self.bitrate, track_id=self.track_id, language=self.language))
        # Output frames are counted from the first input sample rather than taken from the
        # encoder, whose first packets carry the AAC priming delay as negative times.
        assert self.out_pts is not None  # set with the first input frame, before any packet
        self.emit(self.segmenter.push(TimedSample(self.out_pts, 0, True, bytes(packet))))
        self.out_pts += AAC_FRAME

    def pad_silence(self, until: int) -> None:
        """Silence from the last sample to ``until`` (48 kHz channel media time): with a slate, the
        contribution's last segment ends on its boundary, where the slate's first one starts."""
        while self.next_pts is not None and self.next_pts < until:
            if self.copying:
                self._copy(silent_aac_frame(self.bitrate))
                continue
            if self.out_pts is None:
                self.out_pts = self.next_pts
            frame = silent_frame(self.next_pts)
            self.next_pts += AAC_FRAME
            for packet in self.encoder.encode(frame):
                self._handle(packet)

    def drain(self) -> None:
        for packet in self.encoder.encode(None):
            self._handle(packet)


class AudioPassthrough(_AudioTrack):
    def __init__(
        self,
        *,
        clock: ConnectionClock,
        segment_duration_ms: int,
        track_id: str = "audio",
        language: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.clock = clock
        self.track_id, self.language = track_id, language  # known before configure() sets up the rest
        self.kwargs = dict(segment_duration_ms=segment_duration_ms, track_id=track_id, language=language, **kwargs)
        self.next_pts: int | None = None
        self.configured = False

    def configure(self, asc: bytes, language: str | None = None) -> None:
        sample_rate, channels = asc_sample_rate_and_channels(asc)
        self.language = language or self.language
        self.kwargs["language"] = self.language
        super().__init__(timescale=sample_rate, clock=self.clock, **self.kwargs)
        init = init_segment_audio(
            sample_rate=sample_rate,
            channels=channels,
            timescale=sample_rate,
            asc=asc,
            language=mdhd_language(self.language),
        )
        self.set_track(
            TrackInfo(
                id=self.track_id,
                kind="audio",
                codecs=aac_codec_string(asc),
                bandwidth=128_000,
                timescale=sample_rate,
                init=layout.init_name(init),
                sample_rate=sample_rate,
                channels=channels,
                language=self.language,
            ),
            init,
        )
        self.configured = True

    def push(self, frame: Frame) -> None:
        if not self.configured:
            return
        expected = self.clock.media_time(frame.decode_time, frame.timescale, self.timescale)
        time = anchored(
            self.next_pts, expected, lambda: epoch_origin(self.clock, self.segment_duration_ms, self.timescale)
        )
        if time is None:
            return
        self.next_pts = time
        self.emit(self.segmenter.push(TimedSample(self.next_pts, 0, True, frame.data)))
        self.next_pts += AAC_FRAME

    def pending_ends(self) -> list[PendingEnd | None]:
        return super().pending_ends() if self.configured else []

    def finish(self, end: EpochEnd | None) -> None:
        if self.configured:
            super().finish(end)

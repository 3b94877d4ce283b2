"""Slate on input loss: while a live-encoded channel has no contribution, its encoders carry the
timeline on with a card (``card.py``) and silence, in every rendition.

Why it needs no talk between the two encoders of a pair:

- The slate is cut on the channel's segment grid: segment n covers [n*D, (n+1)*D) of the
  channel's media time, whose 0 both encoders read from storage (``ChannelClock``).  Picture
  slot s of segment n, and every AAC frame (on the grid of the channel's latest epoch, the one
  the contribution's audio used), have the same time on both.
- It starts after the newest segment number the channel has (this encoder's and the other's
  ``progress.json``), so when the contribution ends, both start at the number after its last
  segment.  At worst (one of them started a moment later and read the other's first slate
  segment) one starts a number later; the copies are interchangeable all the same.
- The card is encoded with the contribution's own rendition settings and frame rate, so its
  init segment is the contribution's (``init-<hash>``): the packager mixes copies and follows
  the contribution without a new header.  The contribution's last segment is filled to its
  boundary (the last picture repeated, silence: ``LadderVideo.drain(pad=True)``), so the slate
  follows it with no gap, and the packager sees contiguous media, not a discontinuity.
- An encoder whose own path is lost while the other still has the contribution shows no slate:
  the packager takes the other's segments (failover, not a slate).

The pictures are given a few slots ahead of the wall clock, the encoder's lookahead: segment n
is then complete at about (n+1)*D, as a live contribution's is.  When the contribution returns,
the slate ends at the boundary of the segment under way (``slate_end``) and the contribution
is placed there (a new epoch: ``timing.py``).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

from kubecast.api.components import EncoderConfig
from kubecast.media.timeline import boundary_time
from kubecast.media.tracks import TrackInfo
from kubecast.storage import IngestInfo

from .aac import AAC_FRAME, SAMPLE_RATE, aac_encoder, aac_track
from .aac_copy import silent_aac_frame
from .card import card_frame
from .clock import ChannelClock
from .framerate import FrameGrid
from .ladder import default_x264_preset
from .publisher import Publisher, now_utc
from .rendition import RenditionEncoder, SlotFrame
from .segmenter import Emitted, EpochEnd, PublishSegment, PublishTrack, TimedSample, TrackSegmenter

log = logging.getLogger("kubecast.encoder")

TICK_SECONDS = 0.1
OTHER_CHECK_SECONDS = 1.0  # how often the other encoder's progress is read
MAX_CATCH_UP_SEGMENTS = 3  # a slate starting further behind the clock starts at the clock (a gap)
LEAD_SLOTS = 10  # beyond x264's lookahead (8): segment n's last packet is out at about (n+1)*D
DEFAULT_RATE = Fraction(30)  # the frame rate when no contribution of this encoder told one
NTSC_RATES = {f"{float(Fraction(n, 1001)):.3f}": Fraction(n, 1001) for n in (24000, 30000, 60000)}


@dataclass(frozen=True)
class SlateStart:
    first: int  # the first segment number of the slate
    discontinuity: bool  # media is missing before it


def slate_start(*, last_number: int | None, now_media_ms: int, segment_duration_ms: int) -> SlateStart:
    """Where a slate starts: right after the channel's newest segment, unless that lies more than
    ``MAX_CATCH_UP_SEGMENTS`` behind the clock (a slate asked long after the loss, an encoder
    restarted later): then at the segment under way, after a gap."""
    by_clock = max(0, now_media_ms // segment_duration_ms)
    if last_number is None:
        return SlateStart(by_clock, discontinuity=False)
    if last_number + 1 >= by_clock - MAX_CATCH_UP_SEGMENTS:
        return SlateStart(last_number + 1, discontinuity=False)
    return SlateStart(by_clock, discontinuity=True)


def slate_end(*, first: int, now_media_ms: int, segment_duration_ms: int) -> int:
    """The segment number a slate ends before when it is ended now: the one under way (its
    boundary has passed, so a contribution placed now starts there), never before the first."""
    return max(first, now_media_ms // segment_duration_ms)


def slate_wanted(
    *, after_ms: int | None, lost_ms: float, on_air: bool, other_connected: bool, limit_ms: int | None = None
) -> bool:
    """Whether the slate runs: a slate is configured, the contribution has been lost for at least
    ``after_ms`` (and, with ``limit_ms``, the channel's idle timeout, for less than ``after_ms +
    limit_ms``), the channel has a timeline to carry on (``on_air``), and the other encoder of the
    pair does not have the contribution (then its segments carry the timeline)."""
    if after_ms is None or not on_air or other_connected or lost_ms < after_ms:
        return False
    return limit_ms is None or lost_ms < after_ms + limit_ms


def silent_tracks(tracks: list[TrackInfo]) -> dict[str, str | None]:
    """The audio tracks the slate fills with silence (id -> language): ``audio`` and every
    language the encoder's contribution had, each with its language, so that its init segment
    is the contribution's and no language's segments stop during the slate."""
    audio: dict[str, str | None] = {"audio": None}
    audio.update((t.id, t.language) for t in tracks if t.kind == "audio")
    return audio


def rate_of(tracks: list[TrackInfo]) -> Fraction | None:
    """The frame rate an encoder's video tracks state (``frame_rate_text``), for an encoder
    restarted during a slate: the card must be encoded at the contribution's rate."""
    text = next((t.frame_rate for t in tracks if t.kind == "video" and t.frame_rate), None)
    if text is None:
        return None
    if text in NTSC_RATES:
        return NTSC_RATES[text]
    try:
        return Fraction(text)
    except ValueError:
        return None


def first_frame_at(boundary: int, origin: int) -> int:
    """The first AAC frame on the grid from ``origin`` that starts at or after ``boundary``."""
    return origin + -(-(boundary - origin) // AAC_FRAME) * AAC_FRAME


class SilenceTrack:
    """Silence on the channel's audio frame grid: the one silent AAC frame of the channel's
    configuration (``silent_aac_frame``), repeated, under the re-encoder's init segment."""

    def __init__(
        self,
        *,
        bitrate: int,
        first: int,
        origin: int,
        segment_duration_ms: int,
        publish_track: PublishTrack,
        publish_segment: PublishSegment,
        track_id: str = "audio",
        language: str | None = None,
        part_duration_ms: int | None = None,
    ) -> None:
        self.track_id, self.language = track_id, language
        self.bitrate = bitrate
        self.silence = silent_aac_frame(bitrate)
        self.segmenter = TrackSegmenter(
            SAMPLE_RATE, segment_duration_ms, video=False, default_duration=AAC_FRAME, part_duration_ms=part_duration_ms
        )
        self.segment_duration_ms = segment_duration_ms
        self.publish_track = publish_track
        self.publish_segment = publish_segment
        self.next_pts = first_frame_at(boundary_time(first, segment_duration_ms, SAMPLE_RATE), origin)
        self._published = False

    def advance(self, until: int) -> None:
        """Frames of silence starting before ``until`` (48 kHz channel media time)."""
        while self.next_pts < until:
            self._emit(self.segmenter.push(TimedSample(self.next_pts, 0, True, self.silence)))
            self.next_pts += AAC_FRAME

    def _emit(self, segments: list[Emitted]) -> None:
        for segment in segments:
            if not self._published:
                # An encoder opened only for its AudioSpecificConfig: the contribution's init segment.
                encoder = aac_encoder(self.bitrate)
                self.publish_track(*aac_track(encoder, self.bitrate, track_id=self.track_id, language=self.language))
                self._published = True
            self.publish_segment(self.track_id, segment)

    def finish(self, end: EpochEnd) -> None:
        self._emit(self.segmenter.finish(end))


class SlateRun:
    """One stretch of slate, from segment ``start.first`` until ``finish``."""

    def __init__(
        self, *, config: EncoderConfig, start: SlateStart, rate: Fraction, audio_origin: int, publisher: Publisher
    ) -> None:
        self.first = start.first
        self.segment_duration_ms = config.segment_duration_ms
        self.grid = FrameGrid(rate, config.segment_duration_ms, config.part_duration_ms)
        top = config.renditions[0]
        self.card = card_frame(top.width, top.height, config.channel)
        preset = config.x264_preset or default_x264_preset(config.renditions)
        self.workers = [
            RenditionEncoder(
                rendition=rendition,
                x264_preset=preset,
                grid=self.grid,
                publish_track=publisher.track,
                publish_segment=publisher.segment,
            )
            for rendition in config.renditions
        ]
        for worker in self.workers:
            if start.discontinuity:
                worker.segmenter.mark_discontinuity()
            worker.start()
        self.audio = [
            SilenceTrack(
                bitrate=config.audio_bitrate,
                first=start.first,
                origin=audio_origin,
                segment_duration_ms=config.segment_duration_ms,
                part_duration_ms=config.part_duration_ms,
                publish_track=publisher.track,
                publish_segment=publisher.segment,
                track_id=track_id,
                language=language,
            )
            for track_id, language in silent_tracks(publisher.progress.tracks).items()
        ]
        self.next_slot = self.grid.first_slot(start.first)
        self.audio_origin = audio_origin

    def _encode_to(self, last_slot: int, audio_until: int) -> None:
        for slot in range(self.next_slot, last_slot + 1):
            key = slot == self.grid.first_slot(self.grid.segment_of(slot))
            for worker in self.workers:
                worker.frames.put(SlotFrame(self.card, slot, key))
        self.next_slot = max(self.next_slot, last_slot + 1)
        for audio in self.audio:
            audio.advance(audio_until)

    def advance(self, now_media_ms: int) -> None:
        """The card and silence up to ``now_media_ms`` of channel media time (and the lookahead)."""
        last_slot = math.floor(Fraction(now_media_ms, 1000) * self.grid.rate) + LEAD_SLOTS
        self._encode_to(last_slot, int(Fraction(last_slot + 1) / self.grid.rate * SAMPLE_RATE))

    def failed(self) -> Exception | None:
        return next((w.error for w in self.workers if w.error), None)

    def finish(self, end: int) -> None:
        """End before segment ``end``: every segment before it complete, nothing from it on."""
        self._encode_to(self.grid.first_slot(end) - 1, boundary_time(end, self.segment_duration_ms, SAMPLE_RATE))
        for worker in self.workers:
            worker.frames.put(None)
        for worker in self.workers:
            worker.join(60)
        last = EpochEnd(end - 1, None)
        for worker in self.workers:
            if not worker.is_alive() and worker.error is None:
                worker.finish(last)
        for audio in self.audio:
            audio.finish(last)


class SlateWatch(threading.Thread):
    """Runs the slate while the encoder has no contribution and ``slate_wanted`` says so.

    The session tells it when a contribution starts (the slate ends at the segment under way,
    before the contribution is placed) and ends (the loss is timed from then, and the frame
    rate of its ladder is the slate's)."""

    def __init__(self, *, config: EncoderConfig, publisher: Publisher, clock: ChannelClock) -> None:
        super().__init__(name=f"slate-{config.channel}", daemon=True)
        self.config = config
        self.publisher = publisher
        self.clock = clock
        self.stopping = threading.Event()
        self.connected = False
        self.lost_since = time.monotonic()  # an encoder (re)started without a contribution has lost it
        self.rate: Fraction | None = None
        self.slate: SlateRun | None = None
        self.audio_origin: int | None = None  # the audio frame grid of the slate that ended last
        self._lock = threading.Lock()
        self._other_checked = float("-inf")
        self._other_connected = False
        self._other_on_air = False

    def run(self) -> None:
        while not self.stopping.wait(TICK_SECONDS):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the slate must not end the encoder; the next tick tries again
                log.exception("the slate of %s failed", self.config.channel)
                with self._lock:
                    self.slate = None

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)
        with self._lock:
            self._finish()

    def contribution_starts(self) -> int | None:
        """The slate ends; returns the number it ended before (None: none ran), where the
        contribution is placed (its boundary may pass while the slate is being finished)."""
        with self._lock:
            self.connected = True
            return self._finish()

    def contribution_ends(self, rate: Fraction | None) -> None:
        with self._lock:
            self.connected = False
            self.lost_since = time.monotonic()
            self.rate = rate or self.rate

    def _media_ms(self, now: datetime) -> int:
        start = self.clock.availability_start(now, fallback=self.publisher.progress.availability_start_time)
        self.publisher.set_availability_start(start)
        return (now - start) // timedelta(milliseconds=1)

    def _check_other(self) -> None:
        """Whether the other encoder has the contribution, and whether the channel has a timeline."""
        if time.monotonic() - self._other_checked < OTHER_CHECK_SECONDS:
            return
        self._other_checked = time.monotonic()
        now = now_utc()
        fresh = timedelta(milliseconds=max(3 * self.config.segment_duration_ms, 6000))
        others = [p for p in self.clock.encoders_progress() if p.instance != self.publisher.instance]
        self._other_connected = any(
            p.state == "live" and p.ingest.connected and now - p.updated < fresh for p in others
        )
        self._other_on_air = any(records for p in others for records in p.segments.values())

    def tick(self) -> None:
        with self._lock:
            if self.connected or self.stopping.is_set():
                return
            self._check_other()
            wanted = slate_wanted(
                after_ms=self.config.slate_after_ms,
                lost_ms=(time.monotonic() - self.lost_since) * 1000,
                on_air=self.publisher.last_written is not None or self._other_on_air,
                other_connected=self._other_connected,
                limit_ms=self.config.slate_limit_ms,
            )
            if wanted and self.slate is None:
                self._start()
            elif not wanted and self.slate is not None:
                self._finish()
            if self.slate is not None:
                self.slate.advance(self._media_ms(now_utc()))
                if error := self.slate.failed():
                    raise RuntimeError(f"encoding the slate failed: {error}")

    def _start(self) -> None:
        media_ms = self._media_ms(now_utc())
        numbers = [n for n in (self.publisher.last_written, self.clock.newest_written()) if n is not None]
        start = slate_start(
            last_number=max(numbers, default=None),
            now_media_ms=media_ms,
            segment_duration_ms=self.config.segment_duration_ms,
        )
        epoch, _ = self.clock.latest_epoch()
        origin = boundary_time(epoch.first_segment, self.config.segment_duration_ms, SAMPLE_RATE) if epoch else 0
        rate = self.rate or rate_of(self.publisher.progress.tracks) or DEFAULT_RATE
        log.info(
            "%s/%s: no contribution for %.1f s; slate from segment %d at %s frames per second",
            self.config.channel,
            self.publisher.instance,
            time.monotonic() - self.lost_since,
            start.first,
            rate,
        )
        self.slate = SlateRun(config=self.config, start=start, rate=rate, audio_origin=origin, publisher=self.publisher)
        self.publisher.status(state="live", message="slate: no contribution", ingest=IngestInfo(connected=False))

    def _finish(self) -> int | None:
        slate, self.slate = self.slate, None
        if slate is None:
            return None
        end = slate_end(
            first=slate.first, now_media_ms=self._media_ms(now_utc()), segment_duration_ms=slate.segment_duration_ms
        )
        slate.finish(end)
        self.audio_origin = slate.audio_origin
        log.info("%s/%s: slate ended before segment %d", self.config.channel, self.publisher.instance, end)
        if not self.connected:
            self.publisher.status(state="waiting", message="")
        return end

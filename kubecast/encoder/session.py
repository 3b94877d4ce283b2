"""One contribution, from its hello line to its last segment.

Runs in its own thread with a blocking socket: the work is CPU-bound (decoding, fanning out
to encoder threads), and the back-pressure of a blocking read is exactly what a live encoder
wants — if it cannot keep up, TCP tells the ingest to slow down rather than memory growing.
"""

from __future__ import annotations

import logging
import socket
import time
from datetime import timedelta
from typing import Any

import av

from kubecast.api.components import EncoderConfig
from kubecast.liveness import HEARTBEATS, Heartbeat
from kubecast.media.contribution import (
    MAX_HELLO,
    CodecConfig,
    Cue,
    EndOfStream,
    Frame,
    HelloError,
    Kind,
    Metadata,
    RecordError,
    RecordReader,
    parse_hello,
)
from kubecast.media.timeline import boundary_time
from kubecast.storage import IngestInfo

from . import metrics
from .aac import SAMPLE_RATE
from .audio_tracks import AudioTracks, connection_audio
from .clock import ChannelClock
from .control import ControlFollower
from .ladder import LadderVideo, default_x264_preset
from .manual_slate import SlateSchedule
from .passthrough import PassthroughVideos
from .publisher import Publisher, now_utc
from .segmenter import epoch_end
from .slate import SlateWatch
from .thumbnail import jpeg_thumbnail, key_frame_picture
from .timed_events import ConnectionTracks, TimedEvents
from .timing import ConnectionClock

log = logging.getLogger("kubecast.encoder")

STATS_SECONDS = 2.0
THUMBNAIL_SECONDS = 4.0
HELLO_TIMEOUT = 10.0
IDLE_TIMEOUT = 30.0


class ContributionRefused(Exception):
    """The contribution cannot be encoded (codec, protocol); the message is for the operator."""


def read_line(sock: socket.socket) -> tuple[bytes, bytes]:
    buffer = b""
    while b"\n" not in buffer:
        chunk = sock.recv(4096)
        if not chunk:
            raise HelloError("connection closed before the hello line")
        buffer += chunk
        if len(buffer) > MAX_HELLO and b"\n" not in buffer[:MAX_HELLO]:
            raise HelloError("hello line too long")
    line, rest = buffer.split(b"\n", 1)
    return line + b"\n", rest


class ContributionSession:
    def __init__(
        self,
        *,
        config: EncoderConfig,
        publisher: Publisher,
        clock: ChannelClock,
        sock: socket.socket,
        peer: str,
        slate: SlateWatch | None = None,
        control: ControlFollower | None = None,
    ) -> None:
        self.config = config
        self.slate = slate
        self.timed = TimedEvents(config, publisher, control)
        self.publisher = publisher
        self.clock = clock
        self.sock = sock
        self.peer = peer
        self.bytes = 0
        self.frames = 0
        self._stats_at = time.monotonic()
        self._stats_bytes = 0
        self._speed_marks = (0.0, 0.0)
        self._thumbnail_at = 0.0
        self._ignored_renditions: set[int] = set()
        self.ended_info = IngestInfo(connected=False)
        self._slate_end: int | None = None
        self._heartbeat = Heartbeat("contribution")

    def run(self) -> None:
        HEARTBEATS.add(self._heartbeat)
        try:
            self._run()
        finally:
            HEARTBEATS.remove(self._heartbeat)

    def _run(self) -> None:
        name = self.config.channel
        try:
            self.sock.settimeout(HELLO_TIMEOUT)
            line, rest = read_line(self.sock)
            hello = parse_hello(line)
            if hello.channel != name:
                raise ContributionRefused(f"contribution for channel {hello.channel!r} reached the encoder of {name!r}")
            log.info(
                "contribution %s for %s started (%s%s)",
                hello.session,
                name,
                hello.protocol,
                ", relayed" if hello.relayed else "",
            )
            self.sock.settimeout(IDLE_TIMEOUT)
            if self._encode(rest, hello.protocol):
                metrics.CONTRIBUTIONS.labels("ended").inc()
                log.info("contribution %s for %s ended after %d frames", hello.session, name, self.frames)
            else:
                metrics.CONTRIBUTIONS.labels("broken").inc()
                log.warning("contribution %s for %s broke off after %d frames", hello.session, name, self.frames)
            self.publisher.status(state="waiting", message="", ingest=self.ended_info)
        except (HelloError, RecordError, ContributionRefused) as error:
            metrics.CONTRIBUTIONS.labels("refused").inc()
            log.warning("contribution from %s for %s refused: %s", self.peer, name, error)
            self.publisher.status(state="error", message=str(error), ingest=IngestInfo(connected=False))
        except (OSError, TimeoutError) as error:
            metrics.CONTRIBUTIONS.labels("broken").inc()
            log.warning("contribution for %s broke off: %s", name, error)
            self.publisher.status(state="waiting", ingest=IngestInfo(connected=False))
        except Exception as error:  # noqa: BLE001 - one contribution must not end the encoder
            metrics.CONTRIBUTIONS.labels("failed").inc()
            log.exception("contribution for %s failed", name)
            self.publisher.status(
                state="error", message=f"encoding failed: {error}", ingest=IngestInfo(connected=False)
            )
        finally:
            self.sock.close()

    def _encode(self, first_bytes: bytes, protocol: str) -> bool:
        """Encode the contribution; True when it ended with its end-of-stream record."""
        if self.slate is not None:
            # The slate ends at the segment under way, before the placement, which starts there.
            self._slate_end = self.slate.contribution_starts()
        # The channel's media time 0, shared with the other encoder; an older record of ours seeds it.
        start = self.clock.availability_start(now_utc(), fallback=self.publisher.progress.availability_start_time)
        self.publisher.set_availability_start(start)
        self.publisher.status(state="live", message="", ingest=IngestInfo(connected=True, protocol=protocol))
        reader = RecordReader()
        configs: list[CodecConfig] = []  # before the first frame: replayed into the tracks once they exist
        tracks: ConnectionTracks | None = None
        try:
            data = first_bytes
            while True:
                if data:
                    # Busy from here to the next read: blocked on a hung encode thread's full queue counts.
                    with self._heartbeat.busy():
                        self.bytes += len(data)
                        reader.feed(data)
                        for record in reader.records():
                            if isinstance(record, EndOfStream):
                                return True
                            if isinstance(record, Cue | Metadata):
                                self.timed.arrive(record, tracks)
                                continue
                            if tracks is None:
                                if isinstance(record, CodecConfig):
                                    configs.append(record)
                                    continue
                                if not self._opens(record, configs):
                                    continue  # no track could use it (a picture before the first key frame)
                                tracks = self._tracks(self._place(record))
                                for config in configs:
                                    self._record(config, tracks)
                                self.timed.placed(tracks)
                            self._record(record, tracks)
                        if tracks is not None:
                            self.timed.follow_control(tracks)
                            self._stats(protocol, tracks.video)
                data = self.sock.recv(256 * 1024)
                if not data:
                    return False
        finally:
            rate = None
            if tracks is not None:
                if isinstance(tracks.video, LadderVideo):
                    rate = tracks.video.grid.rate if tracks.video.grid is not None else None
                    # With a slate, the last segment is filled to its boundary, where the slate starts.
                    boundary = tracks.video.drain(pad=self.config.slate_after_ms is not None)
                    if boundary is not None:
                        tracks.audio.pad_silence(boundary_time(boundary, self.config.segment_duration_ms, SAMPLE_RATE))
                else:
                    tracks.video.drain()
                tracks.audio.drain()
                # Every track ends at the same segment number and time: a track a few milliseconds
                # longer than the others would otherwise end with a sliver they do not have.
                end = epoch_end(tracks.video.pending_ends() + tracks.audio.pending_ends())
                tracks.video.finish(end)
                tracks.audio.finish(end)
                # What the contribution was stays readable after it ended (renditions, alignment).
                self.ended_info = self._ingest_info(protocol, tracks.video).model_copy(update={"connected": False})
            else:
                self.ended_info = IngestInfo(connected=False, protocol=protocol)
            if self.slate is not None:
                self.slate.contribution_ends(rate)

    def _opens(self, frame: Frame, configs: list[CodecConfig]) -> bool:
        """Whether ``frame`` is the first one a track will use: the one that places the connection."""
        if not any(config.kind == frame.kind and config.track == frame.track for config in configs):
            return False
        if frame.kind == Kind.AUDIO:
            return frame.track == 0  # one audio track: the first rendition's
        return frame.keyframe and (self.config.passthrough or frame.track == 0)

    def _place(self, frame: Frame) -> ConnectionClock:
        """Where this connection sits on the channel timeline, decided once, before any track
        sees a frame (it reads and may create the channel's epochs in storage)."""
        now = now_utc()
        start = self.publisher.progress.availability_start_time
        if self._slate_end is not None and start is not None:
            # Right after the slate, even if its boundary passed while the slate was being finished.
            end_ms = (self._slate_end + 1) * self.config.segment_duration_ms - 1
            now = min(now, start + timedelta(milliseconds=end_ms))
        placement = self.clock.place(
            first_timestamp_ms=frame.decode_time * 1000 // frame.timescale,
            now=now,
            last_written=self.publisher.last_written,
        )
        return ConnectionClock(placement)

    def _common(self) -> dict[str, Any]:
        return dict(
            segment_duration_ms=self.config.segment_duration_ms,
            publish_track=self.publisher.track,
            publish_segment=self.publisher.segment,
        )

    def _audio_tracks(self, clock: ConnectionClock, slate: SlateSchedule | None = None) -> AudioTracks:
        # After a slate, re-encoded audio stays on the slate's frame grid.
        after_slate = self.slate is not None and self._slate_end is not None
        origin = lambda: self.slate.audio_origin if after_slate and self.slate is not None else None  # noqa: E731
        return connection_audio(config=self.config, clock=clock, origin=origin, slate=slate, publisher=self.publisher)

    def _tracks(self, clock: ConnectionClock) -> ConnectionTracks:
        config = self.config
        common = self._common()
        if config.passthrough:
            return ConnectionTracks(
                PassthroughVideos(clock=clock, bandwidth_hint=0, **common), self._audio_tracks(clock), clock
            )
        preset = config.x264_preset or default_x264_preset(config.renditions)
        schedule = SlateSchedule(config.segment_duration_ms)
        tracks = ConnectionTracks(
            LadderVideo(
                renditions=config.renditions,
                x264_preset=preset,
                clock=clock,
                publish_cue=self.publisher.cue,
                slate=schedule,
                card_title=config.channel,
                part_duration_ms=config.part_duration_ms,
                **common,
            ),
            self._audio_tracks(clock, slate=schedule),
            clock,
            schedule,
        )
        # The request in force when the contribution starts decides its first pictures.
        self.timed.follow_slate(tracks)
        return tracks

    def _record(self, record: CodecConfig | Frame, tracks: ConnectionTracks) -> None:
        video = tracks.video
        if record.kind == Kind.AUDIO:
            tracks.audio.record(record)
            return
        if isinstance(video, PassthroughVideos):
            if isinstance(record, CodecConfig):
                video.configure(record.track, record.data)
            else:
                self.frames += 1
                video.push(record)
                if record.track == 0:
                    self._maybe_thumbnail(video, record)
            return
        if record.track != 0:
            self._ignored_renditions.add(record.track)  # the ladder is encoded from the first rendition
        elif isinstance(record, CodecConfig):
            video.configure(record.data)
        else:
            self.frames += 1
            video.push(record)
            if error := video.failed():
                raise ContributionRefused(f"encoding failed: {error}")
            self._maybe_thumbnail(video, record)

    def _maybe_thumbnail(self, video: PassthroughVideos | LadderVideo, frame: Frame) -> None:
        now = time.monotonic()
        if now - self._thumbnail_at < THUMBNAIL_SECONDS:
            return
        picture: av.VideoFrame | None = None
        if isinstance(video, LadderVideo):
            picture = video.latest_frame
        elif frame.keyframe and video.primary.avcc is not None:
            picture = key_frame_picture(video.primary.avcc, frame.data)
        if picture is not None:
            self._thumbnail_at = now
            self.publisher.thumbnail(jpeg_thumbnail(picture))

    def _stats(self, protocol: str, video: LadderVideo | PassthroughVideos) -> None:
        now = time.monotonic()
        if now - self._stats_at < STATS_SECONDS:
            return
        bitrate = (self.bytes - self._stats_bytes) * 8 / (now - self._stats_at)
        speed = None
        if isinstance(video, LadderVideo) and video.current_segment is not None:
            media = video.media_seconds
            busy = video.busy_seconds()
            last_media, last_busy = self._speed_marks
            if busy > last_busy and media > last_media:
                speed = (media - last_media) / (busy - last_busy)
                metrics.SPEED.set(speed)
            self._speed_marks = (media, busy)
        self._stats_at, self._stats_bytes = now, self.bytes
        metrics.INGEST_BITRATE.set(bitrate)
        self.publisher.status(ingest=self._ingest_info(protocol, video, bitrate), speed=speed)

    def _ingest_info(self, protocol: str, video: LadderVideo | PassthroughVideos, bitrate: float = 0.0) -> IngestInfo:
        info = IngestInfo(connected=True, protocol=protocol, bitrate=bitrate, frames=self.frames)
        if isinstance(video, PassthroughVideos):
            info.renditions = len(video.renditions)
            if len(video.renditions) > 1:
                info.keyframes_aligned = video.gate.aligned
                info.alignment_message = "; ".join(video.gate.misaligned.values())
        else:
            info.renditions = 1 + len(self._ignored_renditions)
        return info

"""An MPEG-TS contribution (UDP, RTP, SRT) -> the records every ingest forwards to the encoders.

Every protocol ends in the same internal contribution (``kubecast.media.contribution``: a
hello line, then codec configurations and frames), so the encoders, the clock and the packager
never learn how the media arrived.  Frames keep the 90 kHz clock of the PES headers, counted
from the contribution's first frame as an RTMP publisher's timestamps start at 0; a jump
backwards or far ahead (``kubecast.ingest.timestamps``) ends the contribution
(``TimestampJump``): the next one is placed on the channel timeline afresh, with a marked
discontinuity, instead of misplacing media by hours.  A time base change the encoder signals
(a PCR discontinuity, ``kubecast.media.mpegts``) is no jump: the media carries on seamlessly.
SCTE-35 sections become ``Cue`` records on the same clock as the frames (``kubecast.ingest.cues``
judges them), and the ID3 tags of a timed metadata PID ``Metadata`` records at their PTS
(``kubecast.ingest.metadata`` judges them).  Each AAC PID is an audio track (``PesFrame.track``);
its configuration names the language the PMT gives it (``CodecConfig.language``, None when the
descriptor is absent or no tag).
"""

from __future__ import annotations

from kubecast.media.adts import SAMPLES_PER_FRAME, split_adts
from kubecast.media.contribution import CodecConfig, Cue, Frame, Kind, Metadata, language_tag
from kubecast.media.h264 import (
    NAL_PPS,
    NAL_SPS,
    H264Error,
    avcc_from_annexb,
    is_annexb,
    length_prefixed,
    split_annexb,
)
from kubecast.media.mpegts import TsDemuxer, TsStats
from kubecast.media.tspes import PesFrame

from ..cues import CueGate
from ..metadata import MetadataGate
from ..timestamps import MAX_BACKWARDS_MS, TimestampGuard

NAL_IDR = 5
TS_TIMESCALE = 90_000
Record = CodecConfig | Frame | Cue | Metadata


class TimestampJump(ValueError):
    pass


class TsContribution:
    def __init__(self) -> None:
        self.demuxer = TsDemuxer()
        self.avcc: bytes | None = None
        self.audio_configs: dict[int, CodecConfig] = {}  # audio track -> its configuration
        self.origin: int | None = None  # 90 kHz ticks of time 0
        self.clock = TimestampGuard()
        self.waiting_for_parameters = 0  # video frames before the first SPS/PPS (skipped)
        self.audio_damage = 0  # bytes of PES audio that were not ADTS frames
        self._shifts: dict[int, int] = {}  # time base (PesFrame.timebase) -> ticks added to its frames
        self._next: dict[str, int] = {}  # kind -> ticks where its next frame is due
        self._last_video_dts: int | None = None
        self._video_step = 0  # ticks between the last two video frames
        self.cues = CueGate()
        self.metadata = MetadataGate()

    @property
    def stats(self) -> TsStats:
        return self.demuxer.stats

    def feed(self, data: bytes) -> list[Record]:
        records = self._convert(self.demuxer.feed(data))
        for section in self.demuxer.take_sections():
            cue = self.cues.section(section.data, timescale=TS_TIMESCALE, now=self._now(), to_time=self._splice_time)
            if cue is not None:
                records.append(cue)
        return records

    def _now(self) -> int | None:
        """The newest video frame's time on the contribution clock (None before the first)."""
        if self.origin is None or self._last_video_dts is None:
            return None
        return self._last_video_dts - self.origin

    def _splice_time(self, pts: int) -> int:
        """A splice's PTS (on the time base the frames arrive on now) on the contribution clock."""
        assert self.origin is not None  # asked only once a frame has arrived
        shift = self._shifts.get(self.demuxer.stats.timebase_changes, 0)
        return self.demuxer.unwrap_time(pts) + shift - self.origin

    def flush(self) -> list[Record]:
        return self._convert(self.demuxer.flush())

    def _convert(self, frames: list[PesFrame]) -> list[Record]:
        tags: list[Record] = []
        for frame in frames:
            if frame.kind == "id3":
                self._id3(frame, tags)
                continue
            self._place(frame)
            if self.origin is None:
                self.origin = frame.dts
            (self._video if frame.kind == "video" else self._audio)(frame, tags)
        return tags

    def _id3(self, frame: PesFrame, tags: list[Record]) -> None:
        """ID3 tags at their PTS, moved with the frames of their time base; they do not steer the
        clock (a tag may come before the first frame or after the last), they are placed on it."""
        shift = self._shifts.get(frame.timebase)
        if self.origin is None or shift is None:
            self.metadata.refuse("early", "ID3 tags before the first frame of their time base")
            return
        time = frame.pts + shift - self.origin
        now = self._now()
        if now is None and "audio" in self._next:  # an audio-only contribution (a radio's now-playing)
            now = self._next["audio"] - self.origin
        item = self.metadata.id3(frame.data, timescale=TS_TIMESCALE, time=time, now=now)
        if item is not None:
            tags.append(item)

    def _place(self, frame: PesFrame) -> None:
        """Moves a frame onto the contribution's one time base.  After a time base change the
        encoder signalled, the first frame on the new base continues its kind where the last one
        ended, and every kind moves by the same amount, keeping the encoder's lip sync: what a
        receiver locked to the PCR presents (an unsignalled jump still ends the contribution)."""
        kind = frame.kind
        if frame.timebase not in self._shifts:
            self._shifts[frame.timebase] = self._next[kind] - frame.dts if kind in self._next else 0
        shift = self._shifts[frame.timebase]
        frame.pts, frame.dts = frame.pts + shift, frame.dts + shift
        if kind == "video":  # audio knows its end once its ADTS frames are counted (_audio)
            last = self._last_video_dts
            if last is not None and frame.dts > last:
                self._video_step = frame.dts - last
            self._last_video_dts = frame.dts
            self._next[kind] = frame.dts + self._video_step

    def _time(self, kind: str, ticks: int) -> int:
        """``ticks`` from the contribution's first frame, checked against the clock rule."""
        assert self.origin is not None
        time = ticks - self.origin
        ms = time // 90
        if ms < -MAX_BACKWARDS_MS:
            raise TimestampJump(f"{kind} timestamp {ms} ms is before the contribution's start")
        if jump := self.clock.check(kind, ms):
            raise TimestampJump(jump)
        return time

    def _video(self, frame: PesFrame, tags: list[Record]) -> None:
        units = split_annexb(frame.data)
        parameters = [u for u in units if u[0] & 0x1F in (NAL_SPS, NAL_PPS)]
        if any(u[0] & 0x1F == NAL_SPS for u in parameters) and any(u[0] & 0x1F == NAL_PPS for u in parameters):
            avcc: bytes | None
            try:
                avcc = avcc_from_annexb(b"".join(b"\x00\x00\x00\x01" + u for u in parameters))
            except H264Error:
                avcc = self.avcc  # damaged parameter sets: the last good ones still apply
            if avcc is not None and avcc != self.avcc:
                self.avcc = avcc
                tags.append(CodecConfig(Kind.VIDEO, 0, avcc))
        if self.avcc is None:
            self.waiting_for_parameters += 1
            return
        dts = self._time("video", frame.dts)
        keyframe = any(u[0] & 0x1F == NAL_IDR for u in units)
        sample = length_prefixed(units) if is_annexb(frame.data) else frame.data
        tags.append(Frame(Kind.VIDEO, 0, TS_TIMESCALE, dts, frame.pts - frame.dts, None, keyframe, sample))

    def _audio(self, frame: PesFrame, tags: list[Record]) -> None:
        adts, damaged = split_adts(frame.data)
        self.audio_damage += damaged
        track = frame.track
        described = next((t for t in self.demuxer.audio_tracks.values() if t.track == track), None)
        language = language_tag(described.language) if described and described.language else None
        # Each track keeps its own clock check: two tracks' frames interleave, each in order.
        clock_kind = "audio" if track == 0 else f"audio {track}"
        for index, aac in enumerate(adts):
            ticks = frame.pts + index * SAMPLES_PER_FRAME * TS_TIMESCALE // aac.sample_rate
            time = self._time(clock_kind, ticks)
            config = self.audio_configs.get(track)
            if config is None or config.data != aac.config or config.language != language:
                config = self.audio_configs[track] = CodecConfig(Kind.AUDIO, track, aac.config, language)
                tags.append(config)
            # A frame's duration in 90 kHz ticks is whole at 48 kHz (1920), not at 44.1 kHz: then unknown.
            duration, rest = divmod(SAMPLES_PER_FRAME * TS_TIMESCALE, aac.sample_rate)
            tags.append(Frame(Kind.AUDIO, track, TS_TIMESCALE, time, 0, None if rest else duration, True, aac.payload))
            if track == 0:  # the time base shift is the first track's (every track moves with it)
                self._next["audio"] = ticks + SAMPLES_PER_FRAME * TS_TIMESCALE // aac.sample_rate

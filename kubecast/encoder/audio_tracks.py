"""The audio outputs of one contribution: its first audio track's, and one for each further
audio track whose configuration names a language (an MPEG-TS with an AAC PID per language).

A further track's output is made when its first configuration arrives, by the session's
factory (which knows whether the channel passes through or re-encodes, and the slate's grid);
``kubecast.ingest.publication`` forwards no further track without a language.  Everything that
happens to "the audio" at the end of a contribution (silence to the boundary, drain, the common
end) happens to every one of them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubecast.api.components import EncoderConfig
from kubecast.media.contribution import CodecConfig, Frame

from .audio import AudioPassthrough, AudioTranscoder, audio_track_id
from .manual_slate import SlateSchedule
from .publisher import Publisher
from .segmenter import EpochEnd, PendingEnd
from .timing import ConnectionClock

log = logging.getLogger("kubecast.encoder")

Audio = AudioPassthrough | AudioTranscoder
# (contribution track, language) -> that track's output
AudioFactory = Callable[[int, str | None], Audio]


@dataclass
class AudioTracks:
    main: Audio  # the contribution's audio track 0
    make: AudioFactory
    # The further tracks, each in its own language, by contribution track
    languages: dict[int, Audio] = field(default_factory=dict)

    @property
    def all(self) -> list[Audio]:
        return [self.main, *self.languages.values()]

    def _language_audio(self, record: CodecConfig | Frame) -> Audio | None:
        audio = self.languages.get(record.track)
        if audio is None and isinstance(record, CodecConfig) and record.language is not None:
            audio = self.languages[record.track] = self.make(record.track, record.language)
            log.info("audio track %d in %s: published as %s", record.track, record.language, audio.track_id)
        return audio

    def record(self, record: CodecConfig | Frame) -> None:
        audio = self.main if record.track == 0 else self._language_audio(record)
        if audio is None:
            return  # another track without a language: a copy of track 0 (the ingest drops them too)
        if isinstance(record, CodecConfig):
            audio.configure(record.data, record.language)
        else:
            audio.push(record)

    def pad_silence(self, until: int) -> None:
        for audio in self.all:
            if isinstance(audio, AudioTranscoder):
                audio.pad_silence(until)

    def drain(self) -> None:
        for audio in self.all:
            audio.drain()

    def pending_ends(self) -> list[PendingEnd | None]:
        return [end for audio in self.all for end in audio.pending_ends()]

    def finish(self, end: EpochEnd | None) -> None:
        for audio in self.all:
            audio.finish(end)


def connection_audio(
    *,
    config: EncoderConfig,
    clock: ConnectionClock,
    origin: Callable[[], int | None],
    slate: SlateSchedule | None,
    publisher: Publisher,
) -> AudioTracks:
    """The audio outputs of a connection: each passed through, or re-encoded on the frame grid every
    audio track of the connection shares (``origin``: after a slate, the slate's), silent in the
    manual ``slate``'s segments."""

    def make(track: int, language: str | None) -> Audio:
        named: dict[str, Any] = dict(
            clock=clock,
            track_id=audio_track_id(track),
            language=language,
            segment_duration_ms=config.segment_duration_ms,
            publish_track=publisher.track,
            publish_segment=publisher.segment,
        )
        if config.passthrough:
            return AudioPassthrough(**named)
        return AudioTranscoder(
            bitrate=config.audio_bitrate,
            origin=origin(),
            slate=slate,
            part_duration_ms=config.part_duration_ms,
            **named,
        )

    return AudioTracks(make(0, None), make)

"""One pushed stream (a Smooth POST, or the segments of one CMAF track): its boxes as they
arrive, checked and forwarded to the channel as contribution records (``http.py`` takes the
requests)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import TYPE_CHECKING

from kubecast.media.contribution import CodecConfig, Cue, Frame, Kind
from kubecast.media.fmp4 import BoxStream, FragmentSample, TrackConfig, parse_fragment, parse_init
from kubecast.media.mp4 import Mp4Error

from .. import metrics
from ..config import ChannelRoute
from ..cues import CueGate
from ..publication import ChannelStopped, Source
from .sparse import (
    SparseDeclaration,
    SparseError,
    SparseTrack,
    fragment_track_ids,
    is_live_manifest,
    live_manifest_declarations,
    sparse_cue,
    sparse_message,
    sparse_tracks,
)

if TYPE_CHECKING:
    from .http import HttpIngest

log = logging.getLogger("kubecast.ingest")

RESEND_WINDOW_SECONDS = 30  # an encoder resends at most this far back after a reconnect
MAX_GAP_SECONDS = 60  # a longer jump ahead is a new clock, not a gap (encoders pause less)
MAX_COMPOSITION_SECONDS = 10  # real composition offsets are a few pictures; hours mean a damaged trun


class TimestampJump(Mp4Error):
    pass


class RequestBody:
    """The box state of one request body: a reconnecting Smooth encoder starts over with ftyp
    and moov, and each CMAF request is a whole segment."""

    def __init__(self) -> None:
        self.boxes = BoxStream()
        self.moof: bytes | None = None


class PushStream:
    """One pushed stream of a channel (a Smooth POST, or a CMAF track key): its tracks as sources."""

    def __init__(self, ingest: "HttpIngest", route: ChannelRoute, name: str, protocol: str, peer: str):
        self.ingest, self.route, self.name, self.protocol, self.peer = ingest, route, name, protocol, peer
        self.session_id = uuid.uuid4().hex[:8]
        self.tracks: dict[int, TrackConfig] = {}
        self.sources: dict[int, Source] = {}
        self.audio_numbers: dict[int, int] = {}  # audio track id -> its number in the contribution
        self.unannounced: set[int] = set()  # tracks whose codec configuration is not forwarded yet
        self.declarations: list[SparseDeclaration] = []  # of the live server manifest box
        self.sparse: dict[int, SparseTrack] = {}
        self.cues = CueGate()
        # One request body at a time feeds a stream: an encoder opens segment n+1 while the
        # ingest may still be reading n, and n's samples must go out first and whole.
        self.lock = asyncio.Lock()
        self.last_activity = time.monotonic()
        self.ended = False

    def feed(self, body: "RequestBody", data: bytes) -> bool:
        """Forward what ``data`` completes of one request's body; True once the stream says it
        ended (``mfra``)."""
        self.last_activity = time.monotonic()
        try:
            for kind, box in body.boxes.feed(data):
                if kind == b"uuid" and is_live_manifest(box):
                    try:
                        self.declarations = live_manifest_declarations(box)
                    except SparseError as error:
                        self.cues.refuse(error.reason, str(error))
                elif kind == b"moov":
                    self._configure(parse_init(box), box)
                elif kind == b"moof":
                    body.moof = box
                elif kind == b"mdat":
                    if body.moof is None:
                        raise Mp4Error("mdat without a moof before it")
                    self._moof(body.moof, box)
                    body.moof = None
                elif kind == b"mfra":
                    return True
            return False
        finally:
            self.cues.report(self.route.name, self.peer)

    def _configure(self, tracks: list[TrackConfig], moov: bytes) -> None:
        try:
            self.sparse = sparse_tracks(moov, self.declarations)
        except SparseError as error:
            self.cues.refuse(error.reason, str(error))
            self.sparse = {}
        audio = [t for t in tracks if t.kind == "audio"]
        languages = [audio[0]] if audio else []
        for track in audio[1:]:
            if track.language is not None and track.language not in {t.language for t in languages}:
                languages.append(track)
        self.audio_numbers = {track.track_id: number for number, track in enumerate(languages)}
        for track in languages[1:]:  # forwarded through the first audio track's source, numbered
            self.tracks[track.track_id] = track
            self.unannounced.add(track.track_id)
        for track in [t for t in tracks if t.kind == "video"] + audio[:1]:
            if track.track_id in self.sources and self.tracks.get(track.track_id) == track:
                continue
            self.tracks[track.track_id] = track
            if track.track_id not in self.sources:
                name = f"{self.name}#{track.track_id}"
                self.sources[track.track_id] = self.ingest.publications.join(
                    self.route,
                    name=name,
                    session_id=self.session_id,
                    protocol=self.protocol,
                    audio_only=track.kind == "audio",
                )
            self.unannounced.add(track.track_id)  # its header goes out with its first sample's time
        if not self.sources and not self.sparse:
            raise Mp4Error("the stream has neither an H.264 nor an AAC track, nor a sparse track")

    def _moof(self, moof: bytes, mdat: bytes) -> None:
        ids = fragment_track_ids(moof)
        if self.sparse and ids and ids <= self.sparse.keys():
            # Only sparse tracks: what is wrong with it costs the one message, not the stream.
            try:
                samples = parse_fragment(moof, mdat)
            except Mp4Error as error:
                self.cues.refuse("fragment", f"a sparse fragment: {error}")
                return
        else:
            samples = parse_fragment(moof, mdat)
            self._fragment(samples)
        self._sparse(samples)

    def _sparse(self, samples_by_track: dict[int, list[FragmentSample]]) -> None:
        for track_id, samples in samples_by_track.items():
            track = self.sparse.get(track_id)
            if track is None:
                continue
            key = (self.route.name, self.name, track_id)
            for sample in samples:
                last = self.ingest.last_time.get(key)
                if last is not None and sample.decode_time <= last:
                    continue  # resent after a reconnect: already judged
                self.ingest.last_time[key] = sample.decode_time
                try:
                    message = sparse_message(
                        sample.data, scheme=track.scheme, time=sample.decode_time, duration=sample.duration
                    )
                except SparseError as error:
                    self.cues.refuse(error.reason, f"{error} in sparse track {track.name!r}")
                    continue
                now = self.ingest.newest(self.route.name, track.timescale)
                cue = sparse_cue(self.cues, message, timescale=track.timescale, now=now)
                if cue is not None:
                    self._forward_cue(cue)

    def _forward_cue(self, cue: Cue) -> None:
        if not self.ingest.publications.cue(self.route.name, cue):
            self.cues.refuse("early", "a Smooth sparse cue while no media is pushed")

    def _fragment(self, samples_by_track: dict[int, list[FragmentSample]]) -> None:
        if self.ingest.publications.stopped(self.route.name):
            raise ChannelStopped(self.route.name)
        for track_id, samples in samples_by_track.items():
            number = self.audio_numbers.get(track_id, 0)
            first_audio = next(iter(self.audio_numbers), None)
            track = self.tracks.get(track_id)
            source = self.sources.get(track_id if number == 0 or first_audio is None else first_audio)
            if track is None or source is None:
                continue  # a track we do not take (neither H.264 nor the first AAC)
            key = (self.route.name, self.name, track_id)
            last = self.ingest.last_time.get(key)
            for sample in samples:
                if abs(sample.composition_offset) > MAX_COMPOSITION_SECONDS * track.timescale:
                    raise Mp4Error(f"composition offset of {sample.composition_offset} ticks in track {track_id}")
                if not -(1 << 63) <= sample.decode_time < 1 << 63:
                    raise Mp4Error(f"decode time {sample.decode_time} of track {track_id} is out of range")
                if last is not None and sample.decode_time < last - RESEND_WINDOW_SECONDS * track.timescale:
                    # Not a resend: the encoder restarted its clock.  The stream ends; the next
                    # push starts a timeline of its own (a marked discontinuity downstream).
                    self.ingest.forget(self.route.name)
                    raise TimestampJump(
                        f"track {track_id} went back {(last - sample.decode_time) / track.timescale:.1f} s"
                    )
                if last is not None and sample.decode_time > last + MAX_GAP_SECONDS * track.timescale:
                    self.ingest.forget(self.route.name)
                    raise TimestampJump(
                        f"track {track_id} jumped ahead {(sample.decode_time - last) / track.timescale:.1f} s"
                    )
                if last is not None and sample.decode_time <= last:
                    metrics.REJECTED.labels("duplicate_fragment").inc()
                    continue  # resent after a reconnect: already forwarded
                kind = Kind.VIDEO if track.kind == "video" else Kind.AUDIO
                if track_id in self.unannounced:
                    self.unannounced.discard(track_id)
                    language = track.language if kind == Kind.AUDIO else None
                    source.forward(CodecConfig(kind, number, track.codec_config, language=language))
                source.forward(
                    Frame(
                        kind,
                        number,
                        track.timescale,
                        sample.decode_time,
                        sample.composition_offset,
                        sample.duration,
                        sample.keyframe or kind == Kind.AUDIO,
                        sample.data,
                    )
                )
                last = sample.decode_time
            if last is not None:
                self.ingest.last_time[key] = last
                self.ingest.saw(self.route.name, track.timescale, last)

    async def end(self, reason: str) -> None:
        if self.ended:
            return
        self.ended = True
        log.info("%s stream %s of %s from %s ended: %s", self.protocol, self.name, self.route.name, self.peer, reason)
        for source in self.sources.values():
            await self.ingest.publications.leave(source)

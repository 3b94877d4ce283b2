"""A channel's live contribution inside the ingest, whatever protocol brings it.

Every protocol front end (RTMP, Smooth / CMAF HTTP push, MPEG-TS over UDP, RTP or SRT) turns
what it receives into contribution records (``kubecast.media.contribution``: codec configurations
and frames timed in the source's own clock) and hands them to the channel's ``Publication``, which
forwards them to the channel's encoders.  A multi-bitrate contribution arrives as several *sources* of
one channel (several RTMP streams under the channel's key, or several tracks of one HTTP
push); each source is one rendition, numbered in the order they arrive, and the publication
ends when its last source leaves.  ``Publications`` is the registry shared by all front ends of
one ingest process, so a second publisher on a live source is refused whatever its protocol.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from prometheus_client import Counter

from kubecast.api.lifecycle import stopped_refusal
from kubecast.media.contribution import CodecConfig, Cue, Frame, Hello, Kind, Metadata

from . import metrics
from .config import ChannelRoute
from .links import EncoderLink

log = logging.getLogger("kubecast.ingest")

MAX_RENDITIONS = 8


class Publication:
    """The links to a channel's encoders, the configurations a reconnecting link replays, statistics."""

    def __init__(
        self,
        *,
        channel: str,
        session_id: str,
        protocol: str,
        encoders: tuple[tuple[str, int], ...],
        relays: tuple[tuple[str, int], ...] = (),
    ) -> None:
        self.channel = channel
        self.protocol = protocol
        self.headers: dict[tuple[Kind, int], CodecConfig] = {}
        hello = Hello(channel=channel, protocol=protocol, session=session_id)
        relayed = Hello(channel=channel, protocol=protocol, session=session_id, relayed=True)
        self.links = [EncoderLink(address=address, hello=hello, headers=self.headers) for address in encoders]
        self.links += [EncoderLink(address=address, hello=relayed, headers=self.headers) for address in relays]
        self.window_bytes = 0
        self.window_started = time.monotonic()
        self._bytes = metrics.BYTES.labels(channel)
        self._frames: dict[Kind, Counter] = {}
        # Audio tracks other than 0 whose configuration names a language: another language of the
        # contribution (an MPEG-TS PID per language), published beside track 0.
        self._languages: set[int] = set()

    def forward(self, record: CodecConfig | Frame | Cue | Metadata) -> None:
        if isinstance(record, Cue | Metadata):
            (metrics.CUES if isinstance(record, Cue) else metrics.METADATA).labels(self.channel).inc()
            for link in self.links:
                link.send(record)
            return
        if record.kind == Kind.AUDIO and record.track != 0:
            if isinstance(record, CodecConfig):
                if record.language is not None:
                    self._languages.add(record.track)
                else:
                    self._languages.discard(record.track)
            if record.track not in self._languages:
                return  # it repeats track 0 (each rendition of a multi-bitrate publish carries the audio)
        if isinstance(record, CodecConfig):
            self.headers[(record.kind, record.track)] = record
        for link in self.links:
            link.send(record)
        if isinstance(record, Frame):
            self._bytes.inc(len(record.data))
            frames = self._frames.get(record.kind)
            if frames is None:  # looked up once: labels() costs more than the rest of forwarding a frame
                frames = self._frames[record.kind] = metrics.FRAMES.labels(
                    self.channel, "video" if record.kind == Kind.VIDEO else "audio"
                )
            frames.inc()
            self.window_bytes += len(record.data)
        now = time.monotonic()
        if now - self.window_started >= 2:
            metrics.BITRATE.labels(self.channel).set(self.window_bytes * 8 / (now - self.window_started))
            self.window_bytes, self.window_started = 0, now

    async def close(self) -> None:
        await asyncio.gather(*(link.close() for link in self.links))
        metrics.BITRATE.labels(self.channel).set(0)


AUDIO_ONLY = -1  # the track of a source that carries only the contribution's audio (Smooth, CMAF)
SPARE_AUDIO = -2  # another stream's copy of the audio (parallel pushes that each mux it): not forwarded


@dataclass(frozen=True)
class Source:
    """One publisher's share of a publication: its rendition index and who it is."""

    channel: str
    name: str  # the rendition's name in the contribution ("" for a single-bitrate one)
    session_id: str
    track: int
    publication: Publication

    def forward(self, record: CodecConfig | Frame | Cue | Metadata) -> None:
        if isinstance(record, Cue | Metadata):
            # One source's markers and tags: every rendition of a publish repeats them.
            if self.track in (0, AUDIO_ONLY):
                self.publication.forward(record)
            return
        if self.track == SPARE_AUDIO:
            return
        if self.track == AUDIO_ONLY:
            if record.kind == Kind.AUDIO:  # numbered by the push: 0 its audio, 1… its further languages
                self.publication.forward(record)
            return
        if record.kind == Kind.AUDIO and record.track != 0:
            if self.track == 0:  # the source's own further audio tracks (languages): numbered by the source
                self.publication.forward(record)
            return
        self.publication.forward(record if record.track == self.track else replace(record, track=self.track))


class Busy(Exception):
    """The source is already being published; the message says which."""


class ChannelStopped(Busy):
    """The channel's spec.state is Stopped: it takes no contribution until it is started."""

    def __init__(self, channel: str) -> None:
        super().__init__(stopped_refusal(channel))


class Publications:
    def __init__(self, *, recheck_stopped: Callable[[], frozenset[str]] | None = None) -> None:
        """``recheck_stopped``: the stopped channels as their source says right now (locally, a read
        of the file ``kubecast up`` rewrites), asked before a publisher is refused for a stopped
        channel: ``kubecast up`` reports a channel Running once it has rewritten the file, and a
        publisher that comes at once must not be refused because the next poll has not read it yet."""
        self._live: dict[str, tuple[Publication, dict[str, Source]]] = {}
        self._stopped: frozenset[str] = frozenset()
        self._recheck_stopped = recheck_stopped

    def live(self, channel: str) -> bool:
        return channel in self._live

    def stopped(self, channel: str) -> bool:
        return channel in self._stopped

    def set_stopped(self, channels: frozenset[str]) -> None:
        """The channels that are stopped from now on.  A live publisher of one is refused at its
        next frame by its front end (``stopped``), which ends its connection."""
        for channel in sorted(channels - self._stopped):
            log.info("channel %s is stopped: its publishers are refused", channel)
        for channel in sorted(self._stopped - channels):
            log.info("channel %s is started: it takes a publisher", channel)
        self._stopped = channels

    def join(
        self, route: ChannelRoute, *, name: str, session_id: str, protocol: str, audio_only: bool = False
    ) -> Source:
        """A publisher starts sending rendition ``name`` of ``route``'s channel (or, with
        ``audio_only``, the contribution's audio track, which takes no rendition index)."""
        if route.name in self._stopped and self._recheck_stopped is not None:
            try:
                self.set_stopped(self._recheck_stopped())
            except ValueError:
                pass  # unreadable: the follower says so, and the last good answer stands
        if route.name in self._stopped:
            raise ChannelStopped(route.name)
        if route.name in self._live:
            publication, sources = self._live[route.name]
            if name in sources:
                raise Busy(f"channel {route.name} already has a publisher" + (f" for rendition {name}" if name else ""))
            if "" in sources or not name:
                raise Busy(f"channel {route.name} already has a single-bitrate publisher")
            if len(sources) >= MAX_RENDITIONS:
                raise Busy(f"channel {route.name} already has {MAX_RENDITIONS} renditions")
            track = min(set(range(MAX_RENDITIONS)) - {s.track for s in sources.values()})
        else:
            publication = Publication(
                channel=route.name,
                session_id=session_id,
                protocol=protocol,
                encoders=route.encoders,
                relays=route.relays,
            )
            sources, track = {}, 0
            self._live[route.name] = (publication, sources)
            metrics.PUBLISHERS.labels(route.name).set(1)
        if audio_only:
            # One audio track per contribution: two interleaved copies under one track number
            # would decode as garbage.  The first stream to bring audio carries it.
            track = SPARE_AUDIO if any(s.track == AUDIO_ONLY for s in sources.values()) else AUDIO_ONLY
            if track == SPARE_AUDIO:
                log.info(
                    "channel %s: the audio of %s repeats the audio already taken; it is not forwarded", route.name, name
                )
        source = Source(route.name, name, session_id, track, publication)
        sources[name] = source
        return source

    def cue(self, channel: str, cue: Cue) -> bool:
        """``cue`` to the encoders of ``channel``'s live publication (a marker that came on a
        stream of its own, a Smooth sparse track); False when nothing is being published."""
        entry = self._live.get(channel)
        if entry is None:
            return False
        entry[0].forward(cue)
        return True

    def release(self, source: Source) -> Publication | None:
        """The source's publisher stopped; returns the publication to close when it was the last.

        Synchronous, so that a new publisher arriving right after is not refused as busy."""
        entry = self._live.get(source.channel)
        if entry is None or entry[1].get(source.name) is not source:
            return None
        publication, sources = entry
        del sources[source.name]
        if sources:
            return None
        del self._live[source.channel]
        metrics.PUBLISHERS.labels(source.channel).set(0)
        return publication

    async def leave(self, source: Source) -> None:
        """The source's publisher stopped; the last one to stop ends the contribution."""
        if (publication := self.release(source)) is not None:
            await publication.close()

"""One MPEG-TS contribution (UDP, RTP or SRT) as a source of its channel's publication.

The datagram and SRT front ends only move bytes; this is where they become contribution records (see
``ts.TsContribution``), where damage is counted per channel, and where a contribution whose
clock jumps ends so that the next one is placed on the channel timeline afresh.
"""

from __future__ import annotations

import logging
import uuid

from .. import metrics
from ..config import ChannelRoute
from ..publication import Publication, Publications, Source
from .ts import TimestampJump, TsContribution

log = logging.getLogger("kubecast.ingest")


class TsSession:
    def __init__(self, publications: Publications, route: ChannelRoute, *, peer: str, protocol: str):
        self.publications = publications
        self.route = route
        self.peer = peer
        self.protocol = protocol
        self.session_id = uuid.uuid4().hex[:8]
        self.contribution = TsContribution()
        self.source: Source | None = None
        self._counted = {"sync_losses": 0, "continuity_errors": 0, "dropped_frames": 0, "malformed_pes": 0}
        self._timebases = 0

    def start(self) -> None:
        """Join the channel's publication (raises ``publication.Busy``)."""
        self.source = self.publications.join(self.route, name="", session_id=self.session_id, protocol=self.protocol)
        log.info(
            "%s publishes channel %s over %s (session %s)", self.peer, self.route.name, self.protocol, self.session_id
        )

    def feed(self, data: bytes) -> bool:
        """Forward what ``data`` completes; False when the contribution must end (its clock jumped,
        or the channel was stopped)."""
        try:
            records = self.contribution.feed(data)
        except TimestampJump as jump:
            self._count()  # damage the same bytes held still counts
            metrics.PROTOCOL_ERRORS.labels("timestamp_jump").inc()
            log.warning("ending the %s contribution of %s from %s: %s", self.protocol, self.route.name, self.peer, jump)
            return False
        assert self.source is not None  # fed only once started
        if self.publications.stopped(self.route.name):
            metrics.REJECTED.labels("stopped").inc()
            log.warning(
                "ending the %s contribution of %s from %s: the channel is stopped",
                self.protocol,
                self.route.name,
                self.peer,
            )
            return False
        for record in records:
            self.source.forward(record)
        self._count()
        return True

    def _count(self) -> None:
        self.contribution.cues.report(self.route.name, self.peer)
        self.contribution.metadata.report(self.route.name, self.peer)
        stats = self.contribution.stats
        if stats.timebase_changes > self._timebases:
            self._timebases = stats.timebase_changes
            log.info(
                "%s contribution of %s from %s: the encoder signalled a new time base (PCR discontinuity); the "
                "timeline carries on",
                self.protocol,
                self.route.name,
                self.peer,
            )
        for kind, counted in self._counted.items():
            now = getattr(stats, kind)
            if now > counted:
                metrics.TRANSPORT_ERRORS.labels(self.route.name, kind).inc(now - counted)
                if counted == 0:
                    log.warning(
                        "%s contribution of %s from %s is damaged (%s); counting in "
                        "kubecast_ingest_transport_errors_total",
                        self.protocol,
                        self.route.name,
                        self.peer,
                        kind.replace("_", " "),
                    )
                self._counted[kind] = now

    def end(self, reason: str) -> Publication | None:
        """Stop at once (a new publisher may follow right away); returns the publication to close."""
        if self.source is None:
            return None
        try:
            for record in self.contribution.flush():
                self.source.forward(record)
        except TimestampJump:
            pass
        log.info("%s contribution of %s from %s ended: %s", self.protocol, self.route.name, self.peer, reason)
        source, self.source = self.source, None
        return self.publications.release(source)

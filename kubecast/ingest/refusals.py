"""What an ingest drops from a contribution besides its media (ad markers, timed metadata):
each refusal is counted with its reason, and logged once per reason and contribution, so that a
stream of garbage neither floods the log nor goes unseen; the media goes on untouched."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import ClassVar

from prometheus_client import Counter

log = logging.getLogger("kubecast.ingest")


@dataclass
class Refusals:
    """One contribution's refusals; ``refusals`` holds (reason, message) until reported."""

    counter: ClassVar[Counter]
    dropping: ClassVar[str]  # what is dropped, for the log line: "an ad marker"

    refusals: list[tuple[str, str]] = field(default_factory=list)
    _logged: set[str] = field(default_factory=set)

    def refuse(self, reason: str, message: str) -> None:
        self.refusals.append((reason, message))

    def report(self, channel: str, peer: str) -> None:
        for reason, message in self.refusals:
            self.counter.labels(channel, reason).inc()
            if reason not in self._logged:
                self._logged.add(reason)
                log.warning(
                    "dropping %s in the contribution of %s from %s: %s (counting in %s_total)",
                    self.dropping,
                    channel,
                    peer,
                    message,
                    next(iter(self.counter.describe())).name,
                )
        self.refusals.clear()

"""One log line per outage interval, shared by every component that retries through failures.

While storage is away every write, read or request fails, often many times a second; a line (or a
traceback) for each one buried the lines that said why, and filled the node's disk.  An
:class:`Outage` tracks one run of failures of one kind: when it began, whether a line is due now,
and how many failures the last line left out.  Thread-safe: the encoder's uploads fail and
succeed side by side.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

LOG_EVERY_SECONDS = 10.0


class Outage:
    def __init__(self, every: float = LOG_EVERY_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self.since: float | None = None  # the clock's time of the first failure of the current outage
        self._logged_at: float | None = None
        self._left_out = 0
        self._lock = threading.Lock()

    def failed(self) -> int | None:
        """Count a failure.  Returns ``None`` when no line is due, else how many failures were not
        logged since the last line (the first failure of an outage is always logged)."""
        with self._lock:
            now = self.clock()
            if self.since is None:
                self.since = now
            elif self._logged_at is not None and now - self._logged_at < self.every:
                self._left_out += 1
                return None
            left_out, self._left_out, self._logged_at = self._left_out, 0, now
            return left_out

    def ended(self) -> float | None:
        """Count a success.  Returns how long the outage it ends lasted, or ``None`` if there was none."""
        with self._lock:
            if self.since is None:
                return None
            lasted, self.since = self.clock() - self.since, None
            return lasted


def left_out_note(left_out: int) -> str:
    return f" ({left_out} more failures not shown since the last line)" if left_out else ""

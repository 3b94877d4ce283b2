"""The channel's control record, followed while the encoder runs: a thread reads it every
``POLL_SECONDS`` so that the contribution's thread never waits on the store for it (a store
that hangs must not hold the pictures up).  What it holds now is the manual slate."""

from __future__ import annotations

import logging
import threading

from kubecast.storage import ChannelControl, Store, layout

log = logging.getLogger("kubecast.encoder")

POLL_SECONDS = 0.5


class ControlFollower(threading.Thread):
    def __init__(self, *, store: Store, channel: str) -> None:
        super().__init__(name=f"control-{channel}", daemon=True)
        self.store = store
        self.channel = channel
        self.latest: ChannelControl | None = None
        self.stopping = threading.Event()
        self._complained = False

    def read(self) -> None:
        try:
            data = self.store.get_sync(layout.control_key(self.channel))
            self.latest = ChannelControl.from_json(data) if data is not None else None
            self._complained = False
        except Exception as error:  # noqa: BLE001 - an unreadable record changes nothing; the next read tries again
            if not self._complained:
                log.error("the control record of %s is unreadable (%s); keeping the last one", self.channel, error)
                self._complained = True

    def run(self) -> None:
        while not self.stopping.wait(POLL_SECONDS):
            self.read()

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)

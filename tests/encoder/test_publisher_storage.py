"""The encoder's writer while storage fails: it keeps every segment it can hold, in order, and
lists a segment only once it is stored; past its backlog it drops the oldest, counted."""

from __future__ import annotations

import logging
import random

from helpers import wait_until
from prometheus_client import REGISTRY

from kubecast.encoder.publisher import Publisher
from kubecast.encoder.segmenter import Segment
from kubecast.storage import EncoderProgress, Store, layout


class FlakyStore(Store):
    """A memory store whose writes fail while ``down`` is set, as a store behind a dead link does."""

    def __init__(self) -> None:
        super().__init__("memory://")
        self.down = False
        self.attempts_while_down = 0

    def put_sync(self, key: str, data: bytes) -> None:
        if self.down:
            self.attempts_while_down += 1
            raise ConnectionError("storage unreachable (test)")
        super().put_sync(key, data)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def listed(store: Store, track: str) -> list[int]:
    data = store.get_sync(layout.progress_key("c", "A"))
    if data is None:
        return []
    return [r.number for r in EncoderProgress.from_json(data).segments.get(track, [])]


def segment(number: int) -> Segment:
    return Segment(number, number * 1000, 1000, bytes([number % 256]) * 100, False)


def test_segments_wait_for_storage_and_are_listed_only_once_stored(caplog):
    store = FlakyStore()
    publisher = Publisher(store=store, channel="c", instance="A", segment_duration_ms=1000, rng=random.Random(5))
    publisher.start()
    try:
        publisher.segment("v", segment(0))
        wait_until(lambda: listed(store, "v") == [0], timeout=10, what="segment 0 listed")
        errors = metric("kubecast_encoder_store_errors_total", reason="unavailable")
        store.down = True
        with caplog.at_level(logging.WARNING, logger="kubecast.encoder"):
            for number in range(1, 6):
                publisher.segment("v", segment(number))
            wait_until(lambda: store.attempts_while_down >= 3, timeout=10, what="retries")
        assert listed(store, "v") == [0], "nothing new may be listed while it is not stored"
        assert metric("kubecast_encoder_store_errors_total", reason="unavailable") >= errors + 3
        assert metric("kubecast_encoder_upload_backlog_segments") >= 4
        assert any("storage fails (storage unreachable (test))" in r.getMessage() for r in caplog.records)
        store.down = False
        wait_until(lambda: listed(store, "v") == [0, 1, 2, 3, 4, 5], timeout=10, what="the backlog stored")
        for number in range(6):
            assert store.get_sync(layout.segment_key("c", "A", "v", number)) == segment(number).data
    finally:
        publisher.stop()


def test_past_the_backlog_the_oldest_waiting_segments_are_dropped_and_counted(caplog):
    store = FlakyStore()
    publisher = Publisher(
        store=store, channel="c", instance="A", segment_duration_ms=1000, backlog_seconds=3, rng=random.Random(6)
    )
    dropped = metric("kubecast_encoder_segments_dropped_total", rendition="w")
    publisher.start()
    try:
        store.down = True
        with caplog.at_level(logging.WARNING, logger="kubecast.encoder"):
            publisher.segment("w", segment(10))
            # The writer takes what waits, up to four at once: let it hold 10 alone, retrying, so
            # that what the queue keeps does not depend on how the threads were scheduled.
            wait_until(lambda: store.attempts_while_down >= 1, timeout=10, what="the writer retrying segment 10")
            for number in range(11, 18):
                publisher.segment("w", segment(number))
        # the queue keeps the newest three behind the one in hand: 11 to 14 are dropped
        assert metric("kubecast_encoder_segments_dropped_total", rendition="w") - dropped == 4
        assert any("upload backlog of c/A full" in r.getMessage() for r in caplog.records)
        store.down = False
        wait_until(lambda: listed(store, "w")[-3:] == [15, 16, 17], timeout=10, what="the newest stored")
        assert listed(store, "w") == [10, 15, 16, 17]
        assert publisher.last_written == 17  # numbers used, stored or not: a new contribution goes after them
    finally:
        publisher.stop()

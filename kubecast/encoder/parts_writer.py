"""The low-latency parts' own writer to object storage.

A low-latency channel's parts have a queue and a writer thread of their own: the parts waiting
side by side are stored together, then ``parts.json`` lists them (so it never names a part not
yet stored); a whole segment stored (by the publisher's writer) is recorded there as ``complete``
with the next write.  On their own because each batch of parts is two dependent writes every few
hundred milliseconds: behind segments, progress.json and thumbnails in one writer, they fell
seconds behind on an object store with 30 ms a request (bench/low_latency_cost.py --store s3).
A part waiting when a later segment of its track is queued is dropped: it is late for any
low-latency player, and the whole segment is on its way; unless a part of its segment was taken
already, since the parts listed of a segment must add up to it (``UploadQueue.drop_parts_before``).
Nothing a player needs is lost either way: every segment is also stored whole, by the publisher's
writer.

Writes go through the publisher's ``put`` (retried with backoff, outages reported once), so
storage failing looks the same to an operator whichever writer met it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from kubecast.media.parts import PARTS_KEPT_SEGMENTS, EncoderParts, PartRecord, TrackParts, part_target_ms
from kubecast.media.tracks import TrackInfo
from kubecast.storage import layout

from . import metrics
from .segmenter import Part
from .uploads import PartUpload, UploadQueue

log = logging.getLogger("kubecast.encoder")

# Parts waiting side by side are stored together, and listed with one parts.json write; the
# renditions of a ladder finish a part a few tens of milliseconds apart (each its own x264), so
# the writer waits up to PART_GATHER_SECONDS for every track's part before listing: one
# parts.json PUT per part instead of one per track, for that much delay on the fastest track.
PART_BATCH = 16
PART_GATHER_SECONDS = 0.05


class PartsWriter:
    def __init__(
        self,
        *,
        channel: str,
        instance: str,
        session: str,
        part_duration_ms: int,
        concurrency: int,
        put: Callable[[str, bytes, str], None],
        tracks: Callable[[], list[TrackInfo]],
    ):
        self.channel = channel
        self.instance = instance
        self._put = put  # the publisher's write: retried, its outages reported
        self._tracks = tracks  # the encoder's tracks as progress.json lists them (for the part target)
        self.edge = EncoderParts(
            channel=channel,
            instance=instance,
            session=session,
            updated=datetime.now(timezone.utc),
            part_duration_ms=part_duration_ms,
            part_target_ms=part_target_ms(part_duration_ms, []),
        )
        # Parts only (max_segments bounds segments, of which this queue holds none): bounded by
        # dropping the waiting parts of earlier segments not begun when a later segment is complete.
        self._parts = UploadQueue(max_segments=1)
        self._edge_lock = threading.Lock()  # self.edge: its parts from this writer, ``complete`` from the other
        self._part_uploads = ThreadPoolExecutor(concurrency, thread_name_prefix=f"parts-{channel}-{instance}")
        self._parts_thread = threading.Thread(target=self._run_parts, name=f"parts-{channel}-{instance}", daemon=True)

    # -- called from the publisher --
    def start(self) -> None:
        self._parts_thread.start()

    def close(self) -> None:
        self._parts.close()

    def join(self, timeout: float) -> None:
        if self._parts_thread.is_alive():
            self._parts_thread.join(timeout)
        self._part_uploads.shutdown(wait=False)

    def part(self, track_id: str, part: Part) -> None:
        self._parts.put(PartUpload(track_id, part))

    def segment_queued(self, track_id: str, number: int) -> None:
        """Segment ``number`` of the track is on its way whole: its parts still waiting are late."""
        self._parts.drop_parts_before(track_id, number)

    def segment_stored(self, track_id: str, number: int) -> None:
        """Segment ``number`` of the track is stored whole: the next parts.json says so."""
        with self._edge_lock:
            track = self.edge.tracks.setdefault(track_id, TrackParts())
            track.complete = max(track.complete or number, number)

    # -- the parts writer thread --
    def _run_parts(self) -> None:
        while True:
            item = self._parts.get()
            if item is None:
                return
            try:
                assert isinstance(item, PartUpload)  # this queue takes parts only
                self._store_parts(self._gather_parts(item))
            except Exception:  # noqa: BLE001 - the writer must outlive one bad item
                log.exception("encoder publisher failed on a part")

    def _gather_parts(self, first: PartUpload) -> list[PartUpload]:
        """``first`` and the parts that follow it until every track that cuts parts has one of
        this part index (or ``PART_GATHER_SECONDS`` pass)."""
        batch = [first, *self._parts.take_parts(PART_BATCH - 1)]
        with self._edge_lock:
            tracks = set(self.edge.tracks)
        deadline = time.monotonic() + PART_GATHER_SECONDS
        while not tracks <= {upload.track_id for upload in batch} and len(batch) < PART_BATCH:
            left = deadline - time.monotonic()
            more = self._parts.take_parts(PART_BATCH - len(batch), wait=left) if left > 0 else []
            if not more:
                break
            batch += more
        return batch

    def _store_parts(self, uploads: list[PartUpload]) -> None:
        """Store the parts side by side, then list them in parts.json (one write for all)."""

        def store(upload: PartUpload) -> None:
            part = upload.part
            key = layout.part_key(self.channel, self.instance, upload.track_id, part.number, part.index)
            self._put(key, part.data, "part")

        list(self._part_uploads.map(store, uploads))
        with self._edge_lock:
            record = self._record_parts(self.edge, uploads)
        self._put(layout.parts_key(self.channel, self.instance), record, "parts_index")

    def _record_parts(self, edge: EncoderParts, uploads: list[PartUpload]) -> bytes:
        """parts.json with ``uploads`` (stored) listed."""
        for upload in uploads:
            part = upload.part
            track = edge.tracks.setdefault(upload.track_id, TrackParts())
            track.parts.append(
                PartRecord(
                    number=part.number,
                    part=part.index,
                    start=part.start,
                    duration=part.duration,
                    size=len(part.data),
                    independent=part.independent,
                    discontinuity=part.discontinuity,
                )
            )
            oldest = part.number - PARTS_KEPT_SEGMENTS + 1
            track.parts = [record for record in track.parts if record.number >= oldest]
            metrics.PARTS.labels(upload.track_id).inc()
        edge.updated = datetime.now(timezone.utc)
        edge.part_target_ms = part_target_ms(edge.part_duration_ms, self._tracks())
        return edge.to_json()

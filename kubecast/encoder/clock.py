"""The channel's clock in storage: media time 0 and the epochs both encoders map onto.

Both values are written with a conditional create (first writer wins on every backend), so
encoders A and B agree without talking to each other; the loser of a race reads the winner's
value.  See ``timing.py`` for the placement rules.

Where the channel's timeline stands (the newest segment number in use, which a new epoch must
follow) is read from what the encoders own: each encoder's ``progress.json`` lists its newest
segments, and the epochs their first numbers.  The packager's ``timeline.json`` is not read:
it is the packager's output, written after the encoders' and only while a packager runs, so an
encoder that read it would place a contribution by a lagging (or frozen) copy of the encoders'
own rows, and would depend on a component downstream of it.  A damaged ``clock/start.json`` is
restored from the same rows (every encoder's ``progress.json`` carries the channel's
``availabilityStartTime``), read in a fixed order so that both encoders restore the same value.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from kubecast.storage import ChannelControl, ClockStart, EncoderProgress, Epoch, Store, layout

from .timing import Placement, place_connection

log = logging.getLogger("kubecast.encoder")


class ChannelClock:
    def __init__(self, *, store: Store, channel: str, instance: str, segment_duration_ms: int) -> None:
        self.store = store
        self.channel = channel
        self.instance = instance
        self.segment_duration_ms = segment_duration_ms
        self._start: datetime | None = None

    def availability_start(self, now: datetime, fallback: datetime | None = None) -> datetime:
        """Media time 0; the first encoder ever to ask sets it (to ``fallback``, an older
        record of this encoder's, or now)."""
        if self._start is None:
            key = layout.clock_key(self.channel)
            data = self.store.get_sync(key)
            if data is None:
                self.store.put_new_sync(key, ClockStart(availability_start_time=fallback or now).to_json())
                data = self.store.get_sync(key) or b""  # gone again at once: the repair below decides
            try:
                self._start = ClockStart.model_validate_json(data).availability_start_time
            except ValueError as error:
                self._start = self._repair_start(key, error, fallback or now)
        return self._start

    def _repair_start(self, key: str, error: ValueError, fallback: datetime) -> datetime:
        """A damaged clock must not end the channel: the encoders' progress records hold the same
        instant (both encoders restore the same value from them); a channel that never published
        may start anew."""
        recorded = next(
            (p.availability_start_time for p in self.encoders_progress() if p.availability_start_time), None
        )
        start = recorded or fallback
        log.error(
            "the clock of %s (%s) is unreadable (%s); rewriting it with %s from %s",
            self.channel,
            key,
            str(error).splitlines()[0],
            start.isoformat(),
            "the encoders' progress" if recorded else "this encoder",
        )
        self.store.put_sync(key, ClockStart(availability_start_time=start).to_json())
        return start

    def latest_epoch(self) -> tuple[Epoch | None, int]:
        """The newest readable epoch, and the highest epoch number in use (a damaged epoch
        object is skipped with an error, never reused: a new epoch takes the next number)."""
        keys = sorted(
            info.key for info in self.store.list_sync(layout.clock_prefix(self.channel)) if "/epoch-" in info.key
        )
        highest = int(keys[-1].rsplit("epoch-", 1)[1].split(".")[0]) if keys else -1
        for key in reversed(keys):
            data = self.store.get_sync(key)
            if data is None:
                continue
            try:
                return Epoch.model_validate_json(data), highest
            except ValueError as error:
                log.error(
                    "epoch %s of %s is unreadable (%s); ignoring it", key, self.channel, str(error).splitlines()[0]
                )
        return None, highest

    def encoders_progress(self) -> list[EncoderProgress]:
        """Every encoder's readable ``progress.json``, A first."""
        found = []
        for instance in layout.ENCODER_INSTANCES:
            data = self.store.get_sync(layout.progress_key(self.channel, instance))
            if data is None:
                continue
            try:
                found.append(EncoderProgress.from_json(data))
            except ValueError as error:
                log.warning(
                    "progress of %s/%s is unreadable (%s); ignoring it",
                    self.channel,
                    instance,
                    str(error).splitlines()[0],
                )
        return found

    def newest_written(self) -> int | None:
        """The newest segment number any encoder of the channel has stored."""
        return max(
            (records[-1].number for p in self.encoders_progress() for records in p.segments.values() if records),
            default=None,
        )

    def reset_token(self) -> str | None:
        """The channel's newest reset token (``kubecast channel reset``, the ``kubecast.io/reset``
        annotation); None when none was asked for or the record is unreadable."""
        data = self.store.get_sync(layout.control_key(self.channel))
        try:
            return ChannelControl.model_validate_json(data).reset if data is not None else None
        except ValueError as error:
            log.error("the control record of %s is unreadable (%s); no reset", self.channel, error)
            return None

    def place(self, *, first_timestamp_ms: int, now: datetime, last_written: int | None) -> Placement:
        now_media_ms = int((now - self.availability_start(now)).total_seconds() * 1000)
        numbers = [n for n in (last_written, self.newest_written()) if n is not None]
        last_number = max(numbers) if numbers else None
        reset = self.reset_token()
        for _ in range(5):
            latest, highest = self.latest_epoch()
            if latest is not None and reset is not None and latest.reset != reset:
                latest = None  # reset since: a fresh timeline, whatever the timestamps
            placement = place_connection(
                latest=latest,
                first_timestamp_ms=first_timestamp_ms,
                now_media_ms=now_media_ms,
                segment_duration_ms=self.segment_duration_ms,
                last_number=last_number,
                own_last=last_written,
            )
            if placement.joined:
                log.info(
                    "%s/%s joins epoch %d at segment %d",
                    self.channel,
                    self.instance,
                    placement.epoch,
                    (first_timestamp_ms + placement.offset_ms) // self.segment_duration_ms,
                )
                return placement
            placement = replace(placement, epoch=max(placement.epoch, highest + 1))
            epoch = Epoch(
                epoch=placement.epoch,
                offset_ms=placement.offset_ms,
                first_segment=placement.first_segment,
                created=now,
                instance=self.instance,
                reset=reset,
            )
            if self.store.put_new_sync(layout.epoch_key(self.channel, placement.epoch), epoch.to_json()):
                log.info(
                    "%s/%s starts epoch %d at segment %d",
                    self.channel,
                    self.instance,
                    placement.epoch,
                    placement.first_segment,
                )
                return placement
            # The other encoder created this epoch a moment ago: read it and join it.
        raise RuntimeError(f"could not agree on an epoch for {self.channel}")

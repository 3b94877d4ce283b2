"""The ingest's gates count every refusal and log each reason once per contribution."""

from __future__ import annotations

import logging

import pytest

from kubecast.ingest import metrics
from kubecast.ingest.cues import CueGate
from kubecast.ingest.metadata import MetadataGate


def _count(counter, reason: str) -> float:
    return counter.labels("refusals-test", reason)._value.get()


@pytest.mark.parametrize(
    ("gate_type", "counter", "dropping"),
    [(CueGate, metrics.CUES_REJECTED, "an ad marker"), (MetadataGate, metrics.METADATA_REJECTED, "timed metadata")],
)
def test_every_refusal_is_counted_and_each_reason_logged_once(gate_type, counter, dropping, caplog) -> None:
    gate = gate_type()
    before = {reason: _count(counter, reason) for reason in ("crc", "early")}
    caplog.set_level(logging.WARNING, logger="kubecast.ingest")
    for _ in range(3):
        gate.refuse("crc", "a section whose CRC is wrong")
    gate.report("refusals-test", "10.0.0.1")
    gate.refuse("crc", "a section whose CRC is wrong")
    gate.refuse("early", "before the first frame")
    gate.report("refusals-test", "10.0.0.1")

    assert _count(counter, "crc") == before["crc"] + 4
    assert _count(counter, "early") == before["early"] + 1
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith(f"dropping {dropping} in the contribution of refusals-test from 10.0.0.1: a section")
    assert lines[0].endswith(f"(counting in {counter.describe()[0].name}_total)")
    assert gate.refusals == []
    # A new contribution is logged again: the once is per contribution, not per process.
    fresh = gate_type()
    fresh.refuse("crc", "again")
    fresh.report("refusals-test", "10.0.0.2")
    assert len(caplog.records) == 3

"""A live channel on S3 (moto's server, behind a fault proxy) through 500 ms of latency per
request, 10 % of requests failing with 503 and a 10 s outage, with hls.js playing throughout
(``storage_drill.py``; ``bench/storage_faults.py`` runs a 30 s outage)."""

from __future__ import annotations

import os
import random

import pytest
from storage_drill import SEGMENT_SECONDS, check_nothing_lost, run_drill

pytestmark = pytest.mark.e2e

OUTAGE_SECONDS = 10


def test_storage_faults(tmp_path, s3_endpoint, s3_store_url):
    seed = int(os.environ.get("KUBECAST_FAULT_SEED", random.randrange(1 << 30)))
    result = run_drill(
        tmp_path, s3_endpoint=s3_endpoint, store_url=s3_store_url, outage_seconds=OUTAGE_SECONDS, seed=seed
    )
    print(f"storage faults: peak upload backlog {result.peak_backlog:.0f} segments, proxy {result.proxy_counts}")
    assert result.unreadable_listed == [], "the timeline listed segments the store did not have"
    check_nothing_lost(result.timeline)
    assert result.served_problems == []
    assert [e for e in result.errors if "fatal" in e] == [], result.errors
    stalls = {fault.name: fault.stall for fault in result.faults}
    assert stalls["outage"] <= OUTAGE_SECONDS + SEGMENT_SECONDS, stalls
    assert stalls["500 ms latency per request"] <= SEGMENT_SECONDS, stalls
    assert stalls["10 % of requests 503"] <= SEGMENT_SECONDS, stalls
    assert result.peak_backlog > 0, "the outage never made the encoders hold segments back"

"""A steady live stream costs no status write per report: a report that would only move the
progress fields (segment numbers, the timeline's time) waits up to status.PROGRESS_SECONDS, while
any other news goes out at once and takes the progress with it."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path

import pytest
from emulator import CHANNELS, channel_body, eventually, obj, operator

from kubecast.media.timeline import EncoderHealth, Timeline

pytestmark = pytest.mark.timeout(120)


def write_timeline(store: Path, *, last_segment: int, failovers: int = 0) -> None:
    timeline = Timeline(
        channel="news",
        state="live",
        updated=datetime.now(timezone.utc),
        segment_duration_ms=2000,
        window_ms=60000,
        active_source="B" if failovers else "A",
        failovers=failovers,
        last_failover=datetime.now(timezone.utc) if failovers else None,
        encoders={
            "A": EncoderHealth(state="live", ingest_connected=True, last_segment=last_segment, segments_taken=3),
            "B": EncoderHealth(state="live", ingest_connected=True, last_segment=last_segment, segments_taken=3),
        },
    )
    path = store / "media" / "channels" / "news" / "timeline.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(timeline.to_json())


async def test_progress_alone_writes_no_status_and_news_takes_it_along(cluster, tmp_path, monkeypatch):
    store = tmp_path / "store"
    monkeypatch.setenv("KUBECAST_STORE_URL", str(store))
    cluster.objects["v1/secrets", "media", "news-key"] = {
        "metadata": {"name": "news-key", "namespace": "media"},
        "data": {"streamKey": "c2VjcmV0"},
    }
    cluster.objects[CHANNELS, "media", "news"] = channel_body()
    write_timeline(store, last_segment=40)
    status = lambda: obj(cluster, CHANNELS, "news").raw.get("status") or {}  # noqa: E731
    writes = lambda: sum(1 for r in cluster if r.subresource == "status" and r.method.value == "PATCH")  # noqa: E731
    async with operator():
        await eventually(lambda: (status().get("stream") or {}).get("state") == "live", what="status.stream")
        await eventually(lambda: "ready" in status()["encoders"]["A"], what="the reconcile's status")
        await asyncio.sleep(2)  # the start-up's last writes
        before = writes()
        write_timeline(store, last_segment=50)
        await asyncio.sleep(2.5)  # two reports at the tests' 1 s interval
        assert writes() == before, "a report of progress alone waits"
        assert status()["encoders"]["A"]["lastSegment"] == 40
        write_timeline(store, last_segment=60, failovers=1)
        await eventually(lambda: status()["stream"]["failovers"] == 1, what="the failover")
        assert status()["encoders"]["A"]["lastSegment"] == 60, "the progress goes out with the news"

"""spec.hlsStartOffset from packager.json to the live HLS playlists: the packager writes it into the
timeline it keeps, and an endpoint reading that timeline asks players to start there."""

from __future__ import annotations

from datetime import datetime, timezone

from aiohttp.test_utils import TestClient, TestServer
from merge_fixtures import progress

from kubecast.api import load_text
from kubecast.api.components import PackagerConfig, packager_config
from kubecast.endpoint.app import make_app
from kubecast.packager.service import Packager
from kubecast.storage import Store, layout

CHANNEL = """
apiVersion: kubecast.io/v1alpha1
kind: Channel
metadata: {name: c}
spec: {segmentDuration: 2, hlsStartOffset: 4}
"""


async def test_the_packager_carries_the_channels_start_offset_to_the_endpoints(tmp_path):
    channel = load_text(CHANNEL).channels["c"]
    config = PackagerConfig.model_validate_json(packager_config(channel, instances=["A"]).to_json())
    store = Store(str(tmp_path))
    await store.put(
        layout.progress_key("c", "A"), progress("A", [10, 11, 12], now=datetime.now(timezone.utc)).to_json()
    )
    packager = Packager(
        store=store,
        channel=config.channel,
        instances=config.instances,
        segment_duration_ms=config.segment_duration_ms,
        window_ms=config.window_ms,
        hls_start_offset_ms=config.hls_start_offset_ms,
    )
    assert await packager.step()
    async with TestClient(TestServer(make_app(store))) as client:
        multivariant = await (await client.get("/live/c/index.m3u8")).text()
        assert "#EXT-X-START:TIME-OFFSET=-4.000" in multivariant.splitlines(), multivariant

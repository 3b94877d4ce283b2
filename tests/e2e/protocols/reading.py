"""Reading the protocols pipeline's output, for tests of more than one module."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from helpers import wait_until
from media_checks import media_playlist, multivariant


def segments_of(base: str, channel: str, at_least: int):
    def ready():
        variants, _ = multivariant(f"{base}/live/{channel}/index.m3u8")
        playlist = media_playlist(variants[0].uri)
        return (variants, playlist) if len(playlist.segments) >= at_least else None

    return wait_until(ready, timeout=90, interval=1, what=f"{at_least} segments of {channel}")


# The segment of Shaka's own video index (its start on Shaka's timeline, its URL) that holds a time.
SHAKA_SEGMENT_AT = (
    "(t) => { const m = window.player.getManifest();"
    " for (const variant of (m ? m.variants : [])) { const index = variant.video && variant.video.segmentIndex;"
    " const position = index ? index.find(t) : null; const ref = position == null ? null : index.get(position);"
    " if (ref) return {start: ref.getStartTime(), uri: ref.getUris()[0]}; } return null; }"
)


def newest_epoch(channel_store: Path) -> dict[str, Any]:
    """The newest clock epoch the encoders stored for the channel (its ``firstSegment``, ``offsetMs``)."""
    return json.loads(sorted((channel_store / "clock").glob("epoch-*.json"))[-1].read_text())

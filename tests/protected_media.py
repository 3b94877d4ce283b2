"""Helpers for the protected-delivery tests: ffmpeg's decoded frames, and a DASH or HLS
rendition's bytes fetched as a player fetches them (through its manifest)."""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urljoin

MPD = {"mpd": "urn:mpeg:dash:schema:mpd:2011"}


async def framemd5(source: str, *options: str, data: bytes | None = None, stream: str = "0:v:0?") -> list[str]:
    process = await asyncio.create_subprocess_exec(
        "ffmpeg",
        "-v",
        "error",
        *options,
        "-i",
        source,
        "-map",
        stream,
        "-f",
        "framemd5",
        "-",
        stdin=asyncio.subprocess.PIPE if data is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, _err = await asyncio.wait_for(process.communicate(data), 60)
    return [line.split(",")[-1].strip() for line in out.decode().splitlines() if line and not line.startswith("#")]


async def dash_bytes(client: Any, mpd_path: str, representation: str) -> tuple[bytes, ET.Element]:
    root = ET.fromstring(await (await client.get(mpd_path)).text())
    for adaptation in root.iter("{urn:mpeg:dash:schema:mpd:2011}AdaptationSet"):
        ids = [r.get("id") for r in adaptation.findall("mpd:Representation", MPD)]
        if representation not in ids:
            continue
        template = adaptation.find("mpd:SegmentTemplate", MPD)
        base = mpd_path.rsplit("/", 1)[0] + "/"
        data = await (
            await client.get(base + template.get("initialization").replace("$RepresentationID$", representation))
        ).read()
        time_ = 0
        for s in template.find("mpd:SegmentTimeline", MPD):
            time_ = int(s.get("t", time_))
            for _ in range(int(s.get("r", 0)) + 1):
                media = (
                    template.get("media").replace("$RepresentationID$", representation).replace("$Time$", str(time_))
                )
                response = await client.get(base + media)
                assert response.status == 200, media
                data += await response.read()
                time_ += int(s.get("d"))
        return data, adaptation
    raise AssertionError(f"{representation} not in the MPD")


async def hls_bytes(client: Any, playlist_path: str) -> tuple[bytes, str]:
    """An fMP4 HLS media playlist's init segment and segments, concatenated, and the playlist."""
    playlist = await (await client.get(playlist_path)).text()
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', playlist)
    assert init is not None, playlist
    data = await (await client.get(urljoin(playlist_path, init.group(1)))).read()
    for line in playlist.splitlines():
        if line and not line.startswith("#"):
            response = await client.get(urljoin(playlist_path, line))
            assert response.status == 200, line
            data += await response.read()
    return data, playlist

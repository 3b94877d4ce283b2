"""Readers of what the endpoint serves: playlists, MPDs and the CMAF bytes behind them."""

from __future__ import annotations

import io
import re
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import urljoin

import av

from kubecast.media.mp4 import parse_media_segment

MPD_NS = {"mpd": "urn:mpeg:dash:schema:mpd:2011"}


def fetch(url: str, *, timeout: float = 10) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


@dataclass
class Variant:
    uri: str
    attributes: dict[str, str]


def parse_attributes(text: str) -> dict[str, str]:
    return {key: value.strip('"') for key, value in re.findall(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)', text)}


def multivariant(url: str) -> tuple[list[Variant], list[dict[str, str]]]:
    lines = fetch(url).decode().splitlines()
    assert lines[0] == "#EXTM3U"
    variants, media = [], []
    for index, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            variants.append(Variant(urljoin(url, lines[index + 1]), parse_attributes(line.split(":", 1)[1])))
        elif line.startswith("#EXT-X-MEDIA:"):
            attributes = parse_attributes(line.split(":", 1)[1])
            if "URI" in attributes:  # closed captions are in the video: their rendition has no URI
                attributes["URI"] = urljoin(url, attributes["URI"])
            media.append(attributes)
    return variants, media


@dataclass
class MediaPlaylist:
    init: str
    segments: list[tuple[str, float]]  # (absolute URL, EXTINF duration)
    media_sequence: int
    target_duration: int
    discontinuities: int
    ended: bool
    text: str


def media_playlist(url: str) -> MediaPlaylist:
    text = fetch(url).decode()
    lines = text.splitlines()
    init, segments, sequence, target, discontinuities = None, [], None, None, 0
    for index, line in enumerate(lines):
        if line.startswith("#EXT-X-MAP:"):
            init = urljoin(url, parse_attributes(line.split(":", 1)[1])["URI"])
        elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            sequence = int(line.split(":")[1])
        elif line.startswith("#EXT-X-TARGETDURATION:"):
            target = int(line.split(":")[1])
        elif line.startswith("#EXT-X-DISCONTINUITY") and not line.startswith("#EXT-X-DISCONTINUITY-SEQUENCE"):
            discontinuities += 1
        elif line.startswith("#EXTINF:"):
            segments.append((urljoin(url, lines[index + 1]), float(line[8:].split(",")[0])))
    assert init and sequence is not None and target is not None, text
    return MediaPlaylist(init, segments, sequence, target, discontinuities, "#EXT-X-ENDLIST" in lines, text)


@dataclass
class Track:
    init: bytes
    segments: list[bytes]

    @property
    def timescale(self) -> int:
        """The track's timescale, from its init segment."""
        from kubecast.media.fmp4 import BoxStream, parse_init

        return parse_init(dict(BoxStream().feed(self.init))[b"moov"])[0].timescale

    def decode_times(self) -> list[tuple[int, int]]:
        """(tfdt, duration) of every segment."""
        result = []
        for data in self.segments:
            base, samples = parse_media_segment(data)
            result.append((base, sum(sample.duration for sample in samples)))
        return result

    def frames(self) -> list[tuple[int, bool]]:
        """(pts, keyframe) of every decoded video frame, in presentation order."""
        container = av.open(io.BytesIO(self.init + b"".join(self.segments)), format="mp4")
        try:
            stream = container.streams.video[0]
            return [(frame.pts, frame.key_frame) for frame in container.decode(stream)]
        finally:
            container.close()


def download(playlist: MediaPlaylist) -> Track:
    return Track(fetch(playlist.init), [fetch(url) for url, _ in playlist.segments])


def mpd(url: str) -> ET.Element:
    return ET.fromstring(fetch(url))


def expand_timeline(segment_template: ET.Element) -> list[tuple[int, int]]:
    """(t, d) of every segment a SegmentTimeline describes."""
    entries, time = [], 0
    for s in segment_template.find("mpd:SegmentTimeline", MPD_NS).findall("mpd:S", MPD_NS):
        time = int(s.get("t", time))
        duration, repeat = int(s.get("d")), int(s.get("r", 0))
        for _ in range(repeat + 1):
            entries.append((time, duration))
            time += duration
    return entries

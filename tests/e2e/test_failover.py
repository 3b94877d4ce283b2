"""Active-active encoders, proven by killing things mid-stream.

Each case publishes 60 s of ``testsrc2`` + ``sine`` with Debian's ffmpeg, either to both
ingests (dual push, the ``tee`` muxer) or to the primary only (relay), through TCP links the
test can cut; hls.js plays the channel in headless Chromium; at a seeded random moment a part
is killed with SIGKILL (restarted after a few seconds where the case says so).  Then what was
published must have every segment number, continuous decode times except at a marked
discontinuity, the expected number of discontinuities, HLS and DASH that decode end to end,
and the player must not have stalled longer than one segment or reported an error.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin

import av
import pytest
from drill import Link, Pipeline, Player, seeded
from helpers import Proc, lavfi_source, wait_until
from media_checks import MPD_NS, download, expand_timeline, fetch, media_playlist, mpd

from kubecast.media.tracks import SegmentRecord

pytestmark = [pytest.mark.e2e, pytest.mark.failover]

PUBLISH_SECONDS = 60
SEGMENT_SECONDS = 2
RENDITIONS = ["v360", "v180", "audio"]
KEY = "key-for-cam1"

MANIFEST = """
apiVersion: kubecast.io/v1alpha1
kind: Channel
metadata: {{name: cam1}}
spec:
  ingest:
    redundancy: {mode}
    streamKeySecretRef: {{name: cam1-key, key: streamKey}}
  encoding:
    preset: Custom
    x264Preset: ultrafast
    renditions:
      - {{name: v360, width: 640, height: 360, bitrate: 800000, profile: High}}
      - {{name: v180, width: 320, height: 180, bitrate: 250000, profile: Baseline}}
  segmentDuration: {segment}
  liveWindow: 300
---
apiVersion: v1
kind: Secret
metadata: {{name: cam1-key}}
stringData: {{streamKey: {key}}}
"""


def publish(urls: list[str], *, seconds: float) -> Proc:
    """Debian's ffmpeg as the contribution encoder: one FLV output, or the same stream to each URL."""
    if len(urls) == 1:
        output = ["-f", "flv", urls[0]]
    else:
        output = ["-f", "tee", "|".join(f"[f=flv:onfail=ignore]{url}" for url in urls)]
    return Proc(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "warning",
            "-re",
            *lavfi_source(size="640x360"),
            "-t",
            f"{seconds:.1f}",
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "60",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-ac",  # stereo: the contribution's AAC is copied (COPIED_AAC), by both encoders alike
            "2",
            "-flags",
            "+global_header",
            *output,
        ],
        name="ffmpeg publisher",
    )


@dataclass
class Drill:
    """One running case: the pipeline, the links the publisher goes through, the publisher."""

    pipeline: Pipeline
    mode: str
    links: dict[str, Link] = field(default_factory=dict)
    publishers: list[Proc] = field(default_factory=list)
    started: float = 0.0

    def connect(self, seconds: float) -> None:
        instances = ["A", "B"] if self.mode == "DualPush" else ["A"]
        for instance in instances:
            port = self.pipeline.ports.rtmp if instance == "A" else self.pipeline.ports.rtmp_secondary
            self.links[instance] = Link(port)
        urls = [f"rtmp://127.0.0.1:{self.links[i].port}/live/cam1/{KEY}" for i in instances]
        self.publishers.append(publish(urls, seconds=seconds))

    @property
    def publisher(self) -> Proc:
        return self.publishers[-1]

    def at(self, second: float) -> None:
        """Sleep until ``second`` seconds after the first publisher started."""
        time.sleep(max(0.0, self.started + second - time.monotonic()))

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def encoders_live(self, *instances: str) -> bool:
        encoders = self.pipeline.timeline("cam1")["encoders"]
        return all(encoders.get(i, {}).get("state") == "live" and encoders[i].get("ingestConnected") for i in instances)

    def wait_live(self, *instances: str, timeout: float = 30) -> None:
        wait_until(
            lambda: self.encoders_live(*instances), timeout=timeout, interval=0.2, what=f"encoders {instances} live"
        )

    def close(self) -> None:
        for publisher in self.publishers:
            publisher.stop()
        for link in self.links.values():
            link.cut()
        self.pipeline.stop()


# The cases: each gets the running drill and its seeded random generator, and performs its
# kills between ~15 s and ~45 s into the 60 s stream.


def encoder_a_killed(drill: Drill, rng) -> None:
    drill.at(rng.uniform(15, 30))
    drill.pipeline.kill(drill.pipeline.encoder("cam1", "A"))


def encoder_b_restarted_then_a_killed(drill: Drill, rng) -> None:
    pipeline = drill.pipeline
    drill.at(rng.uniform(12, 20))
    pipeline.kill(pipeline.encoder("cam1", "B"))
    time.sleep(rng.uniform(3, 6))
    pipeline.start(pipeline.encoder("cam1", "B"))
    drill.wait_live("B")
    # Live is not yet enough: the restarted B decodes from the source's next key frame (up to a GOP
    # away) and stores a segment only when it holds all of it. Wait for B's first complete copy of
    # every rendition after its return, then kill A at a random point of a later segment.
    back_at = max(track["segments"][-1][0] for track in pipeline.timeline("cam1")["tracks"] if track["segments"])
    wait_until(
        lambda: b_holds_every_rendition_after(pipeline.progress("cam1", "B"), back_at),
        timeout=30,
        interval=0.2,
        what=f"encoder B's complete segments after {back_at}",
    )
    time.sleep(rng.uniform(0, 2 * SEGMENT_SECONDS))
    pipeline.kill(pipeline.encoder("cam1", "A"))


def b_holds_every_rendition_after(progress: dict, number: int) -> bool:
    segments = {track: [SegmentRecord(*row) for row in rows] for track, rows in progress.get("segments", {}).items()}
    return all(
        any(record.number > number and not record.final for record in segments.get(rendition, []))
        for rendition in RENDITIONS
    )


def packager_restarted(drill: Drill, rng) -> None:
    drill.at(rng.uniform(15, 30))
    drill.pipeline.kill(drill.pipeline.packager("cam1"))
    time.sleep(rng.uniform(3, 8))
    drill.pipeline.start(drill.pipeline.packager("cam1"))


def primary_connection_dropped(drill: Drill, rng) -> None:
    drill.at(rng.uniform(15, 30))
    drill.links["A"].cut()


def both_paths_dropped_for_five_seconds(drill: Drill, rng) -> None:
    drill.at(rng.uniform(15, 25))
    drill.publisher.stop(timeout=0)  # the contribution encoder's box goes away: both paths at once
    for link in drill.links.values():
        link.cut()
    time.sleep(5)
    drill.connect(seconds=max(10.0, PUBLISH_SECONDS - drill.elapsed()))


CASES = {
    "encoder-A-killed": (encoder_a_killed, "DualPush", 0),
    "encoder-B-restarted-then-A-killed": (encoder_b_restarted_then_a_killed, "DualPush", 0),
    "packager-restarted": (packager_restarted, "DualPush", 0),
    "primary-connection-dropped": (primary_connection_dropped, "DualPush", 0),
    "both-paths-dropped-5s": (both_paths_dropped_for_five_seconds, "DualPush", 1),
    "relay-encoder-A-killed": (encoder_a_killed, "Relay", 0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_kill(case, tmp_path):
    action, mode, expected_discontinuities = CASES[case]
    _, rng = seeded(case)
    manifest = tmp_path / "channel.yaml"
    manifest.write_text(MANIFEST.format(mode=mode, segment=SEGMENT_SECONDS, key=KEY))
    drill = Drill(Pipeline(manifest, tmp_path), mode)
    player = None
    try:
        drill.pipeline.start()
        drill.started = time.monotonic()
        drill.connect(seconds=PUBLISH_SECONDS)
        drill.wait_live("A", "B")
        wait_until(
            lambda: min((len(t["segments"]) for t in drill.pipeline.timeline("cam1")["tracks"]), default=0) >= 3,
            timeout=30,
            interval=0.2,
            what="three segments of every rendition",
        )  # what the player needs to start
        player = Player(f"{drill.pipeline.base}/preview/cam1/")
        player.wait_playing()
        action(drill, rng)
        assert drill.elapsed() < PUBLISH_SECONDS - 12, "the kill came too late to prove anything"
        drill.at(PUBLISH_SECONDS - 4)  # the player has played well past the kill; the stream has not ended yet
        stall, errors = player.longest_stall(), player.errors()
        position = player.position()
        print(
            f"{case}: longest player stall {stall:.2f} s, position {position:.1f} s, player errors {errors}", flush=True
        )
        player.close()
        player = None
        wait_until(lambda: not drill.publisher.alive(), timeout=30, interval=0.5, what="the publisher to finish")
        wait_until(
            lambda: drill.pipeline.timeline("cam1")["state"] == "waiting",
            timeout=30,
            interval=0.5,
            what="the channel to go idle",
        )

        check_timeline(drill.pipeline.timeline("cam1"), expected_discontinuities)
        check_hls(drill.pipeline.base, expected_discontinuities)
        check_dash(drill.pipeline.base)
        if expected_discontinuities or action is packager_restarted:
            # Media was really missing, or nothing new was listed while the packager was down
            # (up to 8 s, longer than the player's buffer ahead): hls.js may report the stall as
            # a non-fatal event; the stall limit below still holds for the packager.
            errors = [e for e in errors if "fatal" in e or "bufferStalledError" not in e]
        assert errors == [], f"the player reported errors: {errors}"
        assert position > PUBLISH_SECONDS - 30, f"the player got stuck at {position:.1f} s"
        if expected_discontinuities == 0:
            assert stall <= SEGMENT_SECONDS, f"the player stalled for {stall:.2f} s"
    finally:
        if player:
            player.close()
        drill.close()


def check_timeline(index: dict, expected_discontinuities: int) -> None:
    tracks = {t["info"]["id"]: t for t in index["tracks"]}
    assert sorted(tracks) == sorted(RENDITIONS)
    numbers_by_track = {}
    for track_id, track in tracks.items():
        rows = track["segments"]
        numbers = [row[0] for row in rows]
        numbers_by_track[track_id] = numbers
        discontinuities = [row[0] for row in rows[1:] if row[5]]
        assert len(discontinuities) == expected_discontinuities, f"{track_id}: discontinuities at {discontinuities}"
        for previous, row in zip(rows, rows[1:]):
            assert row[0] > previous[0], f"{track_id}: numbering went back at {row[0]}"
            if row[5]:
                assert row[1] > previous[1] + previous[2], (
                    f"{track_id}: a discontinuity without missing media at {row[0]}"
                )
            else:
                assert row[0] == previous[0] + 1, f"{track_id}: segment {previous[0] + 1} is missing"
                assert row[1] == previous[1] + previous[2], f"{track_id}: gap or overlap before segment {row[0]}"
        # Whole segments, except where the contribution really ended: before a gap and at the end.
        ended = {previous[0] for previous, row in zip(rows, rows[1:]) if row[5]} | {rows[-1][0]}
        short = [
            row[0]
            for row in rows
            if row[0] not in ended and abs(row[2] / track["info"]["timescale"] - SEGMENT_SECONDS) >= 0.05
        ]
        assert not short, f"{track_id}: short segments {short} in {rows}"
    # The renditions agree on every number; the contribution's end may leave one of them a
    # last short segment more than the others.
    first = max(numbers[0] for numbers in numbers_by_track.values())
    last = min(numbers[-1] for numbers in numbers_by_track.values())
    assert first == min(numbers[0] for numbers in numbers_by_track.values()), (
        f"renditions start apart: {numbers_by_track}"
    )
    shared = {track_id: [n for n in numbers if n <= last] for track_id, numbers in numbers_by_track.items()}
    assert len(set(map(tuple, shared.values()))) == 1, f"renditions disagree on the segment numbers: {numbers_by_track}"
    assert all(len(numbers) - len(shared[t]) <= 1 for t, numbers in numbers_by_track.items()), numbers_by_track


def check_hls(base: str, expected_discontinuities: int) -> None:
    for rendition in RENDITIONS:
        playlist = media_playlist(f"{base}/live/cam1/{rendition}/index.m3u8")
        assert playlist.discontinuities == expected_discontinuities, playlist.text
        track = download(playlist)
        listed = sum(duration for _, duration in playlist.segments)  # seconds the playlist promises
        if rendition == "audio":
            container = av.open(io.BytesIO(track.init + b"".join(track.segments)), format="mp4")
            samples = sum(frame.samples for frame in container.decode(audio=0))
            container.close()
            assert samples >= 48000 * (listed - 0.1), f"{rendition}: {samples} samples for {listed:.2f} s"
        else:
            frames = track.frames()
            assert len(frames) >= 30 * (listed - 0.1), f"{rendition}: {len(frames)} frames for {listed:.2f} s"


def check_dash(base: str) -> None:
    url = f"{base}/live/cam1/manifest.mpd"
    for adaptation in mpd(url).findall(".//mpd:AdaptationSet", MPD_NS):
        template = adaptation.find("mpd:SegmentTemplate", MPD_NS)
        for representation in adaptation.findall("mpd:Representation", MPD_NS):
            rid = representation.get("id")
            init = fetch(urljoin(url, template.get("initialization").replace("$RepresentationID$", rid)))
            media = template.get("media").replace("$RepresentationID$", rid)
            segments = [fetch(urljoin(url, media.replace("$Time$", str(t)))) for t, _ in expand_timeline(template)]
            assert len(segments) >= (PUBLISH_SECONDS - 20) // SEGMENT_SECONDS, rid
            container = av.open(io.BytesIO(init + b"".join(segments)), format="mp4")
            decoded = sum(1 for _ in container.decode(container.streams[0]))
            container.close()
            assert decoded > 0, rid

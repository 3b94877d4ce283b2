"""The manual slate end to end on one machine, with both encoders of the pair: ffmpeg publishes
over RTMP, `kubecast channel slate studio on` and then `off` are typed while it runs, hls.js in
Chromium plays through both switches without a stall or an error, and PyAV reads the stored
segments: the picture before, the card and silence from the same boundary on both encoders,
the picture again after the boundary of the off, and A's and B's copies interchangeable.
The same run then asks a manual cue (`kubecast channel cue studio --duration 30`, then `--end`):
both encoders place the same splice on the same boundary, and hls.js sees the DATERANGE with
the SCTE-35 section there."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import av
import pytest
from drill import Player
from helpers import COPIED_AAC, Proc, kubecast, kubecast_up, rtmp_publisher, wait_until
from media_checks import media_playlist

from kubecast.encoder.card import card_frame, luma_rows
from kubecast.media.scte35 import parse_splice_info

pytestmark = pytest.mark.e2e

SEGMENT_SECONDS = 1.0
CHANNEL = """
# A live-encoded channel (one small rendition, cheap on 2 cores), no slate on input loss; the
# primary ingest relays the contribution to encoder B.
apiVersion: kubecast.io/v1alpha1
kind: Channel
metadata: {name: studio}
spec:
  ingest: {redundancy: Relay}
  segmentDuration: 1
  liveWindow: 30
  encoding:
    preset: Custom
    x264Preset: ultrafast
    renditions:
    - {name: v240, width: 320, height: 240, bitrate: 400000}
"""


def newest(playlist_url: str) -> int:
    return max(int(url.rsplit("/", 1)[1].split(".")[0]) for url, _ in media_playlist(playlist_url).segments)


def luma_difference(frame: av.VideoFrame, card: av.VideoFrame) -> float:
    pairs = zip(b"".join(luma_rows(frame)), b"".join(luma_rows(card)))
    return sum(abs(a - b) for a, b in pairs) / (frame.width * frame.height)


def only_init(folder: Path) -> bytes:
    inits = list(folder.glob("init-*.mp4"))
    assert len(inits) == 1, f"{folder}: the card shares the contribution's init segment: {inits}"
    return inits[0].read_bytes()


def pictures(init: bytes, *segments: bytes) -> list[av.VideoFrame]:
    return list(av.open(io.BytesIO(init + b"".join(segments)), format="mp4").decode(video=0))


def loudest(init: bytes, segment: bytes) -> float:
    frames = list(av.open(io.BytesIO(init + segment), format="mp4").decode(audio=0))
    assert frames
    return max(max(abs(x) for x in struct.unpack(f"{f.samples}f", bytes(f.planes[0])[: 4 * f.samples])) for f in frames)


def switch(store: Path, state: str) -> None:
    done = kubecast("channel", "slate", "studio", state, "--store", str(store))
    assert done.popen.wait(30) == 0, done.output()


# hls.js's view of a break it has seen both ends of: its date range (the out's and the in's tags
# merged by ID), and the fragments whose program date-times the range starts and ends at.
BREAK = (
    "() => { const p = window.kubecastPlayer.player;"
    " for (const l of p.levels) { const d = l.details; if (!d || !d.dateRanges) continue;"
    " for (const r of Object.values(d.dateRanges)) { if (!r.attr['SCTE35-OUT'] || !r.attr['SCTE35-IN']) continue;"
    " const at = (t) => d.fragments.find((x) => Math.abs(x.programDateTime - t) < 2);"
    " const f = at(r.startDate.getTime()), g = r.endDate ? at(r.endDate.getTime()) : null;"
    " if (f && g) return {id: r.id, start: r.startTime, out: r.attr['SCTE35-OUT'], back: r.attr['SCTE35-IN'],"
    " first: f.relurl, firstStart: f.start, last: g.relurl}; } } return null; }"
)


def ask_cue(store: Path, *args: str) -> str:
    done = kubecast("channel", "cue", "studio", *args, "--store", str(store))
    assert done.popen.wait(30) == 0, done.output()
    return done.output()


def check_a_manual_cue(up: Proc, player: Player, store: Path, live: str) -> None:
    """A break of 30 s asked, then ended: the splice out and back in on one boundary each, the same
    on both encoders, listed once, and seen by hls.js at those segments' start."""
    assert "cue id 1" in ask_cue(store, "--duration", "30")
    out = up.wait_for_line(r"ad marker: splice out \(event 1\) at media time ([\d.]+) s for 30.000 s", timeout=30)
    ask_cue(store, "--end")
    back = up.wait_for_line(r"ad marker: splice in \(event 1\) at media time ([\d.]+) s", timeout=30)
    first, last = (round(float(line.group(1)) / SEGMENT_SECONDS) for line in (out, back))
    assert float(out.group(1)) == first * SEGMENT_SECONDS and last > first, "on segment boundaries, in after out"
    wait_until(lambda: "SCTE35-IN" in media_playlist(live).text, timeout=30, interval=0.5, what="the break listed")
    log = up.output(last=4000)
    assert log.count(out.group(0)) == 2 and log.count(back.group(0)) == 2, "both encoders, one boundary each"
    seen = player.page.wait_for_function(BREAK, timeout=30_000).json_value()
    assert [seen[end].rsplit("/", 1)[-1] for end in ("first", "last")] == [f"{first}.m4s", f"{last}.m4s"], seen
    assert abs(seen["start"] - seen["firstStart"]) <= 1 / 30, "hls.js puts the break at its segment's start"
    sections = [parse_splice_info(bytes.fromhex(seen[key][2:])).splice for key in ("out", "back")]
    assert [(s.event_id, s.out, s.pts) for s in sections] == [(1, True, first * 90_000), (1, False, last * 90_000)]
    assert sections[0].duration == 30 * 90_000


def test_a_manual_slate_switches_both_encoders_at_one_boundary_and_back(tmp_path):
    (tmp_path / "channel.yaml").write_text(CHANNEL)
    store = tmp_path / "store"
    run = kubecast_up(tmp_path / "channel.yaml", store, tmp_path, single_encoder=False)
    up, base, rtmp = run.proc, run.base, run.rtmp
    live = f"{base}/live/studio/v240/index.m3u8"
    player = publisher = None
    try:
        up.wait_for_line(r"Status page:", timeout=90)
        publisher = Proc(rtmp_publisher(f"rtmp://127.0.0.1:{rtmp}/live/studio/any", 120, COPIED_AAC), name="publisher")
        wait_until(lambda: len(media_playlist(live).segments) >= 3, timeout=60, interval=0.5, what="3 segments")
        player = Player(f"{base}/preview/studio/")
        player.wait_playing()
        switch(store, "on")
        on = int(up.wait_for_line(r"manual slate on from segment (\d+)", timeout=30).group(1))
        wait_until(lambda: newest(live) >= on + 1, timeout=30, interval=0.5, what="two slate segments listed")
        switch(store, "off")
        off = int(up.wait_for_line(r"manual slate off from segment (\d+)", timeout=30).group(1))
        wait_until(lambda: newest(live) >= off + 2, timeout=30, interval=0.5, what="the picture listed again")
        playlist = media_playlist(live)
        wait_until(lambda: player.position() > (off + 2) * SEGMENT_SECONDS, timeout=40, what="played past the slate")
        stall, errors = player.longest_stall(), player.errors()
        print(f"slate {on}..{off - 1}; longest stall {stall:.2f} s at {player.position():.1f}", flush=True)
        assert stall <= SEGMENT_SECONDS, (f"the player stalled {stall:.2f} s across the slate", errors)
        assert not errors, errors
        assert playlist.discontinuities == 0, playlist.text

        log = up.output(last=4000)
        assert log.count(f"manual slate on from segment {on}") == 2, "both encoders switch on at one boundary"
        assert log.count(f"manual slate off from segment {off}") == 2, "both encoders switch off at one boundary"
        assert "Traceback" not in log, log
        assert up.output(last=100_000).count("the contribution's AAC is copied") == 2, "by both encoders"
        encoders = store / "channels/studio/encoders"
        card = card_frame(320, 240, "studio")
        video = {i: encoders / i / "v240" for i in "AB"}
        init = only_init(video["A"])
        assert only_init(video["B"]) == init
        for i in "AB":
            assert luma_difference(pictures(init, (video[i] / f"{on - 1}.m4s").read_bytes())[-1], card) > 20
            shown = pictures(init, *((video[i] / f"{n}.m4s").read_bytes() for n in range(on, off)))
            assert len(shown) == 30 * (off - on) and all(luma_difference(p, card) < 6 for p in shown), i
            assert luma_difference(pictures(init, (video[i] / f"{off}.m4s").read_bytes())[0], card) > 20
            audio = encoders / i / "audio"
            assert loudest(only_init(audio), (audio / f"{on + 1}.m4s").read_bytes()) < 1e-3, "the slate is silent"
            assert loudest(only_init(audio), (audio / f"{off + 1}.m4s").read_bytes()) > 0.05, "the tone is back"
        # A's picture, B's card, A's card: one stream, as a player failing over would read it.
        mixed = [(video["A"] / f"{on - 1}.m4s"), (video["B"] / f"{on}.m4s"), (video["A"] / f"{on + 1}.m4s")]
        assert len(pictures(init, *(m.read_bytes() for m in mixed))) == 90
        check_a_manual_cue(up, player, store, live)
    finally:
        if player is not None:
            player.close()
        if publisher is not None:
            publisher.stop()
        up.stop()

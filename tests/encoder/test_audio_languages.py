"""Several audio languages through the encoder process: an MPEG-TS contribution with an AAC PID
per language (as the ingest turns it into records) comes out as one audio track per language, each
with its language, its own audio, and the same segment grid as the video, pass-through or encoded."""

from __future__ import annotations

import io
from pathlib import Path

import av
import pytest
from helpers import contribution_bytes, languages_ts, tone_frequency, wait_until
from test_encoder_process import CHANNEL, LADDER, progress_when, run_encoder, start_encoder, track_bytes

from kubecast.api import load_text
from kubecast.api.components import encoder_config
from kubecast.ingest.mpegts.ts import TsContribution
from kubecast.media.contribution import Frame, Hello, Kind, Record
from kubecast.media.mp4 import parse_media_segment

SECONDS = 4
TONES = {440: "eng", 1000: "spa", 2500: None}  # the third PID names no language: not published


def ts_records(path: Path, channels: int) -> list[Record]:
    ts = languages_ts(path, seconds=SECONDS, tones=TONES, channels=channels)
    demuxer = TsContribution()
    return demuxer.feed(ts) + demuxer.flush()


@pytest.fixture(scope="module")
def contribution(tmp_path_factory) -> bytes:
    return contribution_bytes(ts_records(tmp_path_factory.mktemp("ts") / "languages.ts", channels=1))


@pytest.fixture(scope="module")
def stereo_records(tmp_path_factory) -> list[Record]:
    """Each language in AAC-LC, 48 kHz, stereo, 128 kbit/s: what a live channel sends, so copied."""
    return ts_records(tmp_path_factory.mktemp("ts") / "stereo.ts", channels=2)


def send_ts(port: int, payload: bytes) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(Hello(channel="t1", protocol="SRT", session="test").encode() + payload)


@pytest.mark.parametrize(("preset", "renditions", "video"), [("None", "[]", "video"), ("Custom", LADDER, "v240")])
def test_each_language_is_an_audio_track_on_the_video_grid(tmp_path, contribution, preset, renditions, video):
    process, port = run_encoder(tmp_path, CHANNEL % (preset, renditions))
    with process:
        send_ts(port, contribution)
        record = wait_until(
            lambda: progress_when(tmp_path, lambda p: p["state"] == "waiting" and "audio-1" in p["segments"]),
            timeout=90,
            what="both audio tracks",
        )
    tracks = {t["id"]: t for t in record["tracks"] if t["kind"] == "audio"}
    assert {i: t.get("language") for i, t in tracks.items()} == {"audio": "eng", "audio-1": "spa"}
    numbers = {i: [s[0] for s in record["segments"][i]] for i in (video, "audio", "audio-1")}
    assert numbers["audio"] == numbers["audio-1"] == numbers[video] and len(numbers[video]) >= SECONDS // 2
    for track_id, frequency in (("audio", 440), ("audio-1", 1000)):
        init, segments = track_bytes(tmp_path, record, tracks[track_id])
        times = [parse_media_segment(s)[0] for s in segments]
        durations = [sum(x.duration for x in parse_media_segment(s)[1]) for s in segments]
        assert all(t + d == nxt for t, d, nxt in zip(times, durations, times[1:])), f"{track_id}: no gap"
        assert times == [s[1] for s in record["segments"]["audio"]], "the same times in both languages"
        frames = list(av.open(io.BytesIO(init + b"".join(segments)), format="mp4").decode(audio=0))
        assert sum(f.samples for f in frames) >= frames[0].sample_rate * (SECONDS - 0.5)
        assert tone_frequency(frames[4:]) == pytest.approx(frequency, rel=0.02), f"{track_id} carries its own audio"


@pytest.mark.parametrize("sound", ["mono: re-encoded", "stereo: copied"])
def test_the_slate_carries_every_language_on_with_silence_in_the_same_init(tmp_path, request, sound):
    from test_slate import CHANNEL as SLATE_CHANNEL
    from test_slate import only_init, progress

    copied = sound.startswith("stereo")
    records = request.getfixturevalue("stereo_records") if copied else None
    (tmp_path / "encoder.json").write_text(encoder_config(load_text(SLATE_CHANNEL).channels["t1"]).to_json())
    process, port = start_encoder(tmp_path, "A")
    with process:
        send_ts(port, contribution_bytes(records) if records else request.getfixturevalue("contribution"))

        def numbers(track: str) -> list[int]:
            return [s[0] for s in progress(tmp_path, "A")["segments"].get(track, [])]

        wait_until(lambda: progress(tmp_path, "A")["message"].startswith("slate"), timeout=60, what="the slate")
        last = max(numbers("v240"))
        wait_until(
            lambda: all(max(numbers(t), default=0) >= last + 3 for t in ("v240", "audio", "audio-1")),
            timeout=30,
            what="three slate segments in every track",
        )
    record = progress(tmp_path, "A")
    for track in ("audio", "audio-1"):
        rows = record["segments"][track]
        assert [r[0] for r in rows] == list(range(rows[0][0], rows[-1][0] + 1)), f"{track}: no number missing"
        assert all(a[1] + a[2] == b[1] for a, b in zip(rows, rows[1:])), f"{track}: no gap into the slate"
        only_init(tmp_path, "A", track)  # the slate's silence shares the contribution's init segment
        if records is not None:  # the contribution's frames as they were sent, then the slate's silence
            pid = int(track == "audio-1")
            sent = b"".join(r.data for r in records if isinstance(r, Frame) and r.kind == Kind.AUDIO and r.track == pid)
            _, segments = track_bytes(tmp_path, record, next(t for t in record["tracks"] if t["id"] == track))
            assert segments[1][segments[1].index(b"mdat") + 4 :] in sent, f"{track}: copied"
    assert {t["id"]: t.get("language") for t in record["tracks"] if t["kind"] == "audio"} == {
        "audio": "eng",
        "audio-1": "spa",
    }

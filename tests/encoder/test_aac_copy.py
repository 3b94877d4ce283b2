"""Copying a contribution's AAC in a live-encoded channel: which tracks may be copied (judged on
the AudioSpecificConfig real encoders write), the silence that takes a copied track's place
(continuous in time with the copied frames, decoding to zeros), and the re-encode that takes
over when a copied track's bitrate is above the channel's, without a gap or a new init segment."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import av
import pytest
from helpers import tone_frequency

from kubecast.encoder import metrics
from kubecast.encoder.aac import AAC_FRAME, SAMPLE_RATE
from kubecast.encoder.aac_copy import SegmentBitrate, copy_refusal, silent_aac_frame
from kubecast.encoder.audio import AudioTranscoder
from kubecast.encoder.manual_slate import SlateSchedule, Switch
from kubecast.encoder.segmenter import EpochEnd, Segment
from kubecast.encoder.timing import ConnectionClock, Placement
from kubecast.media.contribution import Frame, Kind
from kubecast.media.mp4 import parse_media_segment
from kubecast.media.tracks import TrackInfo

D = 1000  # segment duration, ms: 46.875 AAC frames, so boundaries fall inside frames
BITRATE = 128_000
SECONDS = 4


def ffmpeg_aac(path: Path, *args: str, seconds: float = SECONDS) -> tuple[bytes, list[bytes]]:
    """(AudioSpecificConfig, frames) of a 1 kHz tone encoded by ffmpeg with ``args``."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000"]
        + ["-t", str(seconds)]
        + [*args, str(path)],
        check=True,
        timeout=60,
    )
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        asc = bytes(stream.codec_context.extradata or b"")
        return asc, [bytes(packet) for packet in container.demux(stream) if packet.size]


@pytest.fixture(scope="module")
def stereo(tmp_path_factory) -> tuple[bytes, list[bytes]]:
    """What a contribution encoder set up like the channel sends: AAC-LC, 48 kHz, stereo, 128 kbit/s."""
    path = tmp_path_factory.mktemp("aac") / "stereo.m4a"
    return ffmpeg_aac(path, "-ac", "2", "-c:a", "aac", "-b:a", "128k")


def test_a_track_is_copied_only_when_it_is_what_the_channel_sends(tmp_path, stereo):
    assert copy_refusal(stereo[0]) is None, stereo[0].hex()  # ffmpeg writes 11 90 56 e5 00 (SBR marked absent)
    gstreamer = tmp_path / "vo.mp4"  # GStreamer's voaacenc writes the bare two bytes
    subprocess.run(
        ["gst-launch-1.0", "-q", "audiotestsrc", "num-buffers=20", "!", "audio/x-raw,rate=48000,channels=2"]
        + ["!", "voaacenc", "!", "aacparse", "!", "mp4mux", "!", "filesink", f"location={gstreamer}"],
        check=True,
        timeout=60,
    )
    with av.open(str(gstreamer)) as container:
        assert copy_refusal(bytes(container.streams.audio[0].codec_context.extradata or b"")) is None
    mono, _ = ffmpeg_aac(tmp_path / "mono.m4a", "-ac", "1", "-c:a", "aac", seconds=0.2)
    assert copy_refusal(mono) == "channel configuration 1, not stereo (2)"
    cd, _ = ffmpeg_aac(tmp_path / "cd.m4a", "-ac", "2", "-ar", "44100", "-c:a", "aac", seconds=0.2)
    assert copy_refusal(cd) == "44100 Hz, not 48000"
    surround, _ = ffmpeg_aac(tmp_path / "51.m4a", "-ac", "6", "-c:a", "aac", seconds=0.2)
    assert copy_refusal(surround) == "channel configuration 6, not stereo (2)"
    # HE-AAC, explicitly (object type 5) and backward compatibly (LC with SBR signalled present)
    assert copy_refusal(bytes.fromhex("2b118800")) == "AAC object type 5, not AAC-LC (2)"
    assert copy_refusal(bytes.fromhex("119056e580")) == "extension object type 5 signalled present"
    assert copy_refusal(bytes.fromhex("1194")) is not None, "960-sample frames"
    assert copy_refusal(bytes.fromhex("11")) == "AudioSpecificConfig too short"


def test_the_silent_frame_decodes_to_silence_under_a_contributions_configuration(stereo):
    silent = silent_aac_frame(BITRATE)
    assert silent is silent_aac_frame(BITRATE), "encoded once per configuration"
    for asc in (stereo[0], bytes.fromhex("1190")):
        decoder = av.CodecContext.create("aac", "r")
        decoder.extradata = asc
        frames = [f for _ in range(3) for f in decoder.decode(av.Packet(silent))]
        assert frames and all(f.samples == AAC_FRAME and f.sample_rate == SAMPLE_RATE for f in frames)
        assert all(not any(bytes(plane)) for f in frames for plane in f.planes), "digital silence"


def test_segment_bitrate_is_told_per_whole_segment():
    measure = SegmentBitrate(SAMPLE_RATE)
    assert [measure.add(0, 300) for _ in range(3)] == [None, None, None]
    # 3 frames of 300 bytes: 900 * 8 bits in 3 * 1024 / 48000 s
    assert measure.add(1, 100) == 900 * 8 * SAMPLE_RATE // (3 * AAC_FRAME)
    assert measure.add(1, 100) is None


class Output:
    """What a track published: its init segment(s) and its segments in order."""

    def __init__(self) -> None:
        self.inits: list[tuple[TrackInfo, bytes]] = []
        self.segments: list[Segment] = []

    def track(self, info: TrackInfo, init: bytes) -> None:
        self.inits.append((info, init))

    def segment(self, _track_id: str, segment: Segment) -> None:
        self.segments.append(segment)

    def times(self) -> list[tuple[int, int]]:
        """(start, end) of every sample, in order."""
        spans = []
        for segment in self.segments:
            start, samples = parse_media_segment(segment.data)
            for sample in samples:
                spans.append((start, start + sample.duration))
                start += sample.duration
        return spans

    def decoded(self, *numbers: int) -> list[av.AudioFrame]:
        init = self.inits[0][1]
        chosen = [s.data for s in self.segments if s.number in numbers]
        return list(av.open(io.BytesIO(init + b"".join(chosen)), format="mp4").decode(audio=0))


def audio_track(output: Output, slate: SlateSchedule | None = None) -> AudioTranscoder:
    return AudioTranscoder(
        bitrate=BITRATE,
        clock=ConnectionClock(Placement(0, 0, 0, joined=False)),
        slate=slate,
        segment_duration_ms=D,
        publish_track=output.track,
        publish_segment=output.segment,
    )


def feed(track: AudioTranscoder, asc: bytes, frames: list[bytes]) -> None:
    track.configure(asc)
    for index, data in enumerate(frames):
        track.push(Frame(Kind.AUDIO, 0, SAMPLE_RATE, index * AAC_FRAME, 0, AAC_FRAME, True, data))


def peak(frames: list[av.AudioFrame]) -> float:
    return max(abs(x) for f in frames for x in memoryview(bytes(f.planes[0])).cast("f")[: f.samples])


def test_copied_frames_keep_their_bytes_and_silence_fills_to_the_boundary_without_a_gap(stereo):
    asc, frames = stereo
    output = Output()
    track = audio_track(output)
    copied = metrics.AUDIO_TRACKS.labels("copied")._value.get()
    feed(track, asc, frames)
    assert metrics.AUDIO_TRACKS.labels("copied")._value.get() == copied + 1
    end = len(frames) * AAC_FRAME
    boundary = -(-end * 1000 // (D * SAMPLE_RATE)) * D * SAMPLE_RATE // 1000  # where a slate would start
    track.pad_silence(boundary)
    track.drain()
    track.finish(EpochEnd(boundary * 1000 // (D * SAMPLE_RATE) - 1, None))
    spans = output.times()
    assert spans[0][0] == 0 and all(a[1] == b[0] for a, b in zip(spans, spans[1:])), "no gap, no overlap"
    assert spans[-1][0] < boundary <= spans[-1][1], "silence up to the boundary the slate starts at"
    payload = b"".join(parse_and_cut(s.data) for s in output.segments)
    assert payload.startswith(b"".join(frames)), "the contribution's frames, byte for byte"
    assert payload[len(b"".join(frames)) :] == silent_aac_frame(BITRATE) * (len(spans) - len(frames))
    last = output.segments[-1].number
    assert tone_frequency(output.decoded(1, 2)) == pytest.approx(1000, rel=0.02)
    assert peak(output.decoded(last)[2:]) == 0.0, "the fill decodes to silence"
    assert len(output.inits) == 1


def parse_and_cut(segment: bytes) -> bytes:
    """The samples of a media segment (its ``mdat`` payload)."""
    return segment[segment.index(b"mdat") + 4 :]


def test_a_manual_slate_replaces_the_copied_frames_of_its_segments_at_their_times(stereo):
    asc, frames = stereo
    output = Output()
    feed(audio_track(output, SlateSchedule(D, [Switch(1, True), Switch(3, False)])), asc, frames)
    spans = output.times()
    assert [s[0] for s in spans] == [i * AAC_FRAME for i in range(len(spans))], "the frames' own times"
    by_number = {s.number: parse_and_cut(s.data) for s in output.segments}
    silent = silent_aac_frame(BITRATE)
    for number in (1, 2):
        assert by_number[number] == silent * (len(by_number[number]) // len(silent)), f"segment {number} silent"
    assert peak(output.decoded(2)[1:]) == 0.0, "the slate's segments are silent"
    assert tone_frequency(output.decoded(3)[2:]) == pytest.approx(1000, rel=0.02), "the tone is back at 3"
    assert by_number[0] == b"".join(frames)[: len(by_number[0])], "copied before the slate"


def test_above_the_channels_bitrate_a_copied_track_is_re_encoded_from_the_next_segment(tmp_path, stereo):
    loud_asc, loud = ffmpeg_aac(tmp_path / "loud.m4a", "-ac", "2", "-c:a", "aac", "-b:a", "256k")
    assert copy_refusal(loud_asc) is None
    output, ended = Output(), metrics.AUDIO_TRACKS.labels("copy_ended")._value.get()
    track = audio_track(output)
    feed(track, loud_asc, loud)
    track.drain()
    track.finish(None)
    assert metrics.AUDIO_TRACKS.labels("copy_ended")._value.get() == ended + 1
    first, *rest = output.segments
    assert parse_and_cut(first.data) == b"".join(loud)[: len(parse_and_cut(first.data))], "segment 0 copied"
    assert len(b"".join(parse_and_cut(s.data) for s in rest)) * 8 < BITRATE * 1.1 * (SECONDS - 1), "re-encoded"
    spans = output.times()
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:])), "no gap where the encoder takes over"
    assert len(output.inits) == 1
    # The same init as a track re-encoded from the start (a mono contribution): one init segment.
    mono_asc, mono = ffmpeg_aac(tmp_path / "mono.m4a", "-ac", "1", "-c:a", "aac", seconds=0.5)
    reencoded = Output()
    mono_track = audio_track(reencoded)
    feed(mono_track, mono_asc, mono)
    mono_track.drain()
    mono_track.finish(None)
    assert reencoded.inits == output.inits
    assert tone_frequency(output.decoded(1, 2, 3)) == pytest.approx(1000, rel=0.02)


def test_a_contribution_clock_that_goes_back_never_makes_the_copied_samples_overlap(stereo):
    # GStreamer's RTMP publisher (flvmux, live) once timed its first audio frames 10 frames ahead and
    # then back: re-anchored there, the copied samples of segment 0 outlasted it (102402 ticks of
    # samples in a 96256-tick segment) and ffmpeg reading the DASH manifest saw decode times go back.
    asc, frames = stereo
    output = Output()
    track = audio_track(output)
    track.configure(asc)
    ahead = {7, 8, 9, 10}  # these four are timed 10 frames later, the rest where they belong
    for index, data in enumerate(frames[:140]):
        time = (index + 10 * (index in ahead)) * AAC_FRAME
        track.push(Frame(Kind.AUDIO, 0, SAMPLE_RATE, time, 0, AAC_FRAME, True, data))
    track.finish(None)
    spans = output.times()
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), "the samples never overlap"
    for segment, following in zip(output.segments, output.segments[1:]):
        start, samples = parse_media_segment(segment.data)
        assert start + sum(s.duration for s in samples) == parse_media_segment(following.data)[0], segment.number
    # the frames timed where the track already was are dropped until the contribution catches up
    # (within the jitter the running count absorbs), as the video drops pictures whose slot is filled
    assert spans[7] == (17 * AAC_FRAME, 18 * AAC_FRAME) and spans[11][0] == 21 * AAC_FRAME
    assert spans[-1][1] - spans[11][0] == (len(spans) - 11) * AAC_FRAME, "contiguous after the drop"

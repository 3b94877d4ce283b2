"""MPEG-TS contribution -> frame records, fed with what Debian's ffmpeg muxes, whole and damaged."""

from __future__ import annotations

import random
import subprocess

import av
import pytest
from helpers import (
    inject_scte35,
    languages_ts,
    lavfi_source,
    make_contribution,
    threefive_splice_insert,
    tone_frequency,
)

from kubecast.ingest.cues import CueGate
from kubecast.ingest.mpegts.ts import TimestampJump, TsContribution
from kubecast.media.contribution import CodecConfig, Cue, Frame, Kind, RecordReader, encode_record
from kubecast.media.mpegts import PACKET_SIZE
from kubecast.media.scte35 import parse_splice_info, splice_insert_section

SECONDS = 2


@pytest.fixture(scope="module")
def transport_stream(tmp_path_factory) -> bytes:
    return make_contribution(tmp_path_factory.mktemp("ts") / "contribution.ts", seconds=SECONDS, container="mpegts")


def convert(data: bytes, *, chunk_sizes=(1316,), seed=0) -> tuple[TsContribution, list]:
    contribution, tags, position, rng = TsContribution(), [], 0, random.Random(seed)
    while position < len(data):
        size = rng.choice(chunk_sizes)
        tags += contribution.feed(data[position : position + size])
        position += size
    return contribution, tags + contribution.flush()


def decode(records) -> tuple[int, int]:
    """Pictures and audio samples FFmpeg decodes from the records, as the encoder decodes them."""
    decoders: dict[Kind, av.CodecContext] = {}
    counts = {Kind.VIDEO: 0, Kind.AUDIO: 0}
    for record in records:
        if isinstance(record, CodecConfig):
            decoders[record.kind] = av.CodecContext.create("h264" if record.kind == Kind.VIDEO else "aac", "r")
            decoders[record.kind].extradata = record.data
            continue
        try:
            decoded = decoders[record.kind].decode(av.Packet(record.data))
        except av.error.FFmpegError:
            continue
        counts[record.kind] += sum(1 if record.kind == Kind.VIDEO else f.samples for f in decoded)
    counts[Kind.VIDEO] += len(decoders[Kind.VIDEO].decode(None))
    return counts[Kind.VIDEO], counts[Kind.AUDIO]


def frames_of(records, kind: Kind) -> list[Frame]:
    return [r for r in records if isinstance(r, Frame) and r.kind == kind]


def test_a_transport_stream_becomes_frames_on_its_own_clock(transport_stream):
    contribution, tags = convert(transport_stream, chunk_sizes=(1, 7, 188, 1316, 4000))
    assert (
        contribution.stats.sync_losses == contribution.stats.continuity_errors == contribution.stats.dropped_frames == 0
    )
    video = [r for r in tags if r.kind == Kind.VIDEO]
    audio = [r for r in tags if r.kind == Kind.AUDIO]
    assert isinstance(video[0], CodecConfig) and isinstance(audio[0], CodecConfig), "decoder configuration comes first"
    frames = frames_of(tags, Kind.VIDEO)
    assert len(frames) == 30 * SECONDS and frames[0].keyframe and frames[0].decode_time == 0
    assert sum(frame.keyframe for frame in frames) == SECONDS
    assert {frame.timescale for frame in tags if isinstance(frame, Frame)} == {90_000}
    assert {b.decode_time - a.decode_time for a, b in zip(frames, frames[1:])} == {3000}, "90 kHz, not rounded to ms"
    assert any(frame.composition_offset > 0 for frame in frames), "B-frames keep their composition offsets"
    assert {frame.composition_offset % 3000 for frame in frames} == {0}
    assert {frame.duration for frame in frames_of(tags, Kind.AUDIO)} == {1920}, (
        "an AAC frame at 48 kHz, in 90 kHz ticks"
    )
    assert abs(len(audio) - 1 - SECONDS * 48000 / 1024) <= 2
    assert decode(tags)[0] == 30 * SECONDS


def test_lost_sync_and_garbage_are_skipped_and_counted(transport_stream):
    damaged = bytearray(transport_stream)
    middle = (
        len(transport_stream) // PACKET_SIZE * 2 // 3 * PACKET_SIZE
    )  # past the first key frame, which carries SPS/PPS
    damaged[middle:middle] = b"\x47garbage" * 5  # bytes between packets, one with a fake sync byte
    contribution, tags = convert(bytes(damaged))
    assert contribution.stats.sync_losses >= 1
    video, samples = decode(tags)
    assert video >= 30 * SECONDS - 2 and samples > 0


def test_a_lost_packet_drops_only_the_frame_it_belonged_to(transport_stream):
    packets = [transport_stream[i : i + PACKET_SIZE] for i in range(0, len(transport_stream), PACKET_SIZE)]
    video_pid = TsContribution()
    video_pid.feed(transport_stream[: 20 * PACKET_SIZE])
    pid = next(p for p, kind in video_pid.demuxer.streams.items() if kind == "video")
    victims = [i for i, p in enumerate(packets) if ((p[1] & 0x1F) << 8 | p[2]) == pid and not p[1] & 0x40]
    victims = victims[len(victims) * 2 // 3 :][:1]  # past the first key frame, which carries SPS/PPS
    contribution, tags = convert(b"".join(p for i, p in enumerate(packets) if i not in victims))
    assert contribution.stats.continuity_errors == 1 and contribution.stats.dropped_frames == 1
    frames = frames_of(tags, Kind.VIDEO)
    assert len(frames) == 30 * SECONDS - 1


def test_a_packet_sent_twice_is_taken_once(transport_stream):
    """ISO 13818-1 lets an encoder repeat a packet (same counter, same bytes): every frame comes
    out exactly as without the copies, and nothing counts as damage."""
    packets = [transport_stream[i : i + PACKET_SIZE] for i in range(0, len(transport_stream), PACKET_SIZE)]
    payload_only = [i for i, p in enumerate(packets) if p[3] & 0x30 == 0x10 and not p[1] & 0x40]
    payload_start = [i for i, p in enumerate(packets) if p[1] & 0x40 and ((p[1] & 0x1F) << 8 | p[2]) > 0x20]
    twice = set(payload_only[5::97]) | set(payload_start[3::11])  # mid-frame (a run) and frame-starting copies
    repeated = b"".join(p + p if i in twice else p for i, p in enumerate(packets))
    for chunk_sizes in ((188 * 7,), (1, 7, 188, 1316, 4000)):
        contribution, tags = convert(repeated, chunk_sizes=chunk_sizes)
        assert contribution.stats.continuity_errors == contribution.stats.dropped_frames == 0
        assert tags == convert(transport_stream, chunk_sizes=chunk_sizes)[1]


def test_truncated_input_loses_only_the_tail(transport_stream):
    cut = len(transport_stream) // 2 + 77  # mid-packet
    contribution, tags = convert(transport_stream[:cut])
    frames = frames_of(tags, Kind.VIDEO)
    assert 0 < len(frames) < 30 * SECONDS
    assert decode(tags)[0] >= len(frames) - 1


def test_timestamps_that_jump_back_end_the_contribution(transport_stream):
    contribution = TsContribution()
    contribution.feed(transport_stream)
    with pytest.raises(TimestampJump, match="jumped"):
        contribution.feed(transport_stream)  # the same stream again: time goes back two seconds
        contribution.flush()


def test_random_bytes_never_raise_and_produce_nothing():
    rng = random.Random(7)
    contribution = TsContribution()
    for _ in range(200):
        assert contribution.feed(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 1500)))) == []
    assert contribution.flush() == []


def spliced(first: bytes, second: bytes, *, signalled: bool) -> bytes:
    """``second`` after ``first`` as one stream: continuity counters carry on across the join,
    and (``signalled``) the first PCR of ``second`` carries the discontinuity_indicator, as a
    splicer or an encoder whose clock restarted sends it."""
    counters, out, marked = {}, bytearray(first), not signalled
    for offset in range(0, len(first), PACKET_SIZE):
        packet = first[offset : offset + PACKET_SIZE]
        if packet[3] & 0x10:
            counters[(packet[1] & 0x1F) << 8 | packet[2]] = packet[3] & 0x0F
    for offset in range(0, len(second), PACKET_SIZE):
        packet = bytearray(second[offset : offset + PACKET_SIZE])
        pid = (packet[1] & 0x1F) << 8 | packet[2]
        if packet[3] & 0x10 and pid in counters:
            counters[pid] = (counters[pid] + 1) & 0x0F
            packet[3] = (packet[3] & 0xF0) | counters[pid]
        if not marked and packet[3] & 0x20 and packet[4] and packet[5] & 0x10:  # the first PCR
            packet[5] |= 0x80
            marked = True
        out += packet
    return bytes(out)


@pytest.fixture(scope="module")
def an_hour_later(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("ts") / "later.ts"
    return make_contribution(path, seconds=SECONDS, container="mpegts", extra=["-output_ts_offset", "3600"])


def test_a_signalled_time_base_change_carries_on_seamlessly(transport_stream, an_hour_later):
    contribution, tags = convert(spliced(transport_stream, an_hour_later, signalled=True), chunk_sizes=(188, 1316))
    assert contribution.stats.timebase_changes == 1
    assert contribution.stats.continuity_errors == contribution.stats.dropped_frames == 0
    frames = [frame.decode_time for frame in frames_of(tags, Kind.VIDEO)]
    assert len(frames) == 2 * 30 * SECONDS
    steps = {b - a for a, b in zip(frames, frames[1:])}
    assert steps == {3000}, f"one frame apart throughout, across the join too: {sorted(steps)}"
    audio = [frame.decode_time for frame in frames_of(tags, Kind.AUDIO)]
    assert max(b - a for a, b in zip(audio, audio[1:])) <= (22 + 40) * 90, "audio carries on too"
    _, alone = convert(transport_stream)
    lip_sync = frames_of(alone, Kind.AUDIO)[-1].decode_time - frames_of(alone, Kind.VIDEO)[-1].decode_time
    assert abs((audio[-1] - frames[-1]) - lip_sync) <= 2 * 90, "audio moved with video: the encoder's lip sync is kept"
    assert decode(tags)[0] == 2 * 30 * SECONDS


def test_the_same_jump_unsignalled_ends_the_contribution(transport_stream, an_hour_later):
    with pytest.raises(TimestampJump):
        convert(spliced(transport_stream, an_hour_later, signalled=False))


# -- SCTE-35 ---------------------------------------------------------------------------------

FIRST_PTS = 1.4  # where ffmpeg's mpegts muxer starts the clock (its default muxdelay)


@pytest.fixture(scope="module")
def with_markers(tmp_path_factory) -> bytes:
    """Eight seconds of ffmpeg TS and threefive's SCTE-35 PID: a break of 10 s announced at 3 s
    for 5 s (PTS), and its end announced at 5 s for 6.5 s (no duration)."""
    folder = tmp_path_factory.mktemp("scte35")
    source = folder / "source.ts"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", *lavfi_source(size="320x240"), "-t", "8", "-c:v", "libx264", "-g", "30"]
        + ["-bf", "2", "-c:a", "aac", "-f", "mpegts", str(source)],
        check=True,
        timeout=60,
    )
    out = threefive_splice_insert(event_id=7, out=True, pts_seconds=FIRST_PTS + 5, duration=10.0)
    back = threefive_splice_insert(event_id=7, out=False, pts_seconds=FIRST_PTS + 6.5, duration=None)
    return inject_scte35(source, folder / "markers.ts", [(FIRST_PTS + 3, out), (FIRST_PTS + 5, back)])


def test_scte35_sections_become_cues_on_the_frames_clock(with_markers):
    contribution, records = convert(with_markers, chunk_sizes=(188, 1316, 4000))
    cues = [r for r in records if isinstance(r, Cue)]
    first_dts = contribution.origin
    assert first_dts is not None
    assert [(c.out, c.event_id, c.duration, c.timescale) for c in cues] == [
        (True, 7, 900_000, 90_000),
        (False, 7, None, 90_000),
    ]
    # The splice times on the contribution's clock, where the frames are: exact 90 kHz ticks.
    assert [c.splice_time for c in cues] == [round((FIRST_PTS + t) * 90_000) - first_dts for t in (5, 6.5)]
    assert parse_splice_info(cues[0].section).splice is not None, "the section is passed on as it came"
    assert contribution.cues.refusals == [] and contribution.stats.continuity_errors == 0
    assert len(frames_of(records, Kind.VIDEO)) > 200, "the marker PID costs no frame"


def test_a_damaged_section_is_dropped_and_counted_and_nothing_else_changes(with_markers):
    damaged = bytearray(with_markers)
    for offset in range(0, len(damaged), PACKET_SIZE):
        if (damaged[offset + 1] & 0x1F) << 8 | damaged[offset + 2] == 0x1F0 and damaged[offset + 1] & 0x40:
            damaged[offset + 20] ^= 0x01  # inside the splice command: the CRC no longer matches
            break
    contribution, records = convert(bytes(damaged))
    cues = [r for r in records if isinstance(r, Cue)]
    assert [c.out for c in cues] == [False], "the damaged out is dropped, the sound in still arrives"
    assert [reason for reason, _ in contribution.cues.refusals] == ["crc"]
    _, clean = convert(with_markers)
    assert frames_of(records, Kind.VIDEO) == frames_of(clean, Kind.VIDEO)


def test_splices_in_the_past_or_far_ahead_are_refused():
    gate, now = CueGate(), 10 * 90_000
    assert gate.timed(Cue(90_000, 8 * 90_000, True, None, 1, b""), now=now, what="splice") is None
    assert gate.timed(Cue(90_000, 3600 * 90_000, True, None, 1, b""), now=now, what="splice") is None
    assert gate.timed(Cue(90_000, int(9.5 * 90_000), True, None, 1, b""), now=now, what="splice") is not None
    assert gate.timed(Cue(90_000, 14 * 90_000, True, None, 1, b""), now=now, what="splice") is not None
    assert [reason for reason, _ in gate.refusals] == ["past", "ahead"]


@pytest.fixture(scope="module")
def languages(tmp_path_factory) -> bytes:
    """English at 440 Hz, Spanish at 1000 Hz and a PID at 2500 Hz that names no language."""
    path = tmp_path_factory.mktemp("ts") / "languages.ts"
    return languages_ts(path, seconds=SECONDS, tones={440: "eng", 1000: "spa", 2500: None})


def test_each_aac_pid_is_an_audio_track_with_the_language_its_pmt_names(languages):
    contribution, records = convert(languages, chunk_sizes=(1, 188, 1316, 4000))
    assert contribution.stats.dropped_frames == 0
    configs = [r for r in records if isinstance(r, CodecConfig) and r.kind == Kind.AUDIO]
    assert [(c.track, c.language) for c in configs] == [(0, "eng"), (1, "spa"), (2, None)]
    tones = {}
    for config in configs:
        frames = [r for r in frames_of(records, Kind.AUDIO) if r.track == config.track]
        assert abs(len(frames) - SECONDS * 48000 / 1024) <= 2 and frames[0].decode_time < 90_000 // 10
        assert all(b.decode_time - a.decode_time == 1920 for a, b in zip(frames, frames[1:])), "each in order"
        decoder = av.CodecContext.create("aac", "r")
        decoder.extradata = config.data
        decoded = [f for frame in frames for f in decoder.decode(av.Packet(frame.data))]
        tones[config.track] = tone_frequency(decoded[4:])
    assert tones == pytest.approx({0: 440, 1: 1000, 2: 2500}, rel=0.02), "each track its own audio"
    assert decode(records)[0] == 30 * SECONDS


def test_a_ts_with_one_audio_pid_still_has_one_track_and_no_language(transport_stream):
    _, records = convert(transport_stream)
    assert {(r.track, r.language) for r in records if isinstance(r, CodecConfig) and r.kind == Kind.AUDIO} == {
        (0, None)
    }
    assert {r.track for r in frames_of(records, Kind.AUDIO)} == {0}


def test_a_break_longer_than_a_record_holds_is_refused_not_a_crash():
    """A break_duration of 26.5 h (33 bits at 90 kHz) once reached the record to the encoders,
    whose duration field has 32 bits: struct.error killed the link of every ingest it reached.
    The fuzzer's input, a time_signal whose segmentation_duration (40 bits) says 26 days, is in
    tests/fuzz/corpus/scte35."""
    gate, now = CueGate(), 10 * 90_000

    def cue(hours: float) -> Cue | None:
        section = splice_insert_section(event_id=1, out=True, pts=now, duration=round(hours * 3600 * 90_000))
        return gate.section(section, timescale=90_000, now=now, to_time=lambda pts: pts)

    assert cue(26.5) is None and cue(12.01) is None
    longest = cue(12)
    assert longest is not None and longest.duration == 12 * 3600 * 90_000
    reader = RecordReader()
    reader.feed(encode_record(longest))
    assert list(reader.records()) == [longest]
    assert [reason for reason, _ in gate.refusals] == ["duration", "duration"]

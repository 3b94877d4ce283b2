"""ID3 timed metadata in an MPEG-TS contribution: libavformat's muxer (through PyAV) writes the
timed_id3 stream as Apple specifies it; the tags become records on the frames' clock, and
damaged tags are dropped with a reason while the media goes on unchanged."""

from __future__ import annotations

import subprocess

import pytest
from helpers import add_timed_id3, ffmpeg_id3_tag, lavfi_source
from test_ts import convert, frames_of

from kubecast.ingest.metadata import MetadataGate
from kubecast.media.contribution import Kind, Metadata
from kubecast.media.mpegts import PACKET_SIZE
from kubecast.media.tspes import PesFrame

AT = [1.5, 3.25]  # seconds after the first video DTS


@pytest.fixture(scope="module")
def tags() -> list[bytes]:
    return [ffmpeg_id3_tag("first title"), ffmpeg_id3_tag("second title")]


@pytest.fixture(scope="module")
def with_id3(tmp_path_factory, tags) -> tuple[bytes, int]:
    """Five seconds of ffmpeg TS with two ID3 tags on a timed_id3 PID; and its first video DTS."""
    folder = tmp_path_factory.mktemp("id3")
    source = folder / "source.ts"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", *lavfi_source(size="320x240"), "-t", "5", "-c:v", "libx264", "-g", "30"]
        + ["-bf", "2", "-c:a", "aac", "-f", "mpegts", str(source)],
        check=True,
        timeout=60,
    )
    first = add_timed_id3(source, folder / "id3.ts", list(zip(AT, tags)))
    return (folder / "id3.ts").read_bytes(), first


def test_id3_tags_become_metadata_on_the_frames_clock(with_id3, tags):
    data, first_video = with_id3
    contribution, records = convert(data, chunk_sizes=(188, 1316, 4000))
    items = [r for r in records if isinstance(r, Metadata)]
    assert [item.data for item in items] == tags
    assert contribution.origin is not None
    # Exact 90 kHz ticks on the contribution's clock (counted from its first frame, audio or video).
    assert [item.time for item in items] == [first_video + round(t * 90_000) - contribution.origin for t in AT]
    assert contribution.metadata.refusals == []
    assert len(frames_of(records, Kind.VIDEO)) == 150, "the metadata PID costs no frame"


def test_a_damaged_tag_is_dropped_with_its_reason_and_nothing_else_changes(with_id3, tags):
    data, _ = with_id3
    damaged = bytearray(data)
    marker = damaged.find(b"ID3\x04")  # the first tag's header, in its PES
    assert marker > 0
    damaged[marker + 6 : marker + 10] = b"\x7f\x7f\x7f\x7f"  # a size of 256 MB in a tag of a few dozen bytes
    contribution, records = convert(bytes(damaged))
    assert [r.data for r in records if isinstance(r, Metadata)] == tags[1:]
    assert [reason for reason, _ in contribution.metadata.refusals] == ["truncated"]
    _, clean = convert(data)
    assert frames_of(records, Kind.VIDEO) == frames_of(clean, Kind.VIDEO)
    assert len(data) % PACKET_SIZE == 0


def test_tags_far_from_the_media_or_before_it_are_refused(tags):
    gate, now = MetadataGate(), 10 * 90_000
    assert gate.id3(tags[0], timescale=90_000, time=now + 3600 * 90_000, now=now) is None
    assert gate.id3(tags[0], timescale=90_000, time=0, now=None) is None
    assert gate.id3(tags[0], timescale=90_000, time=now - 90_000, now=now) == Metadata(90_000, now - 90_000, tags[0])
    assert [reason for reason, _ in gate.refusals] == ["time", "early"]


def test_a_tag_before_the_first_frame_is_refused_not_made_the_origin(tags):
    from kubecast.ingest.mpegts.ts import TsContribution

    contribution = TsContribution()
    records = contribution._convert([PesFrame("id3", 0x102, 9000, 9000, tags[0])])
    assert records == [] and contribution.origin is None
    assert [reason for reason, _ in contribution.metadata.refusals] == ["early"]


def test_an_audio_only_contribution_gets_its_tags_too(tmp_path, tags):
    """A radio: AAC and ID3 now-playing tags, no picture."""
    source = tmp_path / "radio.ts"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "4", "-c:a", "aac"]
        + ["-f", "mpegts", str(source)],
        check=True,
        timeout=60,
    )
    first = add_timed_id3(source, tmp_path / "radio-id3.ts", list(zip(AT, tags)))
    contribution, records = convert((tmp_path / "radio-id3.ts").read_bytes())
    items = [r for r in records if isinstance(r, Metadata)]
    assert [item.data for item in items] == tags and contribution.metadata.refusals == []
    assert [item.time for item in items] == [first + round(t * 90_000) - contribution.origin for t in AT]

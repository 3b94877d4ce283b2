"""RTMP ``onTextData`` into timed metadata: ffmpeg publishes a text subtitle stream (its FLV muxer
writes each subtitle as an ``onTextData`` message at the subtitle's time), and each reaches the
encoder as an ID3 tag at that time; a broken message is dropped and counted."""

from __future__ import annotations

import asyncio
import subprocess

from fake_encoder import FakeEncoder  # noqa: F401  (the fixture's)
from helpers import lavfi_source
from test_rtmp_server import ingest  # noqa: F401  (the fixture, reused)

from kubecast.ingest import metrics
from kubecast.ingest.metadata import MetadataGate
from kubecast.ingest.rtmp import amf0
from kubecast.ingest.rtmp.textdata import text_record
from kubecast.media.contribution import Kind, Metadata
from kubecast.media.id3 import split_tags, text_tag

SUBTITLES = "1\n00:00:00,500 --> 00:00:01,000\nNow playing: the news\n\n2\n00:00:01,250 --> 00:00:01,500\nWeather\n"


async def test_ffmpegs_text_subtitles_arrive_as_id3_tags_at_their_time(ingest, tmp_path):  # noqa: F811
    fake, base = ingest
    subtitles = tmp_path / "s.srt"
    subtitles.write_text(SUBTITLES)
    process = await asyncio.create_subprocess_exec(
        *["ffmpeg", "-v", "error", *lavfi_source(size="160x90", frequency=None), "-i", str(subtitles), "-t", "2"],
        *["-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-c:a", "aac", "-c:s", "text"],
        *["-f", "flv", f"{base}/news/k3y"],
        stderr=subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode(errors="replace")
    await fake.wait(lambda: fake.ended == 1)
    items = [r for r in fake.all_records() if isinstance(r, Metadata)]
    pictures = fake.frames(kind=Kind.VIDEO)
    assert len(pictures) == 60, "the media went on beside the text"
    # On the pictures' clock (ffmpeg moves every stream by the audio's priming, the first picture too).
    origin = pictures[0].decode_time
    assert [(m.timescale, m.time - origin, m.data) for m in items] == [
        (1000, 500, text_tag("onTextData", "Now playing: the news")),
        (1000, 1250, text_tag("onTextData", "Weather")),
    ]


def test_text_tags_are_whole_id3_and_broken_messages_are_refused():
    tag = text_tag("onTextData", "Grüße")
    assert split_tags(tag) == [tag] and "Grüße".encode() in tag
    gate = MetadataGate()
    assert text_record(gate, amf0.encode_all("onTextData", {"text": "hi"}), timestamp=10, newest=10) is not None
    assert text_record(gate, amf0.encode_all("onTextData", {"type": "Text"}), timestamp=10, newest=10) is None
    assert text_record(gate, amf0.encode_all("onTextData") + b"\x03\x00\x04te", timestamp=10, newest=10) is None
    assert text_record(gate, amf0.encode_all("onTextData", {"text": "x"}), timestamp=10, newest=None) is None
    assert [reason for reason, _ in gate.refusals] == ["text", "amf", "early"]
    before = metrics.METADATA_REJECTED.labels("news", "amf")._value.get()
    gate.report("news", "peer")
    assert metrics.METADATA_REJECTED.labels("news", "amf")._value.get() == before + 1

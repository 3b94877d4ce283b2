"""Writes the seed corpora of the fuzz targets from real captures; run once, the output is committed.

    python tests/fuzz/make_seeds.py

ffmpeg encodes a one-second 96x64 H.264 + AAC clip and sends it the ways encoders do: an RTMP
publish to a listener here that answers with ``RtmpSession`` (its bytes are recorded from the
handshake on, and split into handshake, chunk stream and AMF0 seeds), FLV, Smooth (``ismv``),
CMAF (``mp4`` with ``cmaf`` flags, and ``dash`` segments), MPEG-TS, and RTP datagrams to a UDP
socket here.  When GStreamer's ``gst-launch-1.0`` is installed, its ``flvmux``, ``mpegtsmux``
and ``mp4mux`` (fragmented) outputs are added, and access units with CEA-608 captions in their
SEI (``tests/captioned.py``: pycaption's byte pairs, GStreamer's ``cccombiner`` and ``x264enc``).
Text seeds (SRT stream ids, endpoint URLs, resource documents) are written from lists here and
the repository's example manifests.  Seeds are cut to at most ``MAX_SEED`` bytes, which keeps the
fuzzer's inputs small and fast.
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import tempfile
import threading
from pathlib import Path

from kubecast.ingest.rtmp import chunks
from kubecast.ingest.rtmp.server import media_records
from kubecast.ingest.rtmp.session import Media, PublishRequest, RtmpSession
from kubecast.media.contribution import EndOfStream, encode_record

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CORPUS = HERE / "corpus"
MAX_SEED = 6 * 1024
CLIP = [
    "-f",
    "lavfi",
    "-i",
    "testsrc=size=96x64:rate=10:duration=1",
    "-f",
    "lavfi",
    "-i",
    "sine=frequency=440:duration=1",
    "-c:v",
    "libx264",
    "-g",
    "5",
    "-keyint_min",
    "5",
    "-preset",
    "ultrafast",
    "-b:v",
    "50k",
    "-c:a",
    "aac",
    "-b:a",
    "24k",
    "-ar",
    "22050",
    "-ac",
    "1",
]


def write(target: str, name: str, data: bytes) -> None:
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data[:MAX_SEED])


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=60)


def rtmp_capture(clip: Path) -> bytes:
    """What ffmpeg sends to publish the clip over RTMP, from its first handshake byte."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    received = bytearray()

    def serve() -> None:
        connection, _ = listener.accept()
        session = RtmpSession()
        with connection:
            connection.settimeout(10)
            while data := connection.recv(65536):
                received.extend(data)
                for event in session.feed(data):
                    if isinstance(event, PublishRequest):
                        session.accept()
                connection.sendall(session.take_outgoing())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ffmpeg("-i", str(clip), "-c", "copy", "-f", "flv", f"rtmp://127.0.0.1:{port}/live/news/key")
    thread.join(10)
    listener.close()
    return bytes(received)


def rtp_capture(clip: Path) -> bytes:
    """ffmpeg's RTP (MPEG-TS payload) datagrams, each preceded by its 16-bit length."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(2)
    port = receiver.getsockname()[1]
    ffmpeg("-i", str(clip), "-c", "copy", "-f", "rtp_mpegts", f"rtp://127.0.0.1:{port}?pkt_size=1328")
    out = bytearray()
    try:
        while len(out) < MAX_SEED:
            datagram = receiver.recv(65536)
            out += struct.pack(">H", len(datagram)) + datagram
    except TimeoutError:
        pass
    receiver.close()
    return bytes(out)


def gstreamer(work: Path) -> None:
    if shutil.which("gst-launch-1.0") is None:
        print("gst-launch-1.0 not installed: no GStreamer seeds")
        return
    source = (
        "videotestsrc num-buffers=10 ! video/x-raw,width=96,height=64,framerate=10/1 ! x264enc key-int-max=5 ! "
        "h264parse ! queue ! mux. audiotestsrc num-buffers=10 ! audioconvert ! voaacenc ! aacparse ! queue ! mux."
    )
    for target, name, mux in (
        ("flv", "gstreamer.flv", "flvmux name=mux streamable=true"),
        ("mpegts", "gstreamer.ts", "mpegtsmux name=mux"),
        ("fmp4_push", "gstreamer-fragmented.mp4", "mp4mux name=mux fragment-duration=500 streamable=true"),
    ):
        out = work / name
        pipeline = f"{source} {mux} ! filesink location={out}"
        result = subprocess.run(
            ["gst-launch-1.0", "-q", *pipeline.split()], capture_output=True, timeout=60, check=False
        )
        if result.returncode == 0 and out.exists() and out.stat().st_size:
            write(target, name, out.read_bytes())
        else:
            print(f"GStreamer {mux.split()[0]} failed: {result.stderr.decode(errors='replace')[-300:]}")


def captions(work: Path) -> None:
    import sys

    import av

    from kubecast.media.h264 import to_length_prefixed

    sys.path.insert(0, str(HERE.parent))
    from captioned import captioned_ts

    with av.open(str(captioned_ts(work, seconds=4, size=(96, 64)))) as container:
        units = [to_length_prefixed(bytes(packet)) for packet in container.demux(video=0) if packet.size]
    captioned = [unit for unit in units if b"GA94" in unit]
    for index, unit in enumerate(captioned[:: max(1, len(captioned) // 8)]):
        write("captions", f"gstreamer-access-unit-{index}", unit)


def media(work: Path) -> None:
    clip = work / "clip.flv"
    ffmpeg(*CLIP, "-f", "flv", str(clip))
    write("flv", "ffmpeg.flv", clip.read_bytes())
    captions(work)

    captured = rtmp_capture(clip)
    write("rtmp_session", "ffmpeg-publish", captured)
    # What the RTMP ingest hands the encoder for that publish (records cut whole: a seed ending
    # inside a record would only test the reader's waiting).
    records, size = bytearray(), 0
    messages = chunks.ChunkReader().feed(captured[1537 + 1536 :])
    for message in messages:
        if message.type in (chunks.AUDIO, chunks.VIDEO) and message.body:
            for record in media_records(Media(message.type, message.timestamp, message.body)):
                if size + len(encoded := encode_record(record)) <= MAX_SEED - 1:
                    records += encoded
                    size += len(encoded)
    write("contribution", "ffmpeg-publish.records", bytes(records) + encode_record(EndOfStream()))
    write("rtmp_handshake", "ffmpeg-c0c1", captured[:1537])
    write("rtmp_chunks", "ffmpeg-publish-chunks", captured[1537 + 1536 :])
    reader = chunks.ChunkReader()
    amf = [m.body for m in reader.feed(captured[1537 + 1536 :]) if m.type in (chunks.COMMAND_AMF0, chunks.DATA_AMF0)]
    for index, body in enumerate(amf):
        write("amf0", f"ffmpeg-message-{index}", body)

    ffmpeg("-i", str(clip), "-c", "copy", "-movflags", "isml+frag_keyframe", "-f", "ismv", str(work / "smooth.ismv"))
    write("fmp4_push", "ffmpeg-smooth.ismv", (work / "smooth.ismv").read_bytes())
    ffmpeg(
        "-i",
        str(clip),
        "-c",
        "copy",
        "-movflags",
        "cmaf+frag_keyframe+empty_moov+default_base_moof",
        "-f",
        "mp4",
        str(work / "cmaf.mp4"),
    )
    write("fmp4_push", "ffmpeg-cmaf.mp4", (work / "cmaf.mp4").read_bytes())
    dash = work / "dash"
    dash.mkdir()
    ffmpeg("-i", str(clip), "-c", "copy", "-seg_duration", "0.5", "-f", "dash", str(dash / "manifest.mpd"))
    for stream in (0, 1):
        segment = (dash / f"init-stream{stream}.m4s").read_bytes() + (
            dash / f"chunk-stream{stream}-00001.m4s"
        ).read_bytes()
        write("fmp4_push", f"ffmpeg-dash-stream{stream}.m4s", segment)
        write("fmp4_push", f"ffmpeg-dash-chunk{stream}.m4s", (dash / f"chunk-stream{stream}-00002.m4s").read_bytes())

    ffmpeg("-i", str(clip), "-c", "copy", "-f", "mpegts", str(work / "clip.ts"))
    write("mpegts", "ffmpeg.ts", (work / "clip.ts").read_bytes())
    languages(work)
    write("rtp", "ffmpeg-rtp-mpegts", rtp_capture(clip))
    gstreamer(work)


STREAM_IDS = [
    "news",
    "#!::r=news,m=publish",
    "#!::r=news",
    "#!::m=request,r=news",
    "#!::u=admin,r=news,s=abc,t=stream",
    "#!::",
    "#!::r=",
    "",
    "news?x=1",
    "#!::r=news,m=publish,h=example.com",
]
URLS = [
    "/live/news/index.m3u8",
    "/live/news/v720/index.m3u8",
    "/live/news/v720/init.mp4",
    "/live/news/v720/12.m4s",
    f"/live/news/v720/t{12 * 180000}.m4s",
    "/live/news/manifest.mpd",
    "/live/news/ts/index.m3u8",
    "/live/news/ts/v720/index.m3u8",
    "/live/news/ts/v720/12.ts",
    "/live/news/cenc/v720/init.mp4",
    "/live/news/cbcs/v720/12.m4s",
    "/live/news/keys/news.key",
    "/preview/news/",
    "/preview/news",
    "/preview/news/thumbnail.jpg",
    "/status/news.json",
    "/",
    "/time",
    "/healthz",
    "/metrics",
    "/static/kubecast.css",
    "/crossdomain.xml",
    "/clientaccesspolicy.xml",
    "/evening-news/show.m3u8",
    "/evening-news/show.m3u8?startover",
    "/evening-news/show.mpd",
    "/evening-news/show.ism/manifest",
    "/evening-news/show.ism/manifest(format=m3u8-cmaf)",
    "/evening-news/show.ism/manifest(format=m3u8-aapl)",
    "/evening-news/show.ism/manifest(format=mpd-time-cmaf)",
    "/evening-news/show.ism/manifest(format=mpd-time-csf)",
    "/evening-news/show.ism/manifest(format=m3u8-cmaf,audio-only=false)",
    "/evening-news/v720/index.m3u8",
    "/evening-news/v720/12.m4s",
    "/evening-news/show.ism/v720/12.m4s",
    "/evening-news/show.ism/QualityLevels(1500000)/Fragments(video=2160000)",
    "/evening-news/show.ism/QualityLevels(128000)/Fragments(audio=1152000)",
    "/evening-news/ts/v720/index.m3u8",
    "/evening-news/show.ism/ts/v720/12.ts",
    "/live/news/v720/12.m4s?x=%2e%2e",
    "/live/news/%2e%2e/secret",
    "/live/news/v720/..%2f..%2fsecret.txt",
]


def languages(work: Path) -> None:
    """A TS with an AAC PID per language (each with its ISO_639_language_descriptor), cut to its
    tables and the first audio of both PIDs."""
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc=size=96x64:rate=10:duration=1",
        *[arg for frequency in (440, 1000) for arg in ("-f", "lavfi", "-i", f"sine=frequency={frequency}:duration=1")],
        "-map", "0:v", "-map", "1:a", "-map", "2:a", *CLIP[8:],
        "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=spa",
        "-f", "mpegts", str(work / "languages.ts"),
    )  # fmt: skip
    data = (work / "languages.ts").read_bytes()
    packets = [data[offset : offset + 188] for offset in range(0, len(data), 188)]
    wanted = [p for p in packets if (p[1] & 0x1F) << 8 | p[2] in (0, 0x1000, 0x101, 0x102)]
    write("mpegts", "ffmpeg-languages.ts", b"".join(wanted))


def text() -> None:
    for index, stream_id in enumerate(STREAM_IDS):
        write("srt_stream_id", f"stream-id-{index}", stream_id.encode())
    for index, url in enumerate(URLS):
        write("endpoint_url", f"url-{index}", url.encode())
        write("endpoint_url", f"signed-url-{index}", f"/t/{{token}}{url}".encode())
    for manifest in [*sorted((ROOT / "examples").glob("*.yaml")), *sorted((ROOT / "tests" / "e2e").glob("*.yaml"))]:
        write("resource_yaml", f"{manifest.parent.name}-{manifest.name}", manifest.read_bytes())


# ANSI/SCTE 35 2023 section 14: a time_signal placement opportunity start, a splice_insert out.
SCTE35_EXAMPLES = [
    "/DA0AAAAAAAA///wBQb+cr0AUAAeAhxDVUVJSAAAjn/PAAGlmbAICAAAAAAsoKGKNAIAmsnRfg==",
    "/DAvAAAAAAAA///wFAVIAACPf+/+c2nALv4AUsz1AAAAAAAKAAhDVUVJAAABNWLbowo=",
]


def scte35() -> None:
    """Splice sections from the standard's examples and from threefive's encoder (splice_insert
    out with a duration, back in, a time_signal), and a contribution with cue records."""
    import base64

    import threefive

    from kubecast.media.contribution import Cue

    for index, example in enumerate(SCTE35_EXAMPLES):
        write("scte35", f"scte35-2023-example-{index}", base64.b64decode(example))
    sections = []
    for index, (out, duration) in enumerate([(True, 30.0), (False, None)]):
        command = threefive.SpliceInsert()
        command.splice_event_id, command.splice_event_cancel_indicator = 100 + index, False
        command.out_of_network_indicator, command.program_splice_flag = out, True
        command.splice_immediate_flag, command.time_specified_flag, command.pts_time = False, True, 20.0 + index
        command.duration_flag, command.break_auto_return, command.break_duration = duration is not None, True, duration
        command.event_id_compliance_flag, command.unique_program_id = True, 1
        command.avail_num, command.avails_expected = 0, 0
        cue = threefive.Cue()
        cue.command = command
        cue.encode()
        sections.append(bytes(cue.bites))
        write("scte35", f"threefive-splice-insert-{'out' if out else 'in'}", sections[-1])
    signal = threefive.TimeSignal()
    signal.time_specified_flag, signal.pts_time = True, 12.5
    cue = threefive.Cue()
    cue.command = signal
    cue.encode()
    write("scte35", "threefive-time-signal", bytes(cue.bites))
    records = b"".join(
        encode_record(
            Cue(1000, 20_000 + 1000 * index, index == 0, 30_000 if index == 0 else None, 100 + index, section)
        )
        for index, section in enumerate(sections)
    )
    write("contribution", "cues.records", records + encode_record(EndOfStream()))
    rtmp_cue_points(sections)
    smooth_sparse(sections)
    with tempfile.TemporaryDirectory() as work:
        write(
            "mpegts", "threefive-scte35.ts", scte35_transport_stream(Path(work), base64.b64encode(sections[0]).decode())
        )


def rtmp_cue_points(sections: list[bytes]) -> None:
    """onCuePoint messages of every shape the RTMP ingest reads: YouTube's, Adobe's carrying a
    threefive section, Adobe's SpliceOut and SpliceIn, and a chapter (no ad marker)."""
    import base64

    from kubecast.ingest.rtmp import amf0

    youtube = {"type": "com.youtube.cuepoint", "version": "0.1", "pre_roll_time_sec": 2.56, "cue_point_start": True}
    youtube |= {"break_duration_sec": 30, "splice_event_id": 0}
    points = {
        "youtube": youtube,
        "adobe-scte35": {"name": "scte35", "time": 21.5, "type": "event", "parameters": {"scte35": ""}},
        "adobe-splice-out": {
            "name": "ad",
            "time": 5.0,
            "parameters": {"type": "SpliceOut", "id": "a2", "duration": 15},
        },
        "adobe-splice-in": {"name": "ad", "parameters": {"type": "SpliceIn", "id": "a2"}},
        "chapter": {"name": "chapter 2", "time": 12.0, "type": "navigation", "parameters": {}},
    }
    points["adobe-scte35"]["parameters"]["scte35"] = base64.b64encode(sections[0]).decode()
    for name, point in points.items():
        write("rtmp_cuepoint", name, amf0.encode_all("onCuePoint", point))


def smooth_sparse(sections: list[bytes]) -> None:
    """Smooth sparse-track POST bodies as the AMS timed-metadata specification describes them
    (``tests/smooth_sparse.py``: no tool writes them): the threefive sections as messages with the
    version/id/delta header, and one bare; the stream header alone."""
    import sys

    sys.path.insert(0, str(HERE.parent))
    from smooth_sparse import MFRA, message, sparse_fragment, stream_header

    header = stream_header()
    fragments = [
        sparse_fragment(
            message(section, message_id=index, delta=5_000_000), time=10_000_000, duration=0, sequence=index
        )
        for index, section in enumerate(sections, 1)
    ]
    write("smooth_sparse", "sparse-messages", header + b"".join(fragments) + MFRA)
    write("smooth_sparse", "sparse-bare-section", header + sparse_fragment(sections[0], time=10_000_000, duration=300))
    write("smooth_sparse", "sparse-header", header)


def scte35_transport_stream(work: Path, cue: str) -> bytes:
    """An ffmpeg TS into which threefive's ``scte35inject`` put a SCTE-35 PID, cut to its tables, the
    splice section and the packets around it (the seed size limit would cut the section off)."""
    import sys

    # Long enough that the injector's last block (530 packets, never written) is not all of it.
    ffmpeg(*[arg.replace("duration=1", "duration=20") for arg in CLIP], "-f", "mpegts", str(work / "plain.ts"))
    (work / "sidecar.txt").write_text(f"1.5,{cue}\n")
    inject = Path(sys.executable).with_name("scte35inject")
    command = [str(inject), "-i", "plain.ts", "-o", "out.ts", "-s", "sidecar.txt", "-p", "0x1f0"]
    subprocess.run(command, cwd=work, check=True, timeout=60, capture_output=True)
    data = (work / "out.ts").read_bytes()
    packets = [data[offset : offset + 188] for offset in range(0, len(data), 188)]
    pid = [(p[1] & 0x1F) << 8 | p[2] for p in packets]
    marker = pid.index(0x1F0)
    tables = [p for p, number in zip(packets, pid) if number in (0, 0x1000)][:2]
    return b"".join(tables + packets[max(0, marker - 12) : marker + 16])


def id3() -> None:
    """ID3 tags as ffmpeg's MP3 muxer writes them (v2.4 and v2.3, a title and a comment), alone,
    two in one payload, and with stuffing after them, as a timed metadata PES carries them; and
    the ``onTextData`` messages ffmpeg's FLV muxer makes of a text subtitle stream."""
    from kubecast.media.contribution import Metadata

    tags = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for version in (4, 3):
            mp3 = work / f"v{version}.mp3"
            ffmpeg(
                "-f", "lavfi", "-i", "anullsrc=r=48000", "-t", "0.05", "-metadata", "title=Now playing",
                "-metadata", "comment=ad-id 4077", "-id3v2_version", str(version), "-write_xing", "0", str(mp3),
            )  # fmt: skip
            data = mp3.read_bytes()
            tags.append(data[: 10 + (data[6] << 21 | data[7] << 14 | data[8] << 7 | data[9])])
            write("id3", f"ffmpeg-id3v2.{version}", tags[-1])
        subtitles = work / "text.srt"
        subtitles.write_text(
            "1\n00:00:00,500 --> 00:00:00,800\nNow playing: the news\n\n2\n00:00:00,800 --> 00:00:01,000\nété\n"
        )
        flv = work / "text.flv"
        ffmpeg(
            "-f", "lavfi", "-i", "testsrc=size=96x64:rate=10:duration=1", "-i", str(subtitles),
            "-c:v", "libx264", "-preset", "ultrafast", "-c:s", "text", "-f", "flv", str(flv),
        )  # fmt: skip
        data = flv.read_bytes()
        marker = b"\x02\x00\x0aonTextData"
        at, index = data.find(marker), 0
        while at != -1:
            size = int.from_bytes(data[at - 10 : at - 7], "big")  # the FLV tag's DataSize, 11 bytes before its body
            write("rtmp_textdata", f"ffmpeg-ontextdata-{index}", data[at : at + size])
            at, index = data.find(marker, at + 1), index + 1
    write("id3", "ffmpeg-two-tags", tags[0] + tags[1])
    write("id3", "ffmpeg-stuffed", tags[0] + b"\x00" * 16)
    records = b"".join(encode_record(Metadata(90_000, 90_000 * (1 + index), tag)) for index, tag in enumerate(tags))
    write("contribution", "id3.records", records + encode_record(EndOfStream()))


def multitrack(work: Path) -> None:
    """The clip with a second audio track, remuxed to FLV by FFmpeg 8's muxer (PyAV's; Debian's
    ffmpeg refuses a second audio stream in FLV): that track goes out as Enhanced RTMP v2
    multitrack audio tags."""
    import av

    clip, flv = work / "two-tracks.mkv", work / "two-tracks.flv"
    second = ["-f", "lavfi", "-i", "sine=frequency=1000:duration=1", "-map", "0:v", "-map", "1:a", "-map", "2:a"]
    ffmpeg(*CLIP[:8], *second, *CLIP[8:], str(clip))
    with av.open(str(clip)) as source, av.open(str(flv), "w", format="flv") as output:
        outputs = {s.index: output.add_stream_from_template(s) for s in source.streams}
        for packet in source.demux():
            if packet.dts is not None:
                packet.stream = outputs[packet.stream.index]
                output.mux(packet)
    write("flv", "ffmpeg8-multitrack.flv", flv.read_bytes())


def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        media(Path(work))
        multitrack(Path(work))
    text()
    scte35()
    id3()
    total = sum(path.stat().st_size for path in CORPUS.rglob("*") if path.is_file())
    print(f"corpus: {sum(1 for path in CORPUS.rglob('*') if path.is_file())} files, {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()

"""Process and waiting helpers shared by the tests that run real programs.

Every wait is bounded; every process started is stopped (SIGTERM, then SIGKILL) even when
the test fails, and its output is kept so a failure shows what the program said.
"""

from __future__ import annotations

import array
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

from kubecast.local.ports import unclaimed_port

T = TypeVar("T")


def free_port() -> int:
    """A port below the kernel's ephemeral range, never handed out twice (see ``unclaimed_port``)."""
    return unclaimed_port()


def wait_until(predicate: Callable[[], T], *, timeout: float, interval: float = 0.1, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except Exception as error:  # noqa: BLE001 - report the last one if we time out
            last_error = error
        time.sleep(interval)
    raise TimeoutError(
        f"{what} not reached within {timeout:.0f}s" + (f" (last error: {last_error!r})" if last_error else "")
    )


class Proc:
    """A child process whose output lines are collected in the background."""

    def __init__(
        self,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        name: str | None = None,
        inherit_env: bool = True,
    ):
        self.name = name or os.path.basename(argv[0])
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.popen = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**(os.environ if inherit_env else {}), "PYTHONUNBUFFERED": "1", **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for raw in self.popen.stdout:
            with self._cond:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for_line(self, pattern: str, *, timeout: float) -> re.Match:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    if match := regex.search(line):
                        return match
                seen = len(self.lines)
                if self.popen.poll() is not None and not self._reader.is_alive():
                    raise RuntimeError(
                        f"{self.name} exited ({self.popen.returncode}) before printing {pattern!r}:\n{self.output()}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self.name} did not print {pattern!r} within {timeout:.0f}s:\n{self.output()}")
                self._cond.wait(min(remaining, 0.5))

    def output(self, last: int = 80) -> str:
        with self._cond:
            return "\n".join(self.lines[-last:])

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> int:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        self._reader.join(5)
        return self.popen.returncode

    def __enter__(self) -> "Proc":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def kubecast(*args: str, **kwargs) -> Proc:
    return Proc([sys.executable, "-m", "kubecast.cli", *args], name=f"kubecast {args[0]}", **kwargs)


@dataclass
class LocalUp:
    """``kubecast up`` as a test starts it: the process and the ports it was given."""

    proc: Proc
    rtmp: int
    http: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http}"


def kubecast_up(manifest: Path, store: Path, cwd: Path, *, single_encoder: bool = True) -> LocalUp:
    """``kubecast up -f manifest`` on free ports with a local-folder ``store``, its status line
    every 30 s (the tests read the log, not the status)."""
    rtmp, http = free_port(), free_port()
    proc = kubecast(
        "up", "-f", str(manifest), "--store", str(store),
        *(["--single-encoder"] if single_encoder else []),
        "--rtmp-port", str(rtmp), "--rtmp-secondary-port", str(free_port()), "--http-port", str(http),
        "--status-interval", "30",
        cwd=str(cwd),
    )  # fmt: skip
    return LocalUp(proc, rtmp, http)


def lavfi_source(
    *, size: str = "320x240", frequency: int | None = 1000, input_seconds: float | str | None = None
) -> list[str]:
    """The ffmpeg inputs every test contribution starts from: the testsrc2 picture at 30 fps and a
    48 kHz sine tone (ffmpeg's default 440 Hz when ``frequency`` is None). ``input_seconds`` bounds
    each input (``-t`` before ``-i``), which ends the stream even where the output has no ``-t``."""
    bound = [] if input_seconds is None else ["-t", str(input_seconds)]
    tone = "sine=sample_rate=48000" if frequency is None else f"sine=frequency={frequency}:sample_rate=48000"
    return ["-f", "lavfi", *bound, "-i", f"testsrc2=size={size}:rate=30", "-f", "lavfi", *bound, "-i", tone]


def contribution_command(
    output: str,
    *,
    seconds: float,
    size: str = "320x240",
    frequency: int | None = 1000,
    realtime: bool = True,
    gop: int = 30,
    container: str = "flv",
    extra: Sequence[str] = (),
    loglevel: str = "error",
    bound_inputs: bool = False,
    preset: str = "ultrafast",
) -> list[str]:
    """The command line of an ffmpeg contribution encoder: ``seconds`` of the test source
    (``lavfi_source``) as H.264 (a key frame every ``gop`` frames, x264's ``preset``) and AAC, in
    ``container``, to ``output`` (a URL or a file).  ``realtime`` paces it as a live encoder;
    ``bound_inputs`` ends the inputs rather than the output (for outputs that ignore ``-t``);
    ``extra`` goes before the output (more encoder options)."""
    inputs = lavfi_source(size=size, frequency=frequency, input_seconds=seconds if bound_inputs else None)
    return [
        "ffmpeg", "-hide_banner", "-loglevel", loglevel, "-y", *(["-re"] if realtime else []), *inputs,
        *([] if bound_inputs else ["-t", str(seconds)]),
        "-c:v", "libx264", "-preset", preset, "-g", str(gop), "-c:a", "aac", *extra,
        "-f", container, output,
    ]  # fmt: skip


# ffmpeg's AAC of the tone in stereo: AAC-LC, 48 kHz, stereo at its default 128 kbit/s, which is
# what a live-encoded channel sends, so its encoders copy it (``kubecast.encoder.aac_copy``).
COPIED_AAC = ("-ac", "2")


def rtmp_publisher(url: str, seconds: int, extra: Sequence[str] = ()) -> list[str]:
    """The command line of a real-time ffmpeg publisher: ``seconds`` of the test source as H.264
    (a key frame every second) and AAC in FLV to ``url``; ``extra``: more encoder options."""
    return contribution_command(url, seconds=seconds, extra=extra)


def make_contribution(
    path, *, seconds: int, size: str = "320x240", container: str = "flv", extra: Sequence[str] = ()
) -> bytes:
    """What an encoder sends, as a file: ``contribution_command`` with B-frames (x264's medium
    preset, two of them) in ``container`` (``flv``, ``mpegts``), as fast as it goes; ``extra``: more
    output options."""
    command = contribution_command(
        str(path), seconds=seconds, size=size, realtime=False, container=container, preset="medium",
        extra=["-bf", "2", *extra],
    )  # fmt: skip
    subprocess.run(command, check=True, timeout=60)
    return Path(path).read_bytes()


def make_contribution_flv(path, *, seconds: int, size: str = "320x240") -> bytes:
    """``make_contribution`` in FLV, what an RTMP encoder sends."""
    return make_contribution(path, seconds=seconds, size=size)


LADDER_SIZES = ("640x360", "480x270", "320x180")


def make_multibitrate_flvs(folder, *, seconds: int, gops=(30, 30, 30)) -> list[bytes]:
    """A multi-bitrate contribution as an encoder makes it: one ffmpeg run, one FLV per rendition
    (H.264 at three sizes, the same AAC); key frames aligned when the GOPs are equal."""
    folder = Path(folder)
    argv = [
        "ffmpeg",
        "-v",
        "error",
        "-y",
        *lavfi_source(size="640x360", input_seconds=seconds),
    ]
    for index, (size, gop) in enumerate(zip(LADDER_SIZES, gops)):
        argv += [
            "-map",
            "0:v",
            "-map",
            "1:a",
            "-s",
            size,
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            str(gop),
            "-keyint_min",
            str(gop),
            "-sc_threshold",
            "0",
            "-c:a",
            "aac",
            "-f",
            "flv",
            str(folder / f"r{index}.flv"),
        ]
    subprocess.run(argv, check=True, timeout=120)
    return [(folder / f"r{index}.flv").read_bytes() for index in range(len(gops))]


def flv_tags(data: bytes) -> list:
    from flvfile import FlvReader

    reader = FlvReader()
    reader.feed(data)
    return list(reader.tags())


def flv_records(flv: bytes, track: int = 0) -> list:
    """An FLV stream's audio and video as the records the RTMP ingest hands over (on ``track``)."""
    import dataclasses

    from kubecast.ingest.rtmp import chunks
    from kubecast.ingest.rtmp.server import media_records
    from kubecast.ingest.rtmp.session import Media

    records = []
    for tag in flv_tags(flv):
        if tag.type in (chunks.AUDIO, chunks.VIDEO):
            records += [
                dataclasses.replace(record, track=track)
                for record in media_records(Media(tag.type, tag.timestamp, tag.data))
            ]
    return records


def contribution_bytes(records: list, *, end: bool = True) -> bytes:
    """Records on the wire as an ingest sends them after the hello line (with the end-of-stream record)."""
    from kubecast.media.contribution import EndOfStream, encode_record

    return b"".join(encode_record(r) for r in records) + (encode_record(EndOfStream()) if end else b"")


def flv_contribution(flv: bytes) -> bytes:
    """An FLV file as the internal contribution of an RTMP publish of it."""
    return contribution_bytes(flv_records(flv))


def interleave_renditions(flvs: list[bytes]) -> bytes:
    """The renditions as one internal contribution: each rendition's records on its own track."""
    from kubecast.media.contribution import Frame

    records = [record for index, flv in enumerate(flvs) for record in flv_records(flv, index)]
    # stable: each track keeps its own order, configurations go first
    records.sort(key=lambda record: record.decode_time if isinstance(record, Frame) else -1)
    return contribution_bytes(records)


def flv_video_payloads(flv: bytes) -> list[bytes]:
    """The H.264 access units of an FLV stream, in order (sequence headers left out)."""
    from kubecast.media.flv import parse_video

    packets = [parse_video(tag.data) for tag in flv_tags(flv) if tag.type == 9]
    return [p.payload for p in packets if not p.is_sequence_header and not p.end_of_sequence]


def segment_payloads(segments: list[bytes]) -> list[bytes]:
    """Each sample's bytes of CMAF media segments, cut from the mdat by the sizes the trun lists."""
    from kubecast.media.mp4 import find_box, parse_media_segment

    payloads = []
    for segment in segments:
        _, samples = parse_media_segment(segment)
        cursor, _ = find_box(segment, [b"mdat"])
        for sample in samples:
            payloads.append(segment[cursor : cursor + sample.size])
            cursor += sample.size
    return payloads


def threefive_splice_insert(*, event_id: int, out: bool, pts_seconds: float, duration: float | None) -> str:
    """A splice_insert section built by threefive (base64), as a splicer or playout system sends it."""
    import threefive

    command = threefive.SpliceInsert()
    command.splice_event_id, command.splice_event_cancel_indicator = event_id, False
    command.out_of_network_indicator, command.program_splice_flag = out, True
    command.splice_immediate_flag, command.time_specified_flag, command.pts_time = False, True, pts_seconds
    command.duration_flag, command.break_auto_return, command.break_duration = duration is not None, True, duration
    command.event_id_compliance_flag, command.unique_program_id = True, 1
    command.avail_num, command.avails_expected = 0, 0
    cue = threefive.Cue()
    cue.command = command
    return str(cue.encode())


def inject_scte35(source: Path, target: Path, cues: list[tuple[float, str]], *, pid: int = 0x1F0) -> bytes:
    """``source`` (MPEG-TS) with a SCTE-35 PID (PMT stream type 0x86) carrying ``cues`` (inserted
    at the first key frame at or after each time, in seconds of PTS), by threefive's
    ``scte35inject``: sections and TS packets made by a tool nobody here wrote.  It leaves out the
    last few hundred packets of its input (it writes in blocks of 530), so give it a longer source."""
    sidecar = target.with_suffix(".sidecar")
    sidecar.write_text("".join(f"{at},{cue}\n" for at, cue in cues))
    inject = Path(sys.executable).with_name("scte35inject")
    subprocess.run(
        [str(inject), "-i", str(source), "-o", str(target), "-s", str(sidecar), "-p", hex(pid)],
        check=True,
        timeout=120,
        capture_output=True,
        cwd=target.parent,
    )
    return target.read_bytes()


def idr_samples(segment: bytes) -> list[int]:
    """Indexes of a CMAF segment's samples that hold an IDR picture (NAL type 5), read from the
    bytes themselves rather than from the sample flags the muxer set."""
    from kubecast.media.fmp4 import BoxStream, parse_fragment

    boxes = dict(BoxStream().feed(segment))
    samples = next(iter(parse_fragment(boxes[b"moof"], boxes[b"mdat"]).values()))
    found = []
    for index, sample in enumerate(samples):
        position, data = 0, sample.data
        while position + 4 < len(data):
            if data[position + 4] & 0x1F == 5:
                found.append(index)
                break
            position += 4 + int.from_bytes(data[position : position + 4], "big")
    return found


def tone_frequency(frames: list[Any]) -> float:
    """The frequency of a pure tone in decoded AAC (PyAV frames, planar float as FFmpeg's decoder
    gives them; the first channel), from its zero crossings."""
    samples = array.array("f")
    for frame in frames:
        assert frame.format.name == "fltp", frame.format.name
        samples.frombytes(bytes(frame.planes[0])[: frame.samples * 4])
    crossings = sum(1 for a, b in zip(samples, samples[1:]) if (a < 0) != (b < 0))
    return crossings / 2 / (len(samples) / frames[0].sample_rate)


def languages_ts(path: Path, *, seconds: int, tones: dict[int, str | None], channels: int = 1) -> bytes:
    """ffmpeg's MPEG-TS of ``seconds`` of the test picture and one AAC PID per tone (Hz -> its
    ISO_639_language_descriptor's language, or None for none), in that order, each with
    ``channels`` (the tone is mono; in stereo, ffmpeg's AAC is what a live channel sends)."""
    inputs = [arg for frequency in tones for arg in lavfi_source(frequency=frequency)[4:]]
    maps = [arg for index in range(len(tones)) for arg in ("-map", f"{index + 1}:a")]
    names = [
        arg
        for index, language in enumerate(tones.values())
        if language is not None
        for arg in (f"-metadata:s:a:{index}", f"language={language}")
    ]
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", *lavfi_source()[:4], *inputs, "-t", str(seconds), "-map", "0:v", *maps]
        + ["-c:v", "libx264", "-g", "30", "-c:a", "aac", "-ac", str(channels), *names, "-f", "mpegts", str(path)],
        check=True,
        timeout=60,
    )
    return path.read_bytes()


def ffmpeg_id3_tag(title: str) -> bytes:
    """The ID3v2.4 tag ffmpeg's MP3 muxer writes at the head of a file (TIT2 ``title``, TSSE),
    cut from the file: a tag made by a tool nobody here wrote."""
    with tempfile.TemporaryDirectory() as work:
        mp3 = Path(work) / "tag.mp3"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "anullsrc=r=48000", "-t", "0.05"]
            + ["-metadata", f"title={title}", "-id3v2_version", "4", "-write_xing", "0", str(mp3)],
            check=True,
            timeout=60,
        )
        data = mp3.read_bytes()
    size = data[6] << 21 | data[7] << 14 | data[8] << 7 | data[9]
    return data[: 10 + size]


def add_timed_id3(source: Path, target: Path, tags: list[tuple[float, bytes]]) -> int:
    """``source`` (MPEG-TS) remuxed by libavformat's MPEG-TS muxer (through PyAV) with a timed_id3
    data stream: stream type 0x15 with the ID3 metadata descriptor, each tag a PES at its time
    (seconds after the first video DTS, or audio DTS without video), as ffmpeg writes Apple's
    timed metadata.  That first DTS (90 kHz)."""
    import av

    due = sorted(tags)
    first: int | None = None
    with av.open(str(source)) as src, av.open(str(target), "w", format="mpegts") as out:
        streams = {stream.index: out.add_stream_from_template(stream) for stream in src.streams}
        data = out.add_data_stream("timed_id3")
        clock = "video" if src.streams.video else "audio"  # the stream the tags' times count on
        for packet in src.demux():
            if packet.dts is None:
                continue
            if first is None and packet.stream.type == clock:
                first = packet.dts
            while (
                first is not None and due and packet.stream.type == clock and packet.dts >= first + due[0][0] * 90_000
            ):
                at, tag = due.pop(0)
                id3 = av.Packet(tag)
                id3.stream = data
                id3.pts = id3.dts = first + round(at * 90_000)
                id3.time_base = Fraction(1, 90_000)
                out.mux(id3)
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    assert first is not None and not due, "the source is too short for its tags"
    return first

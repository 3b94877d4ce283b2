"""What the protocols pipeline publishes: the ffmpeg, GStreamer and playout publishers, their
sources and the constants the tests check them against."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

from captioned import aac_tone_branch, caption_branch
from helpers import Proc, add_timed_id3, ffmpeg_id3_tag, inject_scte35, lavfi_source, threefive_splice_insert

E2E = Path(__file__).parents[1]  # tests/e2e: the channels' YAML and the publishing scripts
KEY, PASSPHRASE = "push-key-1", "e2e-srt-passphrase"
# Most publishers run for SECONDS, and the later tests read what they published, which stays.  The
# live-encoded ones (``LivePublishers``) run for SECONDS and on while the first test reads them live.
# The publishers whose liveness a later test relies on (TLS, GStreamer's captioned one) run until the
# package's teardown stops them, so that no test depends on how long the tests before it took.  The
# captioned source's cues outlast any run of the package (its tests time out at 300 s each).
SECONDS = 40
CAPTIONED_SECONDS = 1800
CODECS = [
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-g",
    "60",
    "-keyint_min",
    "60",
    "-sc_threshold",
    "0",
    "-pix_fmt",
    "yuv420p",
    "-c:a",
    "aac",
    "-b:a",
    "96k",
]


# Picture times N/30 s plus up to 5 ms either way, kept through the encoder (millisecond time base).
JITTER = [
    "-vf",
    "settb=1/90000,setpts=N/30/TB+(random(0)-0.5)*0.010/TB",
    "-fps_mode",
    "passthrough",
    "-enc_time_base:v",
    "1/1000",
]


def publisher(name: str, *output: str, seconds: int | None = SECONDS, inputs: tuple[str, ...] = ()) -> Proc:
    """A real-time ffmpeg publisher for ``seconds``, or until it is stopped; ``inputs``: more of them."""
    source = ["-re", *lavfi_source(size="320x240"), *inputs, *(["-t", str(seconds)] if seconds else [])]
    return Proc(["ffmpeg", "-hide_banner", "-loglevel", "error", *source, *CODECS, *output], name=f"ffmpeg {name}")


class LivePublishers:
    """Publishers (started to run until stopped) that publish for at least ``seconds`` and then for as
    long as a test holds them (``held``).

    A test that reads their channels live once got there, on a busy machine, after ffmpeg's ``-t``
    had ended them, and waited for segments that no longer came: held, they publish until its reads
    are done, however long the pipeline took.  Nobody holding them, they end after ``seconds``, as
    ``-t`` ended them, so that no later test depends on them."""

    def __init__(self, processes: list[Proc], seconds: float):
        self.processes, self.seconds = processes, seconds
        self._lock = threading.Lock()
        self._holders = 0
        self._due = False  # ``seconds`` are over: the last holder's release ends them
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        with self._lock:
            self._due = True
            if self._holders:
                return
        self.end()

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            if self._due and not self._holders:
                raise RuntimeError(f"the live publishers ended after {self.seconds} s: hold them from the first test")
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                over = self._due and not self._holders
            if over:
                self.end()

    def end(self) -> None:
        self._timer.cancel()
        for process in self.processes:
            process.stop()


# rtmp2sink ends the whole pipeline when a write has waited this long (5 s by default): on two busy
# cores the ingest can be that slow to read, and the captions would end with it.
RTMP_TIMEOUT = 60


def captioned_source(captions: Path) -> list[str]:
    """gst-launch elements of a live picture with CEA-608 captions (``captions``, a ``c608`` track of
    ``tests/captioned.py``) that ``cccombiner`` attaches and x264enc (with B-frames) writes as SEI, and a
    tone, both into the muxer named ``mux``."""
    return [
        "videotestsrc",
        "is-live=true",
        "!",
        "video/x-raw,width=320,height=240,framerate=30/1",
        "!",
        "cccombiner",
        "name=cc",
        "!",
        "x264enc",
        "speed-preset=ultrafast",
        "key-int-max=60",
        "bframes=2",
        "!",
        "h264parse",
        "!",
        "mux.",
        *caption_branch(captions),
        *aac_tone_branch(),
    ]


def gstreamer_publisher(url: str, passthrough_url: str, captions: Path) -> Proc:
    """GStreamer's RTMP publisher of ``captioned_source``: x264enc's B-frames make flvmux clamp the first
    decode times to 0, so the contribution repeats a DTS value.  The same stream goes to a live-encoded
    and a pass-through channel until it is stopped."""
    return Proc(
        [
            "gst-launch-1.0",
            "-q",
            "flvmux",
            "name=mux",
            "streamable=true",
            "!",
            "tee",
            "name=out",
            "!",
            "queue",
            "!",
            "rtmp2sink",
            f"location={url}",
            f"timeout={RTMP_TIMEOUT}",
            "out.",
            "!",
            "queue",
            "!",
            "rtmp2sink",
            f"location={passthrough_url}",
            f"timeout={RTMP_TIMEOUT}",
            *captioned_source(captions),
        ],
        name="gstreamer",
    )


def gstreamer_srt_publisher(url: str, captions: Path) -> Proc:
    """GStreamer's SRT caller (``srtsink``) sending ``captioned_source`` as MPEG-TS.  srtsink sends each
    buffer as one SRT message, and mpegtsmux makes a buffer of every 188-byte TS packet unless told
    otherwise.  Sent so, every packet of each IDR picture (50 to 70 messages back to back) went missing
    on the way, the same ones in every run, so no picture reached the encoder decodable and the channel
    never went live.  ``alignment=7`` makes 1316-byte messages of seven packets, as ffmpeg's SRT output
    and SRT's live mode have them; then nothing is lost."""
    return Proc(
        ["gst-launch-1.0", "-q", "mpegtsmux", "name=mux", "alignment=7", "!", "srtsink", f"uri={url}"]
        + captioned_source(captions),
        name="gstreamer srt",
    )


# The marker stream's break, in seconds after its first frame: out (1 s into a segment) for 6 s.
SPLICE_OUT, BREAK = 21.0, 6.0
EVENT_ID = 4077
# ID3 tags of the marker stream (TIT2 text, seconds after its first frame): inside segments, not on a boundary.
ID3_TAGS = [("kubecast id3 one", 13.5), ("kubecast id3 two", 16.25)]
# The sparse SCTE-35 track pushed beside enc-smooth's media: a break at this time of the push's clock
# (1 s into a segment when the media starts at 0), for this long.
SPARSE_EVENT_ID, SPARSE_OUT, SPARSE_BREAK = 5150, 29.0, 4.0
# Timed text the jittered RTMP publisher sends as onTextData (ffmpeg's FLV muxer, from a text subtitle stream).
TEXT_DATA = [("kubecast text one", 12.5), ("kubecast text two", 15.25)]


def text_subtitles(work: Path) -> Path:
    """``TEXT_DATA`` as SubRip, each shown for half a second."""
    path = work / "text.srt"

    def at(seconds: float) -> str:
        return f"00:00:{int(seconds):02d},{int(seconds * 1000) % 1000:03d}"

    path.write_text("".join(f"{n + 1}\n{at(t)} --> {at(t + 0.5)}\n{text}\n\n" for n, (text, t) in enumerate(TEXT_DATA)))
    return path


def markers_source(work: Path) -> tuple[Path, Fraction]:
    """SECONDS of ffmpeg TS (and a few more, which the injector's last block loses) with ID3 tags
    (``ID3_TAGS``) on a timed_id3 PID, and a splice out and back in on a SCTE-35 PID, both sent
    4 s ahead; and how far the first video DTS, which the markers' times count from, lies after
    the contribution's origin (the first frame in stream order: libavformat's re-mux may put an
    audio PES first)."""
    encoded = work / "encoded.ts"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", *lavfi_source(size="320x240"), "-t", str(SECONDS + 3), *CODECS]
        + ["-f", "mpegts", str(encoded)],
        check=True,
        timeout=120,
    )
    plain = work / "plain.ts"
    add_timed_id3(encoded, plain, [(at, ffmpeg_id3_tag(text)) for text, at in ID3_TAGS])
    first, origin = (
        int(
            subprocess.run(
                ["ffprobe", "-v", "error", *select, "-show_entries", "packet=dts", "-read_intervals", "%+#1"]
                + ["-of", "csv=p=0", str(plain)],
                check=True,
                timeout=30,
                capture_output=True,
                text=True,
            )
            .stdout.split()[0]
            .rstrip(",")
        )
        for select in (["-select_streams", "v"], [])
    )
    start = first / 90_000
    out = threefive_splice_insert(event_id=EVENT_ID, out=True, pts_seconds=start + SPLICE_OUT, duration=BREAK)
    back = threefive_splice_insert(event_id=EVENT_ID, out=False, pts_seconds=start + SPLICE_OUT + BREAK, duration=None)
    cues = [(start + SPLICE_OUT - 4, out), (start + SPLICE_OUT + BREAK - 4, back)]
    inject_scte35(plain, work / "markers.ts", cues)
    return work / "markers.ts", Fraction(first - origin, 90_000)


MULTITRACK_TONES = (440, 1000)


def multitrack_source(work: Path) -> Path:
    """SECONDS of the test picture with two stereo AAC tracks, 440 Hz and then 1000 Hz (Debian's
    ffmpeg), for ``flvplay.py`` to publish as Enhanced RTMP multitrack audio."""
    path = work / "multitrack.mp4"
    tones = [arg for frequency in MULTITRACK_TONES for arg in lavfi_source(frequency=frequency)[4:]]
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", *lavfi_source(size="320x240")[:4], *tones, "-t", str(SECONDS)]
        + ["-map", "0:v", "-map", "1:a", "-map", "2:a", *CODECS, "-ac", "2", str(path)],
        check=True,
        timeout=120,
    )
    return path


def section(printed: str, channel: str) -> str:
    """The lines ``kubecast up`` printed for one channel."""
    return printed.split(f"Channel {channel}\n", 1)[1].split("\n\n", 1)[0]

"""Sources with real CEA-608 captions, written by tools nobody here wrote.

pycaption turns caption text into CEA-608 byte pairs (an SCC file), Debian's ffmpeg puts them
in a QuickTime ``c608`` track, and GStreamer reads that track (``qtdemux``), converts the pairs
to ``cc_data`` (``ccconverter``), attaches them to the pictures (``cccombiner``), and its
``x264enc`` writes them into the H.264 stream as A/53 SEI, as contribution encoders do.

An SCC file lists pairs from a frame on, one pair per frame after it; pycaption writes a
caption's pairs on one line, which ffmpeg would turn into one sample that ``ccconverter`` cannot
fit in one picture (it keeps only the first pairs).  So each pair gets its own line at its own
frame, which is what the SCC line meant.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

RATE = 30  # SCC frames per second (non-drop time codes)


def cue_text(index: int) -> str:
    return f"CAPTION {index}"


def cues(seconds: int, every: float = 3.0) -> list[tuple[float, float, str]]:
    """(start, end, text): a caption every ``every`` seconds, shown for two of them."""
    count = int(seconds // every)
    return [(index * every + 0.5, index * every + 2.5, cue_text(index + 1)) for index in range(count)]


def _srt_time(seconds: float) -> str:
    millis = round(seconds * 1000)
    return f"{millis // 3_600_000:02d}:{millis // 60_000 % 60:02d}:{millis // 1000 % 60:02d},{millis % 1000:03d}"


def _timecode(frame: int) -> str:
    return f"{frame // (3600 * RATE):02d}:{frame // (60 * RATE) % 60:02d}:{frame // RATE % 60:02d}:{frame % RATE:02d}"


def one_pair_per_line(scc: str) -> str:
    lines = scc.splitlines()
    out = [lines[0], ""]
    last = -1
    for line in lines[1:]:
        if not line.strip():
            continue
        code, words = line.split("\t")
        hours, minutes, secs, frames = (int(part) for part in code.replace(";", ":").split(":"))
        frame = max(((hours * 60 + minutes) * 60 + secs) * RATE + frames, last + 1)
        for word in words.split():
            out += [f"{_timecode(frame)}\t{word}", ""]
            last = frame
            frame += 1
    return "\n".join(out) + "\n"


def caption_track(folder: Path, seconds: int) -> Path:
    """A QuickTime file with one CEA-608 track (``c608``) holding ``cues(seconds)``."""
    from pycaption import SCCWriter, SRTReader

    srt = "\n".join(
        f"{index}\n{_srt_time(start)} --> {_srt_time(end)}\n{text}\n"
        for index, (start, end, text) in enumerate(cues(seconds), start=1)
    )
    scc = folder / "captions.scc"
    scc.write_text(one_pair_per_line(SCCWriter().write(SRTReader().read(srt))))
    mov = folder / "captions.mov"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(scc), "-c:s", "copy", "-f", "mov", str(mov)],
        check=True,
        timeout=60,
    )
    return mov


def caption_branch(mov: Path, combiner: str = "cc") -> list[str]:
    """gst-launch elements feeding ``mov``'s captions into the ``cccombiner`` named ``combiner``."""
    return [
        "filesrc",
        f"location={mov}",
        "!",
        "qtdemux",
        "!",
        "ccconverter",
        "!",
        "closedcaption/x-cea-708,format=cc_data",
        "!",
        f"{combiner}.caption",
    ]


def aac_tone_branch(*, seconds: int | None = None, mux: str = "mux") -> list[str]:
    """gst-launch elements of a stereo 48 kHz tone encoded to AAC (``voaacenc``) into the muxer named
    ``mux``: live (paced by the clock) without ``seconds``, else that many seconds as fast as it goes."""
    length = ["is-live=true"] if seconds is None else [f"num-buffers={seconds * 48_000 // 1024}"]
    return [
        "audiotestsrc",
        *length,
        "samplesperbuffer=1024",
        "!",
        "audio/x-raw,rate=48000,channels=2",
        "!",
        "voaacenc",
        "!",
        "aacparse",
        "!",
        f"{mux}.",
    ]


def captioned_ts(folder: Path, *, seconds: int, size: tuple[int, int] = (320, 180)) -> Path:
    """An MPEG-TS file (H.264 with 608 captions in SEI, AAC) of ``seconds``, written as fast as it goes."""
    mov = caption_track(folder, seconds)
    path = folder / "captioned.ts"
    width, height = size
    subprocess.run(
        [
            "gst-launch-1.0",
            "-q",
            "-e",
            "videotestsrc",
            f"num-buffers={seconds * RATE}",
            "!",
            f"video/x-raw,width={width},height={height},framerate={RATE}/1",
            "!",
            "cccombiner",
            "name=cc",
            "!",
            "x264enc",
            "speed-preset=ultrafast",
            f"key-int-max={2 * RATE}",
            "!",
            "h264parse",
            "!",
            "mpegtsmux",
            "name=mux",
            "!",
            "filesink",
            f"location={path}",
            *caption_branch(mov),
            *aac_tone_branch(seconds=seconds),
        ],
        check=True,
        timeout=120,
    )
    return path


def read_captions(url: str, *, seconds: float = 20, timeout: float = 90) -> str:
    """The captions ffmpeg's own 608 decoder reads from the video of ``url``, as SRT."""
    source = url.replace("\\", "\\\\").replace(":", "\\:").replace("'", "\\'")
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"movie='{source}'[out0+subcc]", "-map", "0:s"]
        + ["-t", str(seconds), "-f", "srt", "-"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout

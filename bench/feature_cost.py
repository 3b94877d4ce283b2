"""What captions, ad markers and a second audio language cost the live encoder.

    python bench/feature_cost.py [--seconds 30] [--features captions,languages,cues]

Two live-encoded channels with the demo's three-rung ladder run under one ``kubecast up`` (one
encoder each), one after the other (the idle one costs nothing), each fed over UDP by a playout
of a prepared MPEG-TS file in real time (``tests/e2e/tsplay.py``: the bytes unchanged, as a
playout server sends them):

- ``full``: 720p30 H.264 with CEA-608 captions in SEI (GStreamer's ``x264enc`` after
  ``cccombiner``, ``tests/captioned.py``), two AAC tracks tagged ``eng`` and ``fra`` (the same
  sound twice: an AAC encoder's cost depends on what it encodes), and a
  SCTE-35 PID (threefive's ``scte35inject``) with a 4 s break every 10 s (``--features`` names
  which of the three it carries, to see what each costs);
- ``plain``: the same file with only the video (its SEI NAL units, and so the captions, removed
  by ffmpeg's ``filter_units``) and the first audio track.

It reads each channel's encoder CPU time (``/proc/<pid>/stat``) over ``--seconds`` of its playout,
after a warm-up, and prints both and their ratio; #19's goal is at most 1.05.  It also prints
what each channel's playlists carry (caption signalling, DATERANGE tags, audio languages), so
a run in which a feature did not reach the output cannot pass for a cheap one.  Needs the test
extras (``pip install -e '.[test]'``: pycaption, threefive) and Debian's GStreamer plugins, as
the end-to-end tests do.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from captioned import captioned_ts  # noqa: E402
from helpers import inject_scte35, threefive_splice_insert  # noqa: E402
from processes import DEMO_LADDER, kubecast_up, stop_group, tree, wait_for  # noqa: E402

from kubecast.local.ports import unclaimed_port  # noqa: E402

CHANNELS = "---\n".join(
    f"apiVersion: kubecast.io/v1alpha1\nkind: Channel\nmetadata: {{name: {name}}}\n"
    f"spec: {{ingest: {{protocols: [UDP]}}, encoding: {DEMO_LADDER}, segmentDuration: 2}}\n"
    for name in ("plain", "full")
)
WARM_UP = 8  # seconds of playout before the measurement: past both encoders' start-up
BREAK_EVERY, BREAK = 10, 4
FEATURES = ("captions", "languages", "cues")


def first_video_dts(path: Path) -> int:
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "packet=dts", "-read_intervals", "%+#1"]
        + ["-of", "csv=p=0", str(path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return int(probe.stdout.split()[0].rstrip(","))


def remux(source: Path, target: Path, *, languages: bool, captions: bool) -> Path:
    """``source``'s video and first audio track (and its second: ``languages``), without the
    video's SEI NAL units (and so without captions) unless ``captions``."""
    second = ["-map", "0:a:1"] if languages else []
    strip = [] if captions else ["-bsf:v", "filter_units=remove_types=6"]
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(source), "-map", "0:v", "-map", "0:a:0", *second, "-c", "copy"]
        + [*strip, "-f", "mpegts", str(target)],
        check=True,
        timeout=120,
    )
    return target


def make_sources(folder: Path, seconds: int, features: set[str]) -> tuple[Path, Path]:
    """(plain, with ``features``) MPEG-TS files of ``seconds`` (and a few more, which the
    injector's last block loses)."""
    captioned = captioned_ts(folder, seconds=seconds + 4, size=(1280, 720))
    everything = folder / "everything.ts"
    # The second language is the first one's sound again: what a language costs is one more
    # transcode of such audio (an AAC encoder's cost depends on what it encodes).
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(captioned), "-map", "0:v", "-map", "0:a", "-map", "0:a"]
        + ["-c", "copy", "-metadata:s:a:0", "language=eng"]
        + ["-metadata:s:a:1", "language=fra", "-f", "mpegts", str(everything)],
        check=True,
        timeout=120,
    )
    plain = remux(everything, folder / "plain.ts", languages=False, captions=False)
    full = remux(everything, folder / "full.ts", languages="languages" in features, captions="captions" in features)
    if "cues" in features:
        start = first_video_dts(full) / 90_000
        cues = []
        for number, at in enumerate(range(BREAK_EVERY, seconds, BREAK_EVERY), start=1):
            out = threefive_splice_insert(event_id=number, out=True, pts_seconds=start + at, duration=BREAK)
            back = threefive_splice_insert(event_id=number, out=False, pts_seconds=start + at + BREAK, duration=None)
            cues += [(start + at - 4, out), (start + at + BREAK - 4, back)]
        inject_scte35(remux(everything, folder / "uncued.ts", languages="languages" in features,
                            captions="captions" in features), full, cues)  # fmt: skip
    return plain, full


def encoder_cpu(root: int, channel: str) -> float:
    """CPU seconds so far of the channel's encoder process(es) under ``kubecast up``."""
    return sum(cpu for command, cpu in tree(root).values() if f"encoder-{channel}.json" in command)


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return str(answer.read().decode())


def what_it_carries(base: str, channel: str) -> str:
    multivariant = fetch(f"{base}/live/{channel}/index.m3u8")
    captions = "CLOSED-CAPTIONS=" in multivariant and "TYPE=CLOSED-CAPTIONS" in multivariant
    languages = sorted(set(re.findall(r'TYPE=AUDIO[^\n]*LANGUAGE="([^"]+)"', multivariant)))
    dateranges = fetch(f"{base}/live/{channel}/video_240p/index.m3u8").count("#EXT-X-DATERANGE")
    return f"captions signalled: {captions}; audio languages: {languages}; DATERANGE tags: {dateranges}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument(
        "--features", default=",".join(FEATURES), help=f"what the full source carries, of {', '.join(FEATURES)}"
    )
    args = parser.parse_args()
    features = set(args.features.split(",")) - {""}
    if unknown := features - set(FEATURES):
        parser.error(f"unknown features {sorted(unknown)}")
    playout = WARM_UP + args.seconds + 4
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        plain, full = make_sources(work, playout, features)
        (work / "channels.yaml").write_text(CHANNELS)
        http = unclaimed_port()
        up, lines = kubecast_up(
            work / "channels.yaml",
            work / "store",
            work,
            *("--rtmp-port", str(unclaimed_port()), "--rtmp-secondary-port", str(unclaimed_port())),
            *("--http-port", str(http), "--ingest-http-port", str(unclaimed_port())),
            *("--srt-port", str(unclaimed_port())),
        )
        players: list[subprocess.Popen[bytes]] = []
        try:
            wait_for(lines, "Status page", 120)
            printed = "".join(lines)
            used: dict[str, float] = {}
            for name, source in (("plain", plain), ("full", full)):
                channel = printed.split(f"Channel {name}\n", 1)[1]
                port = re.search(r"udp://127\.0\.0\.1:(\d+)", channel)
                assert port is not None, f"no UDP ingest printed for {name}"
                # One channel at a time: the other's encoder idles, and this one has both cores.
                players.append(
                    subprocess.Popen(
                        [sys.executable, str(ROOT / "tests/e2e/tsplay.py"), str(source)]
                        + [f"127.0.0.1:{port.group(1)}", str(playout)],
                        start_new_session=True,
                    )
                )
                time.sleep(WARM_UP)
                before = encoder_cpu(up.pid, name)
                time.sleep(args.seconds)
                used[name] = encoder_cpu(up.pid, name) - before
                stop_group(players[-1])
            carried = {name: what_it_carries(f"http://127.0.0.1:{http}", name) for name in ("plain", "full")}
        finally:
            for process in (*players, up):
                stop_group(process)
    print(f"{os.cpu_count()} cores, {args.seconds} s measured after {WARM_UP} s each, 720p30 in, the demo's ladder out")
    print(f"full: the plain source with {', '.join(sorted(features)) or 'nothing'} added")
    for name, cpu in used.items():
        print(f"{name}: encoder {cpu / args.seconds:.3f} cores")
    print(f"full / plain: {used['full'] / used['plain']:.3f} (goal <= 1.05)")
    for name, what in carried.items():
        print(f"{name} carries: {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Origin throughput: one ``kubecast endpoint`` process against nginx serving the same bytes.

    python bench/origin.py [--seconds 10] [--connections 32] [--segment-kb 600]

A store is filled with a three-rendition channel (a 60-segment window of CMAF segments of
``--segment-kb``, synthetic but well-formed).  The endpoint serves it; the same multivariant
playlist, media playlist and segment, fetched from the endpoint, are written as static files
that nginx (one worker, sendfile on, like one endpoint process on one core) serves.  ``wrk``
(Debian) then measures manifests per second and segment bytes per second of both, in the same
run, and the ratios are printed.  Needs ``apt-get install wrk nginx-light``.

Every kind of segment is measured twice, from two endpoint processes: one with the usual cache,
where every request after the first is a cache hit, and one with ``--cache-mb 0``, where every
request reads the stored segment (and encrypts it again: a miss).  The kinds: clear; signed
(a signed-URL token in the path, ``/t/<token>/…``, checked on every request: an endpoint with
``signingKeys``); encrypted (``contentProtection``: HLS AES-128 at the segment's own URL, DASH
CENC under ``cenc/``).  Each group is compared with nginx serving the clear segment, measured
just before the group (an encrypted segment has the same size, to a block), because the
machine's speed drifts during a run.  Goals: signed clear >= 0.8 of nginx's bytes/s, encrypted
>= 0.5 from the cache, manifests >= 0.25 of nginx's requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubecast.local.ports import unclaimed_port
from kubecast.media.mp4 import Sample, init_segment_video, media_segment
from kubecast.media.timeline import Timeline, TimelineTrack
from kubecast.media.tokens import sign
from kubecast.media.tracks import TrackInfo
from kubecast.storage import Store, layout

AVCC = bytes([1, 0x64, 0, 0x1F, 0xFF, 0xE1, 0, 4, 0x67, 0x64, 0, 0x1F, 1, 0, 2, 0x68, 0xEE])


async def fill(store_dir: Path, segment_bytes: int) -> None:
    store = Store(str(store_dir))
    now = datetime.now(UTC)
    tracks = []
    for name, height, bitrate in (("v720", 720, 3_000_000), ("v480", 480, 1_500_000), ("v360", 360, 800_000)):
        init = init_segment_video(width=height * 16 // 9, height=height, timescale=90000, avcc=AVCC)
        await store.put(layout.init_key("bench", "A", name, "init-aa.mp4"), init)
        rows = []
        for number in range(100, 160):
            # one IDR slice NAL unit of random bytes: well-formed enough for CENC's subsample map
            payload = (segment_bytes - 4).to_bytes(4, "big") + b"\x65" + os.urandom(segment_bytes - 5)
            segment = media_segment(
                sequence_number=number,
                base_decode_time=number * 180000,
                samples=[Sample(180000, len(payload))],
                data=payload,
            )
            await store.put(layout.segment_key("bench", "A", name, number), segment)
            rows.append([number, number * 180000, 180000, len(segment), "A", False])
        info = TrackInfo(
            id=name,
            kind="video",
            codecs="avc1.64001f",
            bandwidth=bitrate,
            timescale=90000,
            init="init-aa.mp4",
            width=height * 16 // 9,
            height=height,
            frame_rate="30",
        )
        tracks.append(
            TimelineTrack(info=info, init_source="A", segments=rows, average_bandwidth=bitrate, peak_bandwidth=bitrate)
        )
    timeline = Timeline(
        channel="bench",
        state="live",
        updated=now,
        availability_start_time=now,
        segment_duration_ms=2000,
        window_ms=120_000,
        tracks=tracks,
        generation=1,
    )
    await store.put(layout.timeline_key("bench"), timeline.to_json())


def wrk(url: str, seconds: int, connections: int) -> tuple[float, float]:
    """(requests/s, bytes/s) of wrk against one URL."""
    result = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", url], capture_output=True, text=True, check=True
    )
    requests = float(re.search(r"Requests/sec:\s+([\d.]+)", result.stdout).group(1))
    value, unit = re.search(r"Transfer/sec:\s+([\d.]+)([KMG]?B)", result.stdout).groups()
    return requests, float(value) * {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}[unit]


def start_endpoint(store: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    port = unclaimed_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubecast.cli",
            "endpoint",
            "--store",
            str(store),
            "--listen",
            f"127.0.0.1:{port}",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    for line in process.stdout:
        if "listening on" in line:
            break
    return process, f"http://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--segment-kb", type=int, default=600)
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            sys.exit(f"bench/origin.py needs {tool}: apt-get install wrk nginx-light")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        os.chmod(work, 0o755)  # nginx's worker runs as an unprivileged user and must read the files
        asyncio.run(fill(work / "store", args.segment_kb * 1024))
        nginx_port = unclaimed_port()
        endpoint, base = start_endpoint(work / "store")
        master_key, signing_key = work / "master-key", work / "signing-key"
        master_key.write_text(os.urandom(16).hex())
        signing_key.write_text(os.urandom(32).hex())
        (work / "signed.json").write_text(json.dumps({"signingKeys": [{"id": "bench", "file": str(signing_key)}]}))
        (work / "encrypted.json").write_text(json.dumps({"contentProtection": {"masterKeyFile": str(master_key)}}))
        token = sign(
            key=signing_key.read_text().strip().encode(),
            key_id="bench",
            scope="channel:bench",
            expires=int(time.time()) + 3600,
        )
        groups = {  # kind -> (extra endpoint arguments, {row name: path})
            "clear": ([], {"segment clear": "/live/bench/v720/130.m4s"}),
            "signed": (
                ["--config", str(work / "signed.json")],
                {"segment signed": f"/t/{token}/live/bench/v720/130.m4s"},
            ),
            "encrypted": (
                ["--config", str(work / "encrypted.json")],
                {
                    "segment AES-128": "/live/bench/v720/130.m4s",
                    "segment CENC": f"/live/bench/cenc/v720/t{130 * 180000}.m4s",
                },
            ),
        }
        processes = [endpoint]
        nginx = None
        try:
            bases = {}
            for kind, (extra, _rows) in groups.items():
                for cache in ("hit", "miss"):
                    process, url = start_endpoint(
                        work / "store", *extra, *(["--cache-mb", "0"] if cache == "miss" else [])
                    )
                    processes.append(process)
                    bases[kind, cache] = url
            paths = {
                "multivariant": "/live/bench/index.m3u8",
                "media playlist": "/live/bench/v720/index.m3u8",
                "segment": "/live/bench/v720/130.m4s",
            }
            static = work / "static"
            for path in paths.values():
                target = static / path.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(urllib.request.urlopen(base + path).read())
            (work / "nginx.conf").write_text(
                f"worker_processes 1; daemon off; pid {work}/nginx.pid; error_log {work}/error.log;\n"
                f"events {{ worker_connections 1024; }}\n"
                f"http {{ access_log off; sendfile on; tcp_nopush on;"
                f" types {{ application/vnd.apple.mpegurl m3u8; video/mp4 m4s; }}\n"
                f"  client_body_temp_path {work}/body; proxy_temp_path {work}/proxy; fastcgi_temp_path {work}/fastcgi;"
                f" uwsgi_temp_path {work}/uwsgi; scgi_temp_path {work}/scgi;\n"
                f"  server {{ listen 127.0.0.1:{nginx_port}; root {static}; }} }}\n"
            )
            nginx = subprocess.Popen(["nginx", "-c", str(work / "nginx.conf")], stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    served = urllib.request.urlopen(f"http://127.0.0.1:{nginx_port}{paths['segment']}").read()
                    if served != (static / paths["segment"].lstrip("/")).read_bytes():
                        sys.exit("nginx does not serve the segment it was given")
                    break
                except OSError:
                    time.sleep(0.1)
            for (kind, _cache), url in bases.items():  # every endpoint serves what it is measured on
                for path in groups[kind][1].values():
                    if urllib.request.urlopen(url + path).status != 200:
                        sys.exit(f"{kind} endpoint does not serve {path}")
            print(f"{args.connections} connections, {args.seconds} s each; segment of {args.segment_kb} kB")
            print(
                f"{'request':<24} {'kubecast req/s':>15} {'nginx req/s':>12} {'kubecast MB/s':>14} {'nginx MB/s':>11} "
                f"{'ratio':>7}"
            )

            def row(name: str, ours: tuple[float, float], theirs: tuple[float, float], ratio: float) -> None:
                print(
                    f"{name:<24} {ours[0]:>15.0f} {theirs[0]:>12.0f} {ours[1] / 1e6:>14.1f} {theirs[1] / 1e6:>11.1f} "
                    f"{ratio:>7.2f}",
                    flush=True,
                )

            for name in ("multivariant", "media playlist"):
                ours = wrk(base + paths[name], args.seconds, args.connections)
                theirs = wrk(f"http://127.0.0.1:{nginx_port}{paths[name]}", args.seconds, args.connections)
                row(name, ours, theirs, ours[0] / theirs[0])
            for kind, (_extra, rows) in groups.items():
                theirs = wrk(f"http://127.0.0.1:{nginx_port}{paths['segment']}", args.seconds, args.connections)
                for cache in ("hit", "miss"):
                    for name, path in rows.items():
                        ours = wrk(bases[kind, cache] + path, args.seconds, args.connections)
                        row(f"{name} {cache}", ours, theirs, ours[1] / theirs[1])
        finally:
            for process in processes:
                process.terminate()
                process.wait(10)
            if nginx is not None:
                nginx.terminate()
                nginx.wait(10)


if __name__ == "__main__":
    main()

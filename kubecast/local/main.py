"""``kubecast up``, ``kubecast demo`` and ``kubecast status``: the pipeline on one machine."""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from kubecast.api import ManifestError, Manifests, load_paths, load_text
from kubecast.api.urls import ingest_urls, program_urls
from kubecast.storage import ProgramRecord, Store, layout, read_program_timeline, read_timeline

from .channels import ChannelSwitch
from .plan import (
    HTTP_PUSH,
    Ports,
    ProcessSpec,
    TlsFiles,
    build_plan,
    datagram_channels,
    instances_for,
    kubecast_command,
    metrics_names,
    protocols_in_use,
    tls_protocols_in_use,
    write_run_files,
)
from .ports import PortReservations
from .programs import publish_programs
from .status import summarize, summarize_program
from .supervisor import Supervisor

log = logging.getLogger("kubecast.local")


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default=None, help="storage URL or folder (default: a folder under .kubecast/)")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve RTMP and HTTP on")
    parser.add_argument("--rtmp-port", type=int, default=1935, help="primary ingest (encoders A)")
    parser.add_argument("--rtmp-secondary-port", type=int, default=1936, help="secondary ingest (encoders B)")
    parser.add_argument(
        "--single-encoder", action="store_true", help="run encoder A only (half the CPU, no redundancy)"
    )
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument(
        "--ingest-http-port", type=int, default=8081, help="Smooth / CMAF push ingest (encoders A; B: the next port)"
    )
    parser.add_argument("--srt-port", type=int, default=9000, help="SRT ingest (encoders A; B: the next port)")
    parser.add_argument("--quiet", action="store_true", help="do not echo the components' logs")
    parser.add_argument("--status-interval", type=float, default=5.0, help="seconds between status lines")


# The demo's channel takes no TLS (its test pattern publishes plain RTMP), so only `kubecast up`
# has these options; the demo runs with the defaults.
TLS_DEFAULTS = {"rtmps_port": 1943, "ingest_https_port": 8443, "tls_cert": None, "tls_key": None}


def _tls_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rtmps-port",
        type=int,
        default=TLS_DEFAULTS["rtmps_port"],
        help="RTMPS ingest, for channels with ingest.tls (A; B: the next port)",
    )
    parser.add_argument(
        "--ingest-https-port",
        type=int,
        default=TLS_DEFAULTS["ingest_https_port"],
        help="Smooth / CMAF push over HTTPS, for channels with ingest.tls (A; B: the next port)",
    )
    parser.add_argument(
        "--tls-cert", help="PEM certificate (chain) of the RTMPS / HTTPS ingest; instead of the channels' TLS Secret"
    )
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")


async def _status_loop(store: Store, switch: ChannelSwitch, interval: float) -> None:
    while True:
        for channel in switch.channels:
            if channel in switch.stopped:
                print(f"{channel}: Stopped (`kubecast channel start {channel}` starts it)", flush=True)
                continue
            print(summarize(channel, await read_timeline(store, channel)), flush=True)
        await asyncio.sleep(interval)


def print_urls(manifests: Manifests, *, host: str, ports: Ports, store_url: str, demo: bool) -> None:
    base = f"http://{host}:{ports.http}"
    print(f"\nkubecast is running (store: {store_url})", flush=True)
    for name, channel in manifests.channels.items():
        ref = channel.spec.ingest.stream_key_secret_ref
        key_hint = "<generated>" if demo else (f"<stream key from Secret {ref.name}>" if ref else "<any key>")
        print(f"\n  Channel {name}")
        print(f"    Player (preview): {base}/preview/{name}/")
        print(f"    HLS:              {base}/live/{name}/index.m3u8")
        print(f"    DASH:             {base}/live/{name}/manifest.mpd")
        for instance, label in (("A", "Ingest"), ("B", "Secondary ingest")):
            rtmp = ports.rtmp if instance == "A" else ports.rtmp_secondary
            if rtmp is None:
                continue
            urls = ingest_urls(
                channel,
                host=host,
                rtmp=rtmp,
                http=ports.ingest_http.get(instance),
                srt=ports.srt.get(instance),
                udp=ports.udp.get((name, instance)),
                key=key_hint,
                rtmps=ports.rtmps.get(instance),
                https=ports.ingest_https.get(instance),
            )
            suffix = f"  ({channel.spec.ingest.redundancy.value})" if instance == "B" else ""
            for protocol, url in urls.items():
                print(f"    {f'{label} ({protocol}):':<17} {url}{suffix}")
    for name, program in manifests.programs.items():
        print(
            f"\n  Program {name} (channel {program.spec.channel_name}, window {program.spec.archive_window}; "
            f"`kubecast program stop {name}` turns it into on-demand content)"
        )
        for form, url in program_urls(
            base, locator=program.spec.locator or name, manifest=program.spec.manifest_name
        ).items():
            print(f"    {form + ':':<18}{url}")
    if any(endpoint.spec.access_control.signing_keys for endpoint in manifests.endpoints.values()):
        print(f"\n  These URLs need a token: kubecast sign -f <manifests> {base}/live/<channel>/index.m3u8")
    # Every process serves its own Prometheus metrics (the endpoint's are at {base}/metrics).
    print("\n  Metrics (Prometheus):")
    for name, port in ports.metrics.items():
        print(f"    {name + ':':<24}http://{host}:{port}/metrics")
    print(f"    {'endpoint:':<24}{base}/metrics")
    print(f"\n  Status page:        {base}/", flush=True)
    print("  Press Ctrl-C to stop.\n", flush=True)


def plan_ports(manifests: Manifests, args: argparse.Namespace) -> Ports:
    host, redundant = args.host, not args.single_encoder
    instances = instances_for(redundant)
    used = protocols_in_use(manifests)
    http = {"A": args.ingest_http_port, "B": args.ingest_http_port + 1} if used & HTTP_PUSH else {}
    srt = {"A": args.srt_port, "B": args.srt_port + 1} if "SRT" in used else {}
    secure = tls_protocols_in_use(manifests)
    rtmps = {"A": args.rtmps_port, "B": args.rtmps_port + 1} if "RTMP" in secure else {}
    https = {"A": args.ingest_https_port, "B": args.ingest_https_port + 1} if secure & HTTP_PUSH else {}
    with PortReservations(host) as reserve:
        wanted_rtmp = reserve.wanted(args.rtmp_port)
        wanted_http = reserve.wanted(args.http_port)
        rtmp_secondary = reserve.wanted(args.rtmp_secondary_port) if redundant else None
        ingest_http = {inst: reserve.wanted(port) for inst, port in http.items() if inst in instances}
        rtmps_ports = {inst: reserve.wanted(port) for inst, port in rtmps.items() if inst in instances}
        https_ports = {inst: reserve.wanted(port) for inst, port in https.items() if inst in instances}
        return Ports(
            rtmp=wanted_rtmp,
            http=wanted_http,
            contribution={(name, inst): reserve.free() for name in manifests.channels for inst in instances},
            metrics={name: reserve.free() for name in metrics_names(manifests, redundant)},
            rtmp_secondary=rtmp_secondary,
            ingest_http=ingest_http,
            srt={inst: port for inst, port in srt.items() if inst in instances},  # UDP: libsrt reports a busy one
            udp={
                (name, inst): reserve.free(socket.SOCK_DGRAM)
                for name in datagram_channels(manifests)
                for inst in instances
            },
            rtmps=rtmps_ports,
            ingest_https=https_ports,
            endpoint_liveness=reserve.free(),
        )


async def run_pipeline(
    *,
    manifests: Manifests,
    store_url: str,
    run_dir: Path,
    args: argparse.Namespace,
    extra: Sequence[ProcessSpec] = (),
    demo: bool = False,
) -> int:
    host = args.host
    ports = plan_ports(manifests, args)
    try:
        tls = None
        if args.tls_cert:
            tls = TlsFiles(cert=str(Path(args.tls_cert).resolve()), key=str(Path(args.tls_key).resolve()))
        plan = build_plan(manifests=manifests, store_url=store_url, run_dir=run_dir, host=host, ports=ports, tls=tls)
    except ManifestError as error:
        print(f"kubecast: {error}", file=sys.stderr)
        return 2
    write_run_files(plan, run_dir)
    specs = plan.running(frozenset(plan.states.stopped))
    for spec in extra:
        specs.append(
            ProcessSpec(
                name=spec.name,
                argv=spec.argv,
                ready_marker=spec.ready_marker,
                env={
                    **spec.env,
                    "KUBECAST_PUBLISH_URL": spec.env["KUBECAST_PUBLISH_URL"].replace("{rtmp_port}", str(ports.rtmp)),
                },
                restart=spec.restart,
            )
        )
    supervisor = Supervisor(specs, echo=not args.quiet)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    store = Store(store_url)
    switch = ChannelSwitch(
        store=store, plan=plan, run_dir=run_dir, supervisor=supervisor, channels=list(manifests.channels)
    )
    status_task = None
    tasks: list[asyncio.Task[None]] = []
    try:
        await publish_programs(store, manifests)
        await switch.publish()
        await supervisor.start()
        print_urls(manifests, host=host, ports=ports, store_url=store_url, demo=demo)
        status_task = asyncio.create_task(_status_loop(store, switch, args.status_interval))
        tasks.append(asyncio.create_task(switch.follow()))
        await stop.wait()
        print("stopping...", file=sys.stderr, flush=True)
        return 0
    except RuntimeError as error:
        print(f"kubecast: {error}", file=sys.stderr)
        return 1
    finally:
        for task in [*tasks, *([status_task] if status_task else [])]:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await supervisor.stop()


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    return args


def main_up(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="kubecast up", description="Run Channel/Program/StreamingEndpoint YAML on this machine."
    )
    parser.add_argument("-f", "--file", action="append", required=True, help="manifest file (repeatable)")
    _common_arguments(parser)
    _tls_arguments(parser)
    args = _parse(parser, argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        manifests = load_paths(args.file)
    except ManifestError as error:
        print(f"kubecast: {error}", file=sys.stderr)
        return 2
    if not manifests.channels:
        print("kubecast: the manifests define no Channel", file=sys.stderr)
        return 2
    workdir = Path(".kubecast")
    store_url = args.store or str((workdir / "store").resolve())
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=_ensure(workdir)))
    try:
        return asyncio.run(run_pipeline(manifests=manifests, store_url=store_url, run_dir=run_dir, args=args))
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def main_demo(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="kubecast demo", description="A test-pattern channel end to end: RTMP in, ABR out, a player URL."
    )
    _common_arguments(parser)
    parser.add_argument("--size", default="1280x720", help="test pattern size")
    parser.set_defaults(**TLS_DEFAULTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    workdir = _ensure(Path(".kubecast"))
    run_dir = Path(tempfile.mkdtemp(prefix="demo-", dir=workdir))
    store_url = args.store or str(run_dir / "store")
    key = secrets.token_urlsafe(16)
    text = resources.files("kubecast.local").joinpath("demo.yaml").read_text()
    secret = (
        f"---\napiVersion: v1\nkind: Secret\nmetadata: {{name: demo-stream-key}}\nstringData: {{streamKey: {key}}}\n"
    )
    manifests = load_text(text + secret, "demo.yaml")
    publisher = ProcessSpec(
        name="test-pattern",
        argv=kubecast_command("test-pattern", "--size", args.size),
        ready_marker=None,
        env={"KUBECAST_PUBLISH_URL": f"rtmp://127.0.0.1:{{rtmp_port}}/live/demo/{key}"},
    )
    try:
        return asyncio.run(
            run_pipeline(
                manifests=manifests, store_url=store_url, run_dir=run_dir, args=args, extra=[publisher], demo=True
            )
        )
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def main_status(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kubecast status", description="Show the channels and programs of a store.")
    parser.add_argument("--store", default=str(Path(".kubecast/store").resolve()))
    parser.add_argument(
        "--endpoint",
        default="",
        help="streaming endpoint address for the program URLs, e.g. http://127.0.0.1:8080 (default: paths only)",
    )
    args = parser.parse_args(argv)

    async def show() -> int:
        store = Store(args.store)
        keys = [info.key.split("/") for info in await store.list("channels")]
        # channels/<channel>/timeline.json, and channels/<channel>/programs/<program>/program.json
        channels = {parts[1] for parts in keys if len(parts) == 3 and parts[2] == "timeline.json"}
        programs = sorted(
            (parts[1], parts[3])
            for parts in keys
            if len(parts) == 5 and parts[2] == "programs" and parts[4] == "program.json"
        )
        channels |= {channel for channel, _ in programs}
        if not channels:
            print(f"no channels in {args.store}")
        for channel in sorted(channels):
            print(summarize(channel, await read_timeline(store, channel)))
            print(f"  preview: {args.endpoint.rstrip('/')}/preview/{channel}/")
            for _, name in (p for p in programs if p[0] == channel):
                data = await store.get(layout.program_key(channel, name))
                if data is None:
                    continue  # deleted since the listing
                try:
                    record = ProgramRecord.from_json(data)
                except ValueError as error:
                    print(f"  program {name}: unreadable record ({error})")
                    continue
                recorded = await read_program_timeline(store, channel, name)
                print("\n".join(summarize_program(record, recorded, base=args.endpoint.rstrip("/"))))
        return 0

    return asyncio.run(show())

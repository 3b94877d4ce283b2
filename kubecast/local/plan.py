"""What ``kubecast up`` runs: a pure function from manifests to processes.

Local mode runs the same commands the container images run; only the supervisor differs
from a cluster.  As on a cluster, every channel has encoders A and B, and each has its own
ingest: the primary ingest feeds the A encoders, the secondary the B encoders (two RTMP
ports, each taking every channel as one RTMP server with several applications would); in
relay mode each ingest also forwards what it receives to the other encoder.  Each channel
gets its packager, and one streaming endpoint serves everything from the store.  Ports for
the internal hops (ingest -> encoder) are chosen by the caller so that a restarted process
comes back on the same address.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from kubecast.api import ManifestError, Manifests
from kubecast.api.channel import TLS_CERTIFICATE_KEY, TLS_PRIVATE_KEY_KEY
from kubecast.api.components import (
    ChannelStates,
    EncoderConfig,
    EndpointConfig,
    EndpointSecret,
    IngestFile,
    IngestRoute,
    PackagerConfig,
    encoder_config,
    endpoint_config,
    ingest_route,
    packager_config,
)


@dataclass(frozen=True)
class ProcessSpec:
    name: str  # shown in logs, e.g. "encoder demo/A"
    argv: list[str]
    ready_marker: str | None  # a stdout substring that says the process serves
    env: dict[str, str] = field(default_factory=dict)
    restart: bool = True
    liveness_url: str | None = None  # its /livez: the supervisor restarts the process when it says hung
    channel: str | None = None  # the channel an encoder or packager serves: absent while it is stopped


@dataclass(frozen=True)
class Ports:
    rtmp: int
    http: int
    contribution: dict[tuple[str, str], int]  # (channel, instance) -> encoder contribution port
    metrics: dict[str, int]  # process name -> metrics port
    rtmp_secondary: int | None = None  # the secondary ingest (encoder B's); None runs encoder A only
    # The other protocols, per ingest instance ("A", "B"); absent: not served.
    ingest_http: dict[str, int] = field(default_factory=dict)  # Smooth / CMAF push
    srt: dict[str, int] = field(default_factory=dict)  # one SRT port per ingest, routed by stream id
    udp: dict[tuple[str, str], int] = field(default_factory=dict)  # (channel, instance) -> MPEG-TS over UDP / RTP
    rtmps: dict[str, int] = field(default_factory=dict)  # RTMP over TLS, per ingest instance
    ingest_https: dict[str, int] = field(default_factory=dict)  # Smooth / CMAF push over HTTPS, per ingest instance
    endpoint_liveness: int | None = None  # the endpoint's /livez (loopback); None: not watched


@dataclass(frozen=True)
class TlsFiles:
    """The local ingest's certificate (``kubecast up --tls-cert --tls-key``)."""

    cert: str  # PEM certificate chain, leaf first
    key: str  # PEM private key


@dataclass(frozen=True)
class Plan:
    processes: list[ProcessSpec]
    ingest_config: dict[str, IngestFile]  # instance -> that ingest's ingest.json
    packager_config: dict[str, PackagerConfig]  # channel -> its packager's packager.json
    encoder_config: dict[str, EncoderConfig]  # channel -> its encoders' encoder.json
    key_files: dict[str, str]  # path -> stream key or other secret (written 0600 by the runner)
    endpoint_config: EndpointConfig  # the endpoint's endpoint.json
    states: ChannelStates = field(default_factory=ChannelStates)  # the ingests' channel-states.json
    idle_timeouts: dict[str, float] = field(default_factory=dict)  # channel -> seconds (spec.idleTimeout)

    def running(self, stopped: set[str] | frozenset[str]) -> list[ProcessSpec]:
        """The processes to run while the ``stopped`` channels are stopped."""
        return [spec for spec in self.processes if spec.channel not in stopped]


INGESTS = {"A": "ingest", "B": "ingest secondary"}  # process names: primary and secondary ingest


def instances_for(redundant: bool = True) -> list[str]:
    """Encoders A and B, as on a cluster; each has its own ingest (primary, secondary)."""
    return ["A", "B"] if redundant else ["A"]


def ingest_config_path(run_dir: Path, instance: str) -> Path:
    return run_dir / f"ingest-{instance.lower()}.json"


def packager_config_path(run_dir: Path, channel: str) -> Path:
    return run_dir / f"packager-{channel}.json"


def states_path(run_dir: Path) -> Path:
    return run_dir / "channel-states.json"


def encoder_config_path(run_dir: Path, channel: str) -> Path:
    return run_dir / f"encoder-{channel}.json"


def livez(port: int) -> str:
    """A process's liveness URL: its metrics server (loopback, the default ``--metrics-address``)."""
    return f"http://127.0.0.1:{port}/livez"


def kubecast_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "kubecast.cli", *args]


def endpoint_config_path(run_dir: Path) -> Path:
    return run_dir / "endpoint.json"


def local_endpoint_config(manifests: Manifests, run_dir: Path, key_files: dict[str, str]) -> EndpointConfig:
    """The one local endpoint's config: the StreamingEndpoint's (there may be one) and the
    Channels' preview allow-lists; its secrets join ``key_files``."""
    if len(manifests.endpoints) > 1:
        raise ManifestError(
            f"kubecast up runs one streaming endpoint; the manifests define {len(manifests.endpoints)} "
            "StreamingEndpoints"
        )
    endpoint = next(iter(manifests.endpoints.values()), None)

    def secret_file(secret: EndpointSecret) -> str:
        path = str(run_dir / f"endpoint-{secret.file_name}")
        key_files[path] = manifests.secret_value(secret.ref.name, secret.ref.key)
        return path

    return endpoint_config(endpoint, manifests.channels.values(), secret_file=secret_file)


def ingest_tls_arguments(
    manifests: Manifests, run_dir: Path, key_files: dict[str, str], tls: TlsFiles | None
) -> list[str]:
    """The local ingests' ``--tls-cert`` / ``--tls-key``: the given files, or else the
    kubernetes.io/tls Secret the TLS channels name (one ingest serves every channel locally, so
    with one certificate: they must name the same Secret).  Empty when no channel takes TLS."""
    ingests = [channel.spec.ingest for channel in manifests.channels.values()]
    names = sorted({ingest.tls.secret_name for ingest in ingests if ingest.tls is not None})
    if not names:
        return []
    if tls is not None:
        return ["--tls-cert", tls.cert, "--tls-key", tls.key]
    if len(names) > 1:
        raise ManifestError(
            f"the local ingest has one certificate, but the channels name the TLS Secrets "
            f"{', '.join(names)}: name one, or give kubecast up --tls-cert and --tls-key"
        )
    files = {TLS_CERTIFICATE_KEY: str(run_dir / "ingest-tls.crt"), TLS_PRIVATE_KEY_KEY: str(run_dir / "ingest-tls.key")}
    for secret_key, path in files.items():
        try:
            key_files[path] = manifests.secret_value(names[0], secret_key)
        except ManifestError as error:
            raise ManifestError(f"{error} (spec.ingest.tls; or give kubecast up --tls-cert and --tls-key)") from None
    return ["--tls-cert", files[TLS_CERTIFICATE_KEY], "--tls-key", files[TLS_PRIVATE_KEY_KEY]]


def build_plan(
    *, manifests: Manifests, store_url: str, run_dir: Path, host: str, ports: Ports, tls: TlsFiles | None = None
) -> Plan:
    key_files: dict[str, str] = {}
    endpoint = local_endpoint_config(manifests, run_dir, key_files)
    tls_args = ingest_tls_arguments(manifests, run_dir, key_files, tls)
    processes: list[ProcessSpec] = [
        ProcessSpec(
            name="endpoint",
            argv=kubecast_command(
                "endpoint",
                "--store",
                store_url,
                "--listen",
                f"{host}:{ports.http}",
                "--config",
                str(endpoint_config_path(run_dir)),
                *(
                    ["--liveness-listen", f"127.0.0.1:{ports.endpoint_liveness}"]
                    if ports.endpoint_liveness is not None
                    else []
                ),
            ),
            ready_marker="listening on",
            liveness_url=livez(ports.endpoint_liveness) if ports.endpoint_liveness is not None else None,
        )
    ]
    instances = instances_for(redundant=ports.rtmp_secondary is not None)
    ingest_channels: dict[str, dict[str, IngestRoute]] = {instance: {} for instance in instances}
    for name, channel in manifests.channels.items():
        addresses = {}
        for instance in instances:
            port = ports.contribution[(name, instance)]
            addresses[instance] = f"127.0.0.1:{port}"
            label = f"encoder {name}/{instance}"
            processes.append(
                ProcessSpec(
                    name=label,
                    argv=kubecast_command(
                        "encoder",
                        "--config",
                        str(encoder_config_path(run_dir, name)),
                        "--instance",
                        instance,
                        "--contribution",
                        f"127.0.0.1:{port}",
                        "--store",
                        store_url,
                        "--metrics-port",
                        str(ports.metrics[label]),
                    ),
                    ready_marker="listening on",
                    liveness_url=livez(ports.metrics[label]),
                    channel=name,
                )
            )
        label = f"packager {name}"
        processes.append(
            ProcessSpec(
                name=label,
                argv=kubecast_command(
                    "packager",
                    "--config",
                    str(packager_config_path(run_dir, name)),
                    "--store",
                    store_url,
                    "--metrics-port",
                    str(ports.metrics[label]),
                ),
                ready_marker="running",  # the channel's first timeline is written: its URLs answer
                liveness_url=livez(ports.metrics[label]),
                channel=name,
            )
        )
        ingest = channel.spec.ingest
        key_file, passphrase_file = str(run_dir / f"{name}.streamkey"), str(run_dir / f"{name}.srtpassphrase")
        if (ref := ingest.stream_key_secret_ref) is not None:
            key_files[key_file] = manifests.secret_value(ref.name, ref.key)
        if (ref := ingest.srt.passphrase_secret_ref) is not None:
            key_files[passphrase_file] = manifests.secret_value(ref.name, ref.key)
        for instance in instances:
            udp_port = ports.udp.get((name, instance))
            ingest_channels[instance][name] = ingest_route(
                channel,
                encoder=addresses[instance],
                others=[addresses[other] for other in instances if other != instance],
                udp_listen=f"{host}:{udp_port}" if udp_port else None,
                stream_key_file=key_file,
                srt_passphrase_file=passphrase_file,
            )
    ingest_config = {instance: IngestFile(channels=routes) for instance, routes in ingest_channels.items()}
    packagers = {name: packager_config(channel, instances=instances) for name, channel in manifests.channels.items()}
    encoders = {name: encoder_config(channel) for name, channel in manifests.channels.items()}
    for instance in instances:
        name = INGESTS[instance]
        port = ports.rtmp if instance == "A" else ports.rtmp_secondary
        processes.append(
            ProcessSpec(
                name=name,
                argv=kubecast_command(
                    "ingest",
                    "--listen",
                    f"{host}:{port}",
                    "--config",
                    str(ingest_config_path(run_dir, instance)),
                    "--states",
                    str(states_path(run_dir)),
                    "--metrics-port",
                    str(ports.metrics[name]),
                    *(
                        ["--http-listen", f"{host}:{ports.ingest_http[instance]}"]
                        if instance in ports.ingest_http
                        else []
                    ),
                    *(["--srt-listen", f"{host}:{ports.srt[instance]}"] if instance in ports.srt else []),
                    *(
                        ["--rtmps-listen", f"{host}:{ports.rtmps[instance]}"]
                        if tls_args and instance in ports.rtmps
                        else []
                    ),
                    *(
                        ["--https-listen", f"{host}:{ports.ingest_https[instance]}"]
                        if tls_args and instance in ports.ingest_https
                        else []
                    ),
                    *tls_args,
                ),
                ready_marker="listening on",
                liveness_url=livez(ports.metrics[name]),
            )
        )
    return Plan(
        processes=processes,
        ingest_config=ingest_config,
        packager_config=packagers,
        encoder_config=encoders,
        key_files=key_files,
        endpoint_config=endpoint,
        states=ChannelStates(stopped=[name for name, channel in manifests.channels.items() if channel.spec.stopped]),
        idle_timeouts={
            name: seconds
            for name, channel in manifests.channels.items()
            if (seconds := channel.spec.idle_timeout_seconds) is not None
        },
    )


def metrics_names(manifests: Manifests, redundant: bool = True) -> list[str]:
    instances = instances_for(redundant)
    names = [INGESTS[instance] for instance in instances]
    for name in manifests.channels:
        names += [f"encoder {name}/{instance}" for instance in instances]
        names.append(f"packager {name}")
    return names


def write_run_files(plan: Plan, run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    for path, key in plan.key_files.items():
        file = Path(path)
        file.touch(mode=0o600, exist_ok=True)
        file.chmod(0o600)
        file.write_text(key)
    for instance, config in plan.ingest_config.items():
        ingest_config_path(run_dir, instance).write_text(config.to_json())
    for channel, packager in plan.packager_config.items():
        packager_config_path(run_dir, channel).write_text(packager.to_json())
    for channel, encoder in plan.encoder_config.items():
        encoder_config_path(run_dir, channel).write_text(encoder.to_json())
    endpoint_config_path(run_dir).write_text(plan.endpoint_config.to_json())
    write_states(run_dir, plan.states)


def write_states(run_dir: Path, states: ChannelStates) -> None:
    """Replaced whole (rename), so the ingest never reads half a file."""
    temporary = states_path(run_dir).with_suffix(".tmp")
    temporary.write_text(states.to_json())
    temporary.replace(states_path(run_dir))


HTTP_PUSH = {"FragmentedMP4", "CMAF"}
DATAGRAM = {"UDP", "RTP"}


def protocols_in_use(manifests: Manifests) -> set[str]:
    return {protocol.value for channel in manifests.channels.values() for protocol in channel.spec.ingest.protocols}


def tls_protocols_in_use(manifests: Manifests) -> set[str]:
    """The protocols some channel takes over TLS."""
    return {protocol.value for channel in manifests.channels.values() for protocol in channel.spec.ingest.tls_protocols}


def datagram_channels(manifests: Manifests) -> list[str]:
    return [
        name
        for name, channel in manifests.channels.items()
        if DATAGRAM & {p.value for p in channel.spec.ingest.protocols}
    ]

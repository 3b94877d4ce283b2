import stat
from pathlib import Path

from kubecast.api import load_text
from kubecast.ingest.config import load_config
from kubecast.ingest.states import read_states
from kubecast.local.plan import Ports, build_plan, metrics_names, write_run_files

MANIFESTS = """
apiVersion: kubecast.io/v1alpha1
kind: Channel
metadata: {name: news}
spec:
  ingest: {streamKeySecretRef: {name: news-key, key: k}, allowedIps: [192.0.2.0/24]}
---
apiVersion: kubecast.io/v1alpha1
kind: Channel
metadata: {name: open}
spec: {encoding: {preset: None}, ingest: {redundancy: Relay}}
---
apiVersion: v1
kind: Secret
metadata: {name: news-key}
stringData: {k: the-key}
"""


def make_plan(tmp_path: Path):
    manifests = load_text(MANIFESTS)
    ports = Ports(
        rtmp=1935,
        http=8080,
        rtmp_secondary=1936,
        contribution={("news", "A"): 7001, ("open", "A"): 7002, ("news", "B"): 7003, ("open", "B"): 7004},
        metrics={name: 9000 + index for index, name in enumerate(metrics_names(manifests))},
    )
    return build_plan(manifests=manifests, store_url="/store", run_dir=tmp_path, host="127.0.0.1", ports=ports)


def test_one_endpoint_and_ingest_and_per_channel_encoder_and_packager(tmp_path):
    plan = make_plan(tmp_path)
    names = [p.name for p in plan.processes]
    assert names == [
        "endpoint",
        "encoder news/A",
        "encoder news/B",
        "packager news",
        "encoder open/A",
        "encoder open/B",
        "packager open",
        "ingest",
        "ingest secondary",
    ]
    ingests = {p.name: p.argv[p.argv.index("--listen") + 1] for p in plan.processes if p.name.startswith("ingest")}
    assert ingests == {"ingest": "127.0.0.1:1935", "ingest secondary": "127.0.0.1:1936"}
    encoder = next(p for p in plan.processes if p.name == "encoder news/A")
    assert encoder.argv[encoder.argv.index("--contribution") + 1] == "127.0.0.1:7001"
    assert encoder.argv[encoder.argv.index("--store") + 1] == "/store"


def test_ingest_routes_channels_to_their_encoders(tmp_path):
    plan = make_plan(tmp_path)
    primary, secondary = plan.ingest_config["A"].channels, plan.ingest_config["B"].channels
    assert primary["news"].encoders == ["127.0.0.1:7001"] and secondary["news"].encoders == ["127.0.0.1:7003"]
    assert primary["news"].relays == [] and secondary["news"].relays == []  # dual push: each path feeds its own encoder
    assert primary["open"].relays == ["127.0.0.1:7004"] and secondary["open"].relays == ["127.0.0.1:7002"]  # relay
    assert primary["news"].allowed_ips == ["192.0.2.0/24"]
    assert primary["open"].stream_key_file is None


def test_stream_keys_go_to_private_files_never_argv(tmp_path):
    plan = make_plan(tmp_path)
    assert all("the-key" not in " ".join(p.argv) for p in plan.processes)
    assert all("the-key" not in config.to_json() for config in plan.ingest_config.values())
    write_run_files(plan, tmp_path)
    key_file = Path(plan.ingest_config["A"].channels["news"].stream_key_file)
    assert key_file.read_text() == "the-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    for instance in ("A", "B"):
        config = load_config(tmp_path / f"ingest-{instance.lower()}.json")  # what the ingest process reads
        assert config.channels["news"].key == "the-key" and config.channels["news"].encoders == (
            ("127.0.0.1", 7001 if instance == "A" else 7003),
        )
        assert config.channels["open"].key is None and config.channels["open"].relays


TLS_MANIFESTS = """
apiVersion: kubecast.io/v1alpha1
kind: Channel
metadata: {name: secure}
spec: {ingest: {protocols: [RTMP, CMAF], tls: {secretName: ingest-tls}}}
---
apiVersion: kubecast.io/v1alpha1
kind: Channel
metadata: {name: open}
spec: {ingest: {protocols: [RTMP]}}
"""
TLS_SECRET = """---
apiVersion: v1
kind: Secret
metadata: {name: ingest-tls}
type: kubernetes.io/tls
stringData: {tls.crt: the certificate, tls.key: the private key}
"""


def tls_plan(tmp_path: Path, text: str, tls=None):
    manifests = load_text(text)
    ports = Ports(
        rtmp=1935,
        http=8080,
        rtmp_secondary=1936,
        contribution={(c, i): 7000 for c in manifests.channels for i in "AB"},
        metrics={name: 9000 + index for index, name in enumerate(metrics_names(manifests))},
        ingest_http={"A": 8081, "B": 8082},
        rtmps={"A": 1943, "B": 1944},
        ingest_https={"A": 8443, "B": 8444},
    )
    return build_plan(manifests=manifests, store_url="/store", run_dir=tmp_path, host="127.0.0.1", ports=ports, tls=tls)


def test_a_tls_channel_gets_rtmps_and_https_listeners_with_the_certificate_of_its_secret_or_of_the_files(tmp_path):
    import pytest

    from kubecast.api import ManifestError
    from kubecast.local.plan import TlsFiles

    plan = tls_plan(tmp_path, TLS_MANIFESTS + TLS_SECRET)
    secondary = next(p for p in plan.processes if p.name == "ingest secondary").argv
    cert, key = str(tmp_path / "ingest-tls.crt"), str(tmp_path / "ingest-tls.key")
    assert " ".join(secondary).endswith(
        f"--rtmps-listen 127.0.0.1:1944 --https-listen 127.0.0.1:8444 --tls-cert {cert} --tls-key {key}"
    )
    assert plan.key_files[cert] == "the certificate" and plan.key_files[key] == "the private key"  # written 0600
    routes = plan.ingest_config["A"].channels
    assert (routes["secure"].tls, routes["secure"].plaintext) == (True, False)
    assert (routes["open"].tls, routes["open"].plaintext) == (False, True)
    # --tls-cert / --tls-key instead of the Secret (which may then be absent).
    files = tls_plan(tmp_path, TLS_MANIFESTS, TlsFiles(cert="/etc/ssl/ingest.pem", key="/etc/ssl/ingest.key"))
    primary = next(p for p in files.processes if p.name == "ingest").argv
    assert primary[-4:] == ["--tls-cert", "/etc/ssl/ingest.pem", "--tls-key", "/etc/ssl/ingest.key"]
    assert not any(path.endswith(".crt") for path in files.key_files)
    with pytest.raises(ManifestError, match="tls.crt.*or give kubecast up --tls-cert and --tls-key"):
        tls_plan(tmp_path, TLS_MANIFESTS)
    two = TLS_MANIFESTS.replace("{protocols: [RTMP]}", "{protocols: [RTMP], tls: {secretName: other-tls}}")
    with pytest.raises(ManifestError, match="the channels name the TLS Secrets ingest-tls, other-tls"):
        tls_plan(tmp_path, two + TLS_SECRET)
    # No channel with tls: no TLS listener, whatever the ports.
    plain = tls_plan(tmp_path, TLS_MANIFESTS.replace(", tls: {secretName: ingest-tls}", ""))
    assert not any("--rtmps-listen" in p.argv or "--tls-cert" in p.argv for p in plain.processes)


def test_the_supervisor_watches_every_process_where_it_serves_its_liveness(tmp_path):
    import dataclasses
    from urllib.parse import urlsplit

    manifests = load_text(MANIFESTS)
    ports = dataclasses.replace(_ports(manifests), endpoint_liveness=9999)
    plan = build_plan(manifests=manifests, store_url="/store", run_dir=tmp_path, host="0.0.0.0", ports=ports)
    for spec in plan.processes:
        assert spec.liveness_url is not None, spec.name
        url = urlsplit(spec.liveness_url)
        assert url.hostname == "127.0.0.1" and url.path == "/livez"
        argv = spec.argv
        option = "--liveness-listen" if spec.name == "endpoint" else "--metrics-port"
        served = argv[argv.index(option) + 1]
        assert served in (str(url.port), f"127.0.0.1:{url.port}"), (spec.name, argv)
        if option == "--metrics-port":
            assert "--metrics-address" not in argv, "metrics (and /livez) on loopback, the default"


def _ports(manifests) -> Ports:
    return Ports(
        rtmp=1935,
        http=8080,
        rtmp_secondary=1936,
        contribution={("news", "A"): 7001, ("open", "A"): 7002, ("news", "B"): 7003, ("open", "B"): 7004},
        metrics={name: 9000 + index for index, name in enumerate(metrics_names(manifests))},
    )


def test_a_stopped_channel_runs_no_encoder_or_packager_and_its_ingests_know_it(tmp_path):
    manifests = load_text(
        MANIFESTS.replace("spec: {encoding: {preset: None}", "spec: {state: Stopped, encoding: {preset: None}")
    )
    ports = _ports(manifests)
    plan = build_plan(manifests=manifests, store_url="/store", run_dir=tmp_path, host="127.0.0.1", ports=ports)
    assert plan.states.stopped == ["open"]
    running = [p.name for p in plan.running(frozenset(plan.states.stopped))]
    assert running == ["endpoint", "encoder news/A", "encoder news/B", "packager news", "ingest", "ingest secondary"]
    # Kept in the plan, to be run when the channel is started.
    assert [p.name for p in plan.processes if p.channel == "open"] == [
        "encoder open/A",
        "encoder open/B",
        "packager open",
    ]
    write_run_files(plan, tmp_path)
    ingest = next(p for p in plan.processes if p.name == "ingest")
    states = Path(ingest.argv[ingest.argv.index("--states") + 1])
    assert read_states(states) == frozenset({"open"})

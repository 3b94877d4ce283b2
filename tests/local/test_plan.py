import stat
from pathlib import Path

from kubecast.api import load_text
from kubecast.ingest.config import load_config
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
        rtmp=1935, http=8080, rtmp_secondary=1936,
        contribution={("news", "A"): 7001, ("open", "A"): 7002, ("news", "B"): 7003, ("open", "B"): 7004},
        metrics={name: 9000 + index for index, name in enumerate(metrics_names(manifests))},
    )
    return build_plan(manifests=manifests, manifest_paths=["/m.yaml"], store_url="/store", run_dir=tmp_path, host="127.0.0.1", ports=ports)


def test_one_endpoint_and_ingest_and_per_channel_encoder_and_packager(tmp_path):
    plan = make_plan(tmp_path)
    names = [p.name for p in plan.processes]
    assert names == ["endpoint", "encoder news/A", "encoder news/B", "packager news", "encoder open/A", "encoder open/B", "packager open",
                     "ingest", "ingest secondary"]
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
        assert config.channels["news"].key == "the-key" and config.channels["news"].encoders == (("127.0.0.1", 7001 if instance == "A" else 7003),)
        assert config.channels["open"].key is None and config.channels["open"].relays

"""Content protection reaches the endpoint it configures: locally and on a cluster, the same
``endpoint.json`` but for where the key files are, the Secrets' values in those files only; the
endpoint refuses a config it cannot honour, at start, saying why."""

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kubecast.api import ManifestError, load_text
from kubecast.endpoint import config
from kubecast.endpoint.protection import JwtRule
from kubecast.local.plan import Ports, build_plan, metrics_names, write_run_files
from kubecast.media.keys import KeyDeriver
from kubecast.operator.builders import build_endpoint_children
from kubecast.operator.settings import OperatorSettings

MANIFESTS = """
apiVersion: kubecast.io/v1alpha1
kind: StreamingEndpoint
metadata: {name: default}
spec:
  contentProtection:
    masterKeySecretRef: {name: drm, key: master}
    keyRotationSegments: 30
    cencScheme: cbcs
    keyDelivery: {jwtSecretRef: {name: drm, key: jwt}, issuer: sts, audience: kubecast}
---
apiVersion: v1
kind: Secret
metadata: {name: drm}
stringData: {master: 000102030405060708090a0b0c0d0e0f, jwt: token-key}
"""
SETTINGS = OperatorSettings(store_url="/s")


def local_endpoint(text: str, run_dir: Path) -> tuple[list[str], dict]:
    """The local endpoint's argv and its endpoint.json, as ``kubecast up`` writes them."""
    manifests = load_text(text)
    ports = Ports(
        rtmp=1935,
        http=8080,
        contribution={(n, "A"): 7001 for n in manifests.channels},
        metrics={name: 9000 + i for i, name in enumerate(metrics_names(manifests, redundant=False))},
    )
    plan = build_plan(manifests=manifests, store_url="/store", run_dir=run_dir, host="127.0.0.1", ports=ports)
    write_run_files(plan, run_dir)
    endpoint = next(p for p in plan.processes if p.name == "endpoint")
    assert endpoint.env == {}, "no secret travels in the environment"
    return endpoint.argv, json.loads(Path(endpoint.argv[endpoint.argv.index("--config") + 1]).read_text())


def cluster_endpoint(text: str) -> tuple[dict, dict]:
    """The endpoint pod's container and its endpoint.json, as the operator builds them."""
    children = build_endpoint_children(
        load_text(text).endpoints["default"], uid="u", namespace="media", settings=SETTINGS
    )
    config_map = next(c for c in children if c["kind"] == "ConfigMap")
    deployment = next(c for c in children if c["kind"] == "Deployment")
    return deployment["spec"]["template"]["spec"]["containers"][0], json.loads(config_map["data"]["endpoint.json"])


def test_local_and_cluster_endpoints_get_the_same_config_and_the_keys_in_files(tmp_path):
    argv, local = local_endpoint(MANIFESTS, tmp_path)
    container, in_pod = cluster_endpoint(MANIFESTS)
    assert local["contentProtection"]["masterKeyFile"] == str(tmp_path / "endpoint-content-master-key")
    assert in_pod["contentProtection"]["masterKeyFile"] == "/var/run/secrets/kubecast/content-master-key"
    for document in (local, in_pod):
        document["contentProtection"].pop("masterKeyFile")
        document["contentProtection"]["keyDelivery"].pop("jwtKeyFile")
    assert (
        local
        == in_pod
        == {
            "allowedIps": [],
            "previewAllowedIps": [],
            "trustedProxies": [],
            "signingKeys": [],
            "crossSiteOrigins": [],
            "contentProtection": {
                "keyRotationSegments": 30,
                "cencScheme": "cbcs",
                "keyDelivery": {"issuer": "sts", "audience": "kubecast"},
            },
            "hlsCueTags": False,
        }
    )
    everything = json.dumps(container) + " ".join(argv) + json.dumps(local)
    assert "000102" not in everything and "token-key" not in everything
    assert container["args"][-2:] == ["--config", "/etc/kubecast/endpoint.json"]
    assert not [e for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})], "keys come as files"
    policy, protection, _ = config.load(argv[argv.index("--config") + 1])
    assert protection is not None and policy.signing_keys == {}
    assert (protection.rotation_segments, protection.cenc_scheme, protection.jwt) == (
        30,
        "cbcs",
        JwtRule(b"token-key", "sts", "kubecast"),
    )
    master = KeyDeriver(bytes.fromhex("000102030405060708090a0b0c0d0e0f"))
    assert protection.key_for("news", 7) == master.for_period("news", 0), "the master key from its file"
    for name in ("endpoint-content-master-key", "endpoint-key-delivery-jwt-key"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    _, open_config = local_endpoint(
        "kind: StreamingEndpoint\napiVersion: kubecast.io/v1alpha1\nmetadata: {name: default}\n", tmp_path / "open"
    )
    assert "contentProtection" not in open_config


def test_two_endpoints_cannot_share_the_one_local_endpoint(tmp_path):
    second = MANIFESTS.split("---")[0].replace("name: default", "name: other")
    with pytest.raises(ManifestError, match="one streaming endpoint"):
        local_endpoint(MANIFESTS + "---" + second, tmp_path)


def run_endpoint(config_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubecast.cli", "endpoint", "--store", "/nonexistent", "--config", str(config_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_endpoint_refuses_a_config_it_cannot_honour_at_start_saying_why(tmp_path):
    master = tmp_path / "master"
    path = tmp_path / "endpoint.json"

    def refusal(document: dict) -> str:
        path.write_text(json.dumps(document))
        with pytest.raises(config.ConfigError) as caught:
            config.load(path)
        return str(caught.value)

    assert "No such file" in refusal({"contentProtection": {"masterKeyFile": str(master)}})
    assert str(master) in refusal({"contentProtection": {"masterKeyFile": str(master)}})
    master.write_text("\n")
    assert refusal({"contentProtection": {"masterKeyFile": str(master)}}) == (
        f"the content protection master key file {master} is empty"
    )
    master.write_text("0011")
    assert "at least 16 bytes" in refusal({"contentProtection": {"masterKeyFile": str(master)}})
    assert refusal({"contentProtection": {"masterKey": "0011"}}) == (
        "contentProtection.masterKeyFile: Field required; contentProtection.masterKey: Extra inputs are not permitted"
    )
    assert "signingKeys.0.id" in refusal({"signingKeys": [{"id": "a b", "file": str(master)}]})
    assert "allowedIps.0" in refusal({"allowedIps": ["not-a-range"]})
    master.write_text("a-secret-of-the-signing-kind")
    path.write_text(json.dumps({"contentProtection": {"masterKeyFile": str(master)}}))
    result = run_endpoint(path)
    assert result.returncode == 2 and f"--config {path}: the content-protection master key must be hex or base64" in (
        result.stderr
    )
    assert "a-secret-of-the-signing-kind" not in result.stderr + result.stdout
    assert "No such file" in run_endpoint(tmp_path / "absent.json").stderr


def test_a_missing_content_protection_secret_is_named_by_the_secret_check():
    from kubecast.operator.builders.endpoint_config import endpoint_secret_references
    from kubecast.operator.status import secret_problems

    endpoint = load_text(MANIFESTS).endpoints["default"]
    references = endpoint_secret_references(endpoint)
    assert secret_problems(references, {"drm": {"data": {"master": "MDA=", "jwt": "eA=="}}}) is None
    assert secret_problems(references, {"drm": None}) == (
        "Secret drm (content protection master key) does not exist; Secret drm (key delivery JWT key) does not exist"
    )
    assert (
        secret_problems(references, {"drm": {"data": {"master": "MDA="}}})
        == "Secret drm (key delivery JWT key) has no key jwt"
    )


CPIX_MANIFESTS = """
apiVersion: kubecast.io/v1alpha1
kind: StreamingEndpoint
metadata: {name: default}
spec:
  contentProtection:
    masterKeySecretRef: {name: drm, key: master}
    cencScheme: cbcs
    cpix:
      url: https://keys.example.com/speke/v2.0/copyProtection
      drmSystems: [Widevine, PlayReady, FairPlay]
      credentialsSecretRef: {name: drm-vendor, key: authorization}
---
apiVersion: v1
kind: Secret
metadata: {name: drm}
stringData: {master: 000102030405060708090a0b0c0d0e0f}
---
apiVersion: v1
kind: Secret
metadata: {name: drm-vendor}
stringData: {authorization: "Basic dXNlcjpwYXNz"}
"""


def test_the_key_server_its_systems_and_its_credentials_reach_the_endpoint(tmp_path):
    manifests = load_text(CPIX_MANIFESTS)
    argv, local = local_endpoint(CPIX_MANIFESTS, tmp_path)
    credentials = tmp_path / "endpoint-cpix-credentials"
    assert local["contentProtection"]["cpix"]["credentialsFile"] == str(credentials)
    assert "dXNlcjpwYXNz" not in json.dumps(local) and stat.S_IMODE(credentials.stat().st_mode) == 0o600
    _, protection, _ = config.load(argv[argv.index("--config") + 1])
    server = protection.key_server if protection is not None else None
    assert server is not None and server.url == "https://keys.example.com/speke/v2.0/copyProtection"
    assert [s.value for s in server.systems] == ["Widevine", "PlayReady", "FairPlay"]
    assert server.authorization == "Basic dXNlcjpwYXNz" and "dXNlcjpwYXNz" not in repr(server)
    credentials.write_text("")
    with pytest.raises(config.ConfigError, match="the DRM key server credentials file .* is empty"):
        config.load(argv[argv.index("--config") + 1])
    container, in_pod = cluster_endpoint(CPIX_MANIFESTS)
    assert in_pod["contentProtection"]["cpix"]["credentialsFile"] == "/var/run/secrets/kubecast/cpix-credentials"
    children = build_endpoint_children(manifests.endpoints["default"], uid="u", namespace="media", settings=SETTINGS)
    pod = next(c for c in children if c["kind"] == "Deployment")["spec"]["template"]["spec"]
    sources = next(v for v in pod["volumes"] if v["name"] == "endpoint-secrets")["projected"]["sources"]
    assert [(s["secret"]["name"], s["secret"]["items"]) for s in sources] == [
        ("drm", [{"key": "master", "path": "content-master-key"}]),
        ("drm-vendor", [{"key": "authorization", "path": "cpix-credentials"}]),
    ]
    from kubecast.operator.builders.endpoint_config import endpoint_secret_references
    from kubecast.operator.status import secret_problems

    references = endpoint_secret_references(manifests.endpoints["default"])
    assert secret_problems(references, {"drm": {"data": {"master": "MDA="}}, "drm-vendor": None}) == (
        "Secret drm-vendor (DRM key server credentials) does not exist"
    )


def test_fairplay_needs_cbcs():
    with pytest.raises(ManifestError, match="FairPlay needs cencScheme cbcs"):
        load_text(CPIX_MANIFESTS.replace("cencScheme: cbcs", "cencScheme: cenc"))
    with pytest.raises(ManifestError, match="drmSystems must not repeat"):
        load_text(CPIX_MANIFESTS.replace("[Widevine, PlayReady, FairPlay]", "[Widevine, Widevine]"))


def test_hls_cue_tags_reach_the_local_and_the_cluster_endpoint(tmp_path):
    text = "apiVersion: kubecast.io/v1alpha1\nkind: StreamingEndpoint\nmetadata: {name: default}\n"
    text += "spec: {hlsCueTags: true}\n"
    argv, local = local_endpoint(text, tmp_path)
    _, in_pod = cluster_endpoint(text)
    assert local["hlsCueTags"] is in_pod["hlsCueTags"] is True
    assert config.load(argv[argv.index("--config") + 1]).hls_cue_tags

"""The local endpoint's access policy and ``kubecast sign``, from the same manifests."""

import json
import stat
import time
from pathlib import Path

import pytest

from kubecast.api import ManifestError, load_text
from kubecast.api.components import EndpointConfig
from kubecast.endpoint.access import AccessPolicy, decide
from kubecast.endpoint.config import load
from kubecast.local.plan import Ports, build_plan, metrics_names, write_run_files
from kubecast.local.sign import main as sign_main
from kubecast.local.sign import scope_of_path

MANIFESTS = """
apiVersion: kubecast.io/v1alpha1
kind: Channel
metadata: {name: news}
spec: {preview: {allowedIps: [10.1.0.0/16, "2001:db8::/48"]}}
---
apiVersion: kubecast.io/v1alpha1
kind: StreamingEndpoint
metadata: {name: default}
spec:
  crossSiteOrigins: ["https://player.example.com"]
  cdn: {originAuthentication: {headerName: X-From-Cdn, secretRef: {name: cdn, key: header}}}
  accessControl:
    allowedIps: [192.0.2.0/24]
    trustedProxies: [127.0.0.1/32]
    signingKeys:
    - {id: k2025, secretRef: {name: signing, key: old}}
    - {id: k2026, secretRef: {name: signing, key: new}}
---
apiVersion: v1
kind: Secret
metadata: {name: signing}
stringData: {old: the-old-key, new: the-new-key}
---
apiVersion: v1
kind: Secret
metadata: {name: cdn}
stringData: {header: cdn-secret}
"""


def plan_for(text: str, tmp_path: Path):
    manifests = load_text(text)
    ports = Ports(
        rtmp=1935,
        http=8080,
        rtmp_secondary=None,
        contribution={(n, "A"): 7001 for n in manifests.channels},
        metrics={name: 9000 + i for i, name in enumerate(metrics_names(manifests, redundant=False))},
    )
    return build_plan(manifests=manifests, store_url="/store", run_dir=tmp_path, host="127.0.0.1", ports=ports)


def test_the_endpoint_gets_the_policy_and_the_keys_in_private_files(tmp_path):
    plan = plan_for(MANIFESTS, tmp_path)
    write_run_files(plan, tmp_path)
    endpoint = next(p for p in plan.processes if p.name == "endpoint")
    path = endpoint.argv[endpoint.argv.index("--config") + 1]
    text = Path(path).read_text()
    assert "the-new-key" not in text and "cdn-secret" not in text and "the-new-key" not in " ".join(endpoint.argv)
    policy, protection, _ = load(path)
    assert protection is None
    assert policy.signing_keys == {"k2025": b"the-old-key", "k2026": b"the-new-key"}
    assert (policy.origin_header, policy.origin_secret) == ("X-From-Cdn", b"cdn-secret")
    assert [str(n) for n in policy.allowed] == ["192.0.2.0/24"] and [str(n) for n in policy.trusted_proxies] == [
        "127.0.0.1/32"
    ]
    assert {c: [str(n) for n in nets] for c, nets in policy.preview_allowed.items()} == {
        "news": ["10.1.0.0/16", "2001:db8::/48"]
    }
    assert policy.cross_site_origins == ("https://player.example.com",)
    for key in json.loads(text)["signingKeys"]:
        assert stat.S_IMODE(Path(key["file"]).stat().st_mode) == 0o600


def test_without_restrictions_the_endpoint_runs_open(tmp_path):
    plan = plan_for("apiVersion: kubecast.io/v1alpha1\nkind: Channel\nmetadata: {name: news}\n", tmp_path)
    write_run_files(plan, tmp_path)
    endpoint = next(p for p in plan.processes if p.name == "endpoint")
    assert plan.endpoint_config == EndpointConfig()
    assert load(endpoint.argv[endpoint.argv.index("--config") + 1]) == (AccessPolicy(), None, False)


def test_a_missing_secret_and_two_endpoints_are_clear_errors(tmp_path):
    with pytest.raises(ManifestError, match="Secret 'cdn'"):
        plan_for(MANIFESTS.split("---\napiVersion: v1\nkind: Secret\nmetadata: {name: cdn}")[0], tmp_path)
    second = MANIFESTS + "---\napiVersion: kubecast.io/v1alpha1\nkind: StreamingEndpoint\nmetadata: {name: other}\n"
    with pytest.raises(ManifestError, match="one streaming endpoint"):
        plan_for(second, tmp_path)


def test_sign_makes_urls_the_endpoint_accepts(tmp_path, capsys):
    manifests = tmp_path / "m.yaml"
    manifests.write_text(MANIFESTS)
    plan = plan_for(MANIFESTS, tmp_path)
    write_run_files(plan, tmp_path)
    policy, _, _ = load(tmp_path / "endpoint.json")
    assert sign_main(["-f", str(manifests), "--ttl", "60", "http://127.0.0.1:8080/live/news/index.m3u8"]) == 0
    url = capsys.readouterr().out.strip()
    assert url.startswith("http://127.0.0.1:8080/t/k2026.") and url.endswith("/live/news/index.m3u8"), (
        "the newest key signs"
    )
    token = url.split("/")[4]
    headers = {"X-From-Cdn": "cdn-secret"}
    for path in ("/live/news/index.m3u8", "/live/news/v720/12.m4s"):
        assert decide(policy, path=path, token=token, peer="192.0.2.9", headers=headers, now=time.time()) is None
    # The preview takes the channel's own list too: only a trusted proxy can vouch for 10.1.x.x here.
    assert (
        decide(policy, path="/preview/news/", token=token, peer="192.0.2.9", headers=headers, now=time.time()).reason
        == "preview_ip_not_allowed"
    )
    forwarded = {**headers, "X-Forwarded-For": "10.1.2.3"}
    assert (
        decide(policy, path="/preview/news/", token=token, peer="127.0.0.1", headers=forwarded, now=time.time()).reason
        == "ip_not_allowed"
    )
    assert (
        decide(
            policy, path="/live/sport/index.m3u8", token=token, peer="192.0.2.9", headers=headers, now=time.time()
        ).reason
        == "out_of_scope"
    )
    assert (
        decide(
            policy, path="/live/news/index.m3u8", token=token, peer="192.0.2.9", headers=headers, now=time.time() + 61
        ).reason
        == "expired"
    )
    key_file = tmp_path / "key"
    key_file.write_text("the-old-key\n")
    assert sign_main(["--key-file", str(key_file), "--key-id", "k2025", "--scope", "program:evening"]) == 0
    token = capsys.readouterr().out.strip()
    assert (
        decide(policy, path="/evening/index.m3u8", token=token, peer="192.0.2.9", headers=headers, now=time.time())
        is None
    )
    assert "the-old-key" not in token


def test_sign_refuses_clearly(tmp_path, capsys):
    manifests = tmp_path / "m.yaml"
    manifests.write_text(MANIFESTS)
    assert sign_main(["-f", str(manifests), "--key-id", "nope", "http://h/live/news/index.m3u8"]) == 2
    assert "no signing key 'nope'" in capsys.readouterr().err
    assert sign_main(["-f", str(manifests), "--scope", "channel:../x"]) == 2
    assert "scope" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        sign_main(["http://h/live/news/index.m3u8"])


@pytest.mark.parametrize(
    "path,scope",
    [
        ("/live/news/index.m3u8", "channel:news"),
        ("/preview/news/", "channel:news"),
        ("/evening/show.ism/manifest(format=mpd-time-cmaf)", "program:evening"),
    ],
)
def test_the_default_scope_is_the_urls_channel_or_program(path, scope):
    assert scope_of_path(path) == scope


def test_the_shipped_protected_example_plans_and_signs(tmp_path, capsys):
    example = Path(__file__).resolve().parents[2] / "examples" / "protected.yaml"
    plan_for(example.read_text(), tmp_path)
    write_run_files(plan_for(example.read_text(), tmp_path), tmp_path)
    assert sign_main(["-f", str(example), "http://127.0.0.1:8080/live/demo/index.m3u8"]) == 0
    token = capsys.readouterr().out.split("/")[4]
    policy, _, _ = load(tmp_path / "endpoint.json")
    assert (
        decide(policy, path="/live/demo/index.m3u8", token=token, peer="203.0.113.5", headers={}, now=time.time())
        is None
    )
    assert (
        decide(policy, path="/preview/demo/", token=token, peer="203.0.113.5", headers={}, now=time.time()).reason
        == "preview_ip_not_allowed"
    )
    assert decide(policy, path="/preview/demo/", token=token, peer="::1", headers={}, now=time.time()) is None

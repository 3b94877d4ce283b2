"""Content protection reaches the endpoint it configures: locally and on a cluster, the same
arguments, and the Secrets' values through the environment only; the endpoint refuses a
configuration it cannot honour."""

import json
import subprocess
import sys

import pytest

from kubecast.api import ManifestError, load_text
from kubecast.endpoint.protection import protection_from_environment
from kubecast.local.plan import endpoint_protection
from kubecast.operator.builders.endpoint import endpoint_deployment
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


def test_local_and_cluster_endpoints_get_the_spec_as_arguments_and_the_keys_as_environment():
    manifests = load_text(MANIFESTS)
    args, env = endpoint_protection(manifests)
    assert env == {
        "KUBECAST_CONTENT_MASTER_KEY": "000102030405060708090a0b0c0d0e0f",
        "KUBECAST_KEY_DELIVERY_JWT_KEY": "token-key",
    }
    assert args[0] == "--content-protection" and "000102" not in args[1] and "token-key" not in args[1]
    protection = protection_from_environment(args[1], env)
    assert (protection.rotation_segments, protection.cenc_scheme, protection.jwt.key, protection.jwt.issuer) == (
        30,
        "cbcs",
        b"token-key",
        "sts",
    )
    deployment = endpoint_deployment(
        manifests.endpoints["default"], namespace="media", owner={}, settings=OperatorSettings(store_url="/s")
    )
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][-2:] == args
    assert {
        "name": "KUBECAST_CONTENT_MASTER_KEY",
        "valueFrom": {"secretKeyRef": {"name": "drm", "key": "master"}},
    } in container["env"]
    assert {
        "name": "KUBECAST_KEY_DELIVERY_JWT_KEY",
        "valueFrom": {"secretKeyRef": {"name": "drm", "key": "jwt"}},
    } in container["env"]
    plain = endpoint_deployment(
        load_text("kind: StreamingEndpoint\napiVersion: kubecast.io/v1alpha1\nmetadata: {name: open}\n").endpoints[
            "open"
        ],
        namespace="media",
        owner={},
        settings=OperatorSettings(store_url="/s"),
    )
    assert "--content-protection" not in plain["spec"]["template"]["spec"]["containers"][0]["args"]


def test_two_protected_endpoints_cannot_share_the_one_local_endpoint():
    second = MANIFESTS.split("---")[0].replace("name: default", "name: other")
    with pytest.raises(ManifestError, match="at most one"):
        endpoint_protection(load_text(MANIFESTS + "---" + second))


def test_the_endpoint_refuses_to_start_without_its_master_key():
    spec = json.dumps({"masterKeySecretRef": {"name": "drm", "key": "master"}})
    with pytest.raises(ValueError, match="KUBECAST_CONTENT_MASTER_KEY"):
        protection_from_environment(spec, {})
    with pytest.raises(ValueError, match="at least 16 bytes"):
        protection_from_environment(spec, {"KUBECAST_CONTENT_MASTER_KEY": "0011"})
    result = subprocess.run(
        [sys.executable, "-m", "kubecast.cli", "endpoint", "--store", "/nonexistent", "--content-protection", spec],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2 and "KUBECAST_CONTENT_MASTER_KEY is not set" in result.stderr


def test_a_missing_content_protection_secret_is_named_by_the_secret_check():
    from kubecast.operator.builders.access import endpoint_secret_references
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


def test_the_key_server_its_systems_and_its_credentials_reach_the_endpoint():
    manifests = load_text(CPIX_MANIFESTS)
    args, env = endpoint_protection(manifests)
    assert env["KUBECAST_CPIX_AUTHORIZATION"] == "Basic dXNlcjpwYXNz" and "dXNlcjpwYXNz" not in args[1]
    server = protection_from_environment(args[1], env).key_server
    assert server is not None and server.url == "https://keys.example.com/speke/v2.0/copyProtection"
    assert [s.value for s in server.systems] == ["Widevine", "PlayReady", "FairPlay"]
    assert server.authorization == "Basic dXNlcjpwYXNz" and "dXNlcjpwYXNz" not in repr(server)
    with pytest.raises(ValueError, match="credentialsSecretRef is set but its value is empty"):
        protection_from_environment(args[1], {**env, "KUBECAST_CPIX_AUTHORIZATION": ""})
    deployment = endpoint_deployment(
        manifests.endpoints["default"], namespace="media", owner={}, settings=OperatorSettings(store_url="/s")
    )
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {
        "name": "KUBECAST_CPIX_AUTHORIZATION",
        "valueFrom": {"secretKeyRef": {"name": "drm-vendor", "key": "authorization"}},
    } in container["env"]
    from kubecast.operator.builders.access import endpoint_secret_references
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

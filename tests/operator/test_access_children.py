"""What the operator makes of the access-control fields: the preview URL in the Channel's status,
and (with the endpoint's children) the policy, Secrets and ingest Services."""

from datetime import datetime, timezone

from kubecast.api import Channel, StreamingEndpoint
from kubecast.operator.status import aggregate_channel, preview_url

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_the_preview_url_is_on_the_first_streaming_endpoint():
    channel = Channel.model_validate({"metadata": {"name": "news"}})
    endpoints = [
        StreamingEndpoint.model_validate({"metadata": {"name": name}, "spec": spec})
        for name, spec in (("zulu", {}), ("alpha", {"hostNames": ["tv.example.com"]}))
    ]
    assert preview_url(channel, endpoints, "media") == "http://tv.example.com/preview/news/"
    assert preview_url(channel, endpoints[:1], "media") == "http://zulu.media.svc/preview/news/"
    assert preview_url(channel, [], "media") is None
    status = aggregate_channel(
        channel,
        generation=1,
        deployments={},
        services={},
        secret_error=None,
        previous=None,
        now=NOW,
        preview=preview_url(channel, endpoints, "media"),
    )
    assert status["previewUrl"] == "http://tv.example.com/preview/news/"


import json  # noqa: E402

import kubernetes_validate  # noqa: E402

from kubecast.operator.builders import build_channel_children, build_endpoint_children  # noqa: E402
from kubecast.operator.builders.endpoint_config import endpoint_secret_references  # noqa: E402
from kubecast.operator.settings import OperatorSettings  # noqa: E402
from kubecast.operator.status import aggregate_endpoint, secret_problems  # noqa: E402

SETTINGS = OperatorSettings(store_url="s3://b/k")
PROTECTED = {
    "accessControl": {
        "allowedIps": ["203.0.113.0/24"],
        "trustedProxies": ["10.0.0.0/8"],
        "signingKeys": [
            {"id": "a", "secretRef": {"name": "url-signing", "key": "a"}},
            {"id": "b", "secretRef": {"name": "url-signing-2", "key": "b"}},
        ],
    },
    "cdn": {"originAuthentication": {"headerName": "X-From-Cdn", "secretRef": {"name": "cdn", "key": "header"}}},
    "crossSiteOrigins": ["https://player.example.com"],
}


def test_the_endpoint_pods_get_the_policy_and_the_secrets_never_their_values():
    endpoint = StreamingEndpoint.model_validate({"metadata": {"name": "edge"}, "spec": PROTECTED})
    channels = [
        Channel.model_validate({"metadata": {"name": "news"}, "spec": {"preview": {"allowedIps": ["192.0.2.0/24"]}}}),
        Channel.model_validate({"metadata": {"name": "open"}}),
    ]
    children = build_endpoint_children(endpoint, uid="u", namespace="media", settings=SETTINGS, channels=channels)
    for child in children:
        kubernetes_validate.validate(child, "1.30", strict=True)
    config = next(c for c in children if c["kind"] == "ConfigMap")
    assert (
        config["metadata"]["name"] == "edge-endpoint-config"
        and config["metadata"]["ownerReferences"][0]["name"] == "edge"
    )
    document = json.loads(config["data"]["endpoint.json"])
    assert document == {
        "allowedIps": ["203.0.113.0/24"],
        "trustedProxies": ["10.0.0.0/8"],
        "previewAllowedIps": [{"channel": "news", "allowedIps": ["192.0.2.0/24"]}],
        "signingKeys": [
            {"id": "a", "file": "/var/run/secrets/kubecast/signing-key-a"},
            {"id": "b", "file": "/var/run/secrets/kubecast/signing-key-b"},
        ],
        "originAuth": {"header": "X-From-Cdn", "valueFile": "/var/run/secrets/kubecast/origin-auth"},
        "crossSiteOrigins": ["https://player.example.com"],
        "hlsCueTags": False,
    }
    deployment = next(c for c in children if c["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"][-2:] == ["--config", "/etc/kubecast/endpoint.json"]
    sources = next(v for v in pod["volumes"] if v["name"] == "endpoint-secrets")["projected"]["sources"]
    assert [(s["secret"]["name"], s["secret"]["items"]) for s in sources] == [
        ("url-signing", [{"key": "a", "path": "signing-key-a"}]),
        ("url-signing-2", [{"key": "b", "path": "signing-key-b"}]),
        ("cdn", [{"key": "header", "path": "origin-auth"}]),
    ]
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/etc/kubecast", "/var/run/secrets/kubecast"}

    # A changed policy (here a Channel's preview list) rolls the pods; an unchanged one does not.
    def hash_of(cs):
        return next(c for c in cs if c["kind"] == "Deployment")["spec"]["template"]["metadata"]["annotations"][
            "kubecast.io/config-hash"
        ]

    again = build_endpoint_children(endpoint, uid="u", namespace="media", settings=SETTINGS, channels=channels)
    fewer = build_endpoint_children(endpoint, uid="u", namespace="media", settings=SETTINGS, channels=channels[1:])
    assert hash_of(again) == hash_of(children) != hash_of(fewer)


def test_an_open_endpoint_gets_an_open_config_and_no_secrets():
    endpoint = StreamingEndpoint.model_validate({"metadata": {"name": "edge"}})
    children = build_endpoint_children(
        endpoint,
        uid="u",
        namespace="media",
        settings=SETTINGS,
        channels=[Channel.model_validate({"metadata": {"name": "news"}})],
    )
    assert [c["kind"] for c in children] == ["ConfigMap", "Deployment", "Service", "PodDisruptionBudget"]
    assert json.loads(children[0]["data"]["endpoint.json"]) == {
        "allowedIps": [],
        "previewAllowedIps": [],
        "trustedProxies": [],
        "signingKeys": [],
        "crossSiteOrigins": [],
        "hlsCueTags": False,
    }
    pod = children[1]["spec"]["template"]["spec"]
    assert pod["containers"][0]["args"][-2:] == ["--config", "/etc/kubecast/endpoint.json"]
    assert [v["name"] for v in pod["volumes"]] == ["config"]


def test_a_missing_endpoint_secret_stalls_it_naming_what_for():
    endpoint = StreamingEndpoint.model_validate({"metadata": {"name": "edge"}, "spec": PROTECTED})
    problem = secret_problems(
        endpoint_secret_references(endpoint),
        {"url-signing": {"data": {"a": "eA=="}}, "url-signing-2": None, "cdn": {"data": {}}},
    )
    assert problem == "Secret url-signing-2 (signing key b) does not exist; Secret cdn (origin auth) has no key header"
    status = aggregate_endpoint(
        endpoint, generation=3, deployment=None, namespace="media", previous=None, now=NOW, secret_error=problem
    )
    stalled = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert stalled == {
        "Ready": ("False", "SecretMissing"),
        "Reconciling": ("False", "SecretMissing"),
        "Stalled": ("True", "SecretMissing"),
    }


def test_ingest_services_keep_the_publishers_address_where_it_is_checked():
    def services(spec):
        channel = Channel.model_validate({"metadata": {"name": "news"}, "spec": {"ingest": spec}})
        found = [
            c
            for c in build_channel_children(channel, uid="u", namespace="media", settings=SETTINGS)
            if c["metadata"]["name"].startswith("news-ingest-")
        ]
        for service in found:
            kubernetes_validate.validate(service, "1.30", strict=True)
        return [s["spec"] for s in found]

    for spec in services({"allowedIps": ["192.0.2.7", "2001:db8::/32"]}):
        assert spec["externalTrafficPolicy"] == "Local" and spec["loadBalancerSourceRanges"] == [
            "192.0.2.7/32",
            "2001:db8::/32",
        ]
    for spec in services({"allowedIps": ["192.0.2.0/24"], "serviceType": "NodePort"}):
        assert spec["externalTrafficPolicy"] == "Local" and "loadBalancerSourceRanges" not in spec
    for spec in services({"allowedIps": ["192.0.2.0/24"], "serviceType": "ClusterIP"}) + services({}):
        assert "externalTrafficPolicy" not in spec and "loadBalancerSourceRanges" not in spec

"""The access-control fields through the running operator (kopf against the kmock emulator):
the endpoint's config ConfigMap carries the Channels' preview allow-lists, the Channel's status
names its preview URL, ``hlsCueTags`` reaches the endpoint's config, and a missing signing-key
Secret stalls the endpoint without pods."""

import json

from emulator import (  # noqa: F401
    CHANNELS,
    DEPLOYMENTS,
    ENDPOINTS,
    channel_body,
    conditions,
    eventually,
    exists,
    obj,
    operator,
    put_stream_key,
)


def endpoint_body(secret: str) -> dict:
    return {
        "apiVersion": "kubecast.io/v1alpha1",
        "kind": "StreamingEndpoint",
        "metadata": {"name": "edge", "namespace": "media", "uid": "uid-edge", "generation": 1, "resourceVersion": "1"},
        "spec": {"accessControl": {"signingKeys": [{"id": "a", "secretRef": {"name": secret, "key": "a"}}]}},
    }


async def test_policy_preview_url_and_a_missing_key(cluster):  # noqa: F811
    put_stream_key(cluster)
    cluster.objects["v1/secrets", "media", "url-signing"] = {
        "metadata": {"name": "url-signing", "namespace": "media"},
        "data": {"a": "a2V5"},
    }
    channel = channel_body()
    channel["spec"]["preview"] = {"allowedIps": ["192.0.2.0/24"]}
    cluster.objects[CHANNELS, "media", "news"] = channel
    edge = endpoint_body("url-signing")
    edge["spec"]["hlsCueTags"] = True
    cluster.objects[ENDPOINTS, "media", "edge"] = edge
    body = endpoint_body("absent")
    body["metadata"].update(name="other", uid="uid-other")
    cluster.objects[ENDPOINTS, "media", "other"] = body
    async with operator():
        config = await eventually(
            lambda: obj(cluster, "v1/configmaps", "edge-endpoint-config"), what="the config ConfigMap"
        )
        document = json.loads(config["data"]["endpoint.json"])
        assert document["previewAllowedIps"] == [{"channel": "news", "allowedIps": ["192.0.2.0/24"]}]
        assert document["signingKeys"] == [{"id": "a", "file": "/var/run/secrets/kubecast/signing-key-a"}]
        assert document["hlsCueTags"] is True, "the StreamingEndpoint's hlsCueTags reaches its endpoint.json"
        deployment = await eventually(
            lambda: obj(cluster, DEPLOYMENTS, "edge-endpoint"), what="the endpoint Deployment"
        )
        assert "--config" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        await eventually(
            lambda: (
                obj(cluster, CHANNELS, "news").raw.get("status", {}).get("previewUrl")
                == "http://edge.media.svc/preview/news/"
            ),
            what="status.previewUrl",
        )
        stalled = await eventually(
            lambda: (
                conditions(cluster, "other", ENDPOINTS).get("Stalled", {}).get("status") == "True"
                and conditions(cluster, "other", ENDPOINTS)
            ),
            what="the endpoint without its Secret stalls",
        )
        assert (
            stalled["Ready"]["reason"] == "SecretMissing"
            and "Secret absent (signing key a) does not exist" in stalled["Ready"]["message"]
        )
        assert not exists(cluster, DEPLOYMENTS, "other-endpoint")
        assert "a2V5" not in json.dumps(obj(cluster, "v1/configmaps", "edge-endpoint-config").raw)

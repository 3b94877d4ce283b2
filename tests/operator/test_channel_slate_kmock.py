"""The manual slate annotation (``kubecast.io/slate``) with the operator under kopf against the
kmock emulator: on and off reach the channel's control record, where its encoders follow them,
with an Event each and no pod restarted; a value other than on or off, and a slate on a
pass-through channel, are refused with a Warning Event and leave the record as it was."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from emulator import CHANNELS, DEPLOYMENTS, as_user, channel_body, eventually, obj, operator, path_of, put_stream_key

from kubecast.operator.handlers.channel_slate import slate_refusal

pytestmark = pytest.mark.timeout(120)

PARTS = ("news-encoder-a", "news-encoder-b", "news-packager")


def slate(store) -> dict | None:
    path = store / "media" / "channels" / "news" / "control.json"
    return json.loads(path.read_text()).get("slate") if path.exists() else None


def events(cluster, reason: str) -> list:
    return [r for r in cluster if r.resource and r.resource.plural == "events" and r.data.get("reason") == reason]


def test_what_the_annotation_may_say():
    live = {"encoding": {"preset": "Default720p"}}
    passed_through = {"encoding": {"preset": "None"}}
    assert slate_refusal("on", live) is None and slate_refusal("off", live) is None
    assert slate_refusal("off", passed_through) is None
    assert "needs live encoding" in (slate_refusal("on", passed_through) or "")
    assert 'takes "on" or "off"' in (slate_refusal("true", live) or "")


async def annotate(cluster, value: str) -> None:
    change = {"metadata": {"annotations": {"kubecast.io/slate": value}}}
    assert await as_user(cluster, "PATCH", path_of(), change) == 200


async def test_the_slate_annotation_switches_the_slate_where_the_encoders_read_it(cluster, tmp_path, monkeypatch):
    store = tmp_path / "store"
    monkeypatch.setenv("KUBECAST_STORE_URL", str(store))
    put_stream_key(cluster)
    body = channel_body()
    body["metadata"]["annotations"] = {"kubecast.io/slate": "on"}
    cluster.objects[CHANNELS, "media", "news"] = body
    async with operator():
        await eventually(lambda: (slate(store) or {}).get("on") is True, what="the slate on in the record")
        asked = datetime.fromisoformat(slate(store)["asked"])
        assert abs(asked - datetime.now(timezone.utc)) < timedelta(seconds=60)
        await eventually(lambda: obj(cluster, DEPLOYMENTS, "news-packager"), what="the Deployments")
        hashes = {name: obj(cluster, DEPLOYMENTS, name).raw["spec"]["template"]["metadata"] for name in PARTS}

        await annotate(cluster, "sometimes")
        refused = await eventually(lambda: events(cluster, "SlateRefused"), what="a SlateRefused event")
        assert refused[0].data["type"] == "Warning" and "'sometimes'" in refused[0].data["message"]
        assert slate(store)["on"] is True, "a refused value changes nothing"

        await annotate(cluster, "off")
        await eventually(lambda: (slate(store) or {}).get("on") is False, what="the slate off in the record")
        assert datetime.fromisoformat(slate(store)["asked"]) >= asked
        assert events(cluster, "SlateOn") and events(cluster, "SlateOff")
        assert {
            name: obj(cluster, DEPLOYMENTS, name).raw["spec"]["template"]["metadata"] for name in PARTS
        } == hashes, "a slate restarts no pod"

"""The manual cue annotation (``kubecast.io/cue``) with the operator under kopf against the kmock
emulator: a start and an end reach the channel's control record, where its encoders follow them,
with an Event each and no pod restarted; a malformed value, a break of 0 s or of hours, and an id
used before are refused with a Warning Event and a metric, once each, and leave the record as it
was."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from emulator import CHANNELS, DEPLOYMENTS, as_user, channel_body, eventually, obj, operator, path_of, put_stream_key

from kubecast.operator.handlers.channel_cue import parse_cue
from kubecast.operator.handlers.channel_requests import REFUSED, Refused

pytestmark = pytest.mark.timeout(120)

PARTS = ("news-encoder-a", "news-encoder-b", "news-packager")


def cues(store) -> list:
    path = store / "media" / "channels" / "news" / "control.json"
    return json.loads(path.read_text()).get("cues", []) if path.exists() else []


def events(cluster, reason: str) -> list:
    return [r for r in cluster if r.resource and r.resource.plural == "events" and r.data.get("reason") == reason]


def refused(reason: str) -> float:
    return REFUSED.labels("kubecast.io/cue", reason)._value.get()


def test_what_the_annotation_may_say():
    assert parse_cue("7/30") == (7, 30.0)
    assert parse_cue("7/12.5") == (7, 12.5)
    assert parse_cue("4294967295/end") == (4294967295, None)
    for value in ("30", "a/30", "7/", "7/-3", "7/30s", "7/end/1", "", "7/1e3"):
        with pytest.raises(Refused) as error:
            parse_cue(value)
        assert '"<id>/<seconds>"' in str(error.value), value


async def annotate(cluster, value: str) -> None:
    change = {"metadata": {"annotations": {"kubecast.io/cue": value}}}
    assert await as_user(cluster, "PATCH", path_of(), change) == 200


async def test_the_cue_annotation_puts_breaks_where_the_encoders_read_them(cluster, tmp_path, monkeypatch):
    store = tmp_path / "store"
    monkeypatch.setenv("KUBECAST_STORE_URL", str(store))
    put_stream_key(cluster)
    body = channel_body()
    body["metadata"]["annotations"] = {"kubecast.io/cue": "1001/30"}
    cluster.objects[CHANNELS, "media", "news"] = body
    before = {reason: refused(reason) for reason in ("value", "duration", "repeated")}
    async with operator():
        await eventually(lambda: len(cues(store)) == 1, what="the break in the record")
        (start,) = cues(store)
        assert (start["eventId"], start["out"], start["durationMs"]) == (1001, True, 30_000)
        assert abs(datetime.fromisoformat(start["asked"]) - datetime.now(timezone.utc)) < timedelta(seconds=60)
        await eventually(lambda: events(cluster, "CueOut"), what="a CueOut event")
        await eventually(lambda: obj(cluster, DEPLOYMENTS, "news-packager"), what="the Deployments")
        hashes = {name: obj(cluster, DEPLOYMENTS, name).raw["spec"]["template"]["metadata"] for name in PARTS}

        for value, reason, says in (
            ("soon", "value", "'soon'"),
            ("1002/0", "duration", "1 to 3600 seconds"),
            ("1002/7200", "duration", "1 to 3600 seconds"),
            ("1001/45", "repeated", "already used"),
        ):
            await annotate(cluster, value)
            await eventually(
                lambda says=says: [e for e in events(cluster, "CueRefused") if says in e.data["message"]],
                what=f"a CueRefused event for {value}",
            )
            assert refused(reason) > before[reason], value
        warnings = events(cluster, "CueRefused")
        assert all(e.data["type"] == "Warning" for e in warnings)
        assert cues(store) == [start], "a refused value changes nothing"

        await annotate(cluster, "1001/end")
        await eventually(lambda: len(cues(store)) == 2, what="the end of the break in the record")
        assert (cues(store)[1]["eventId"], cues(store)[1]["out"]) == (1001, False)
        await eventually(lambda: events(cluster, "CueIn"), what="a CueIn event")
        assert len(events(cluster, "CueRefused")) == len(warnings), "each refusal once"
        assert {
            name: obj(cluster, DEPLOYMENTS, name).raw["spec"]["template"]["metadata"] for name in PARTS
        } == hashes, "a cue restarts no pod"

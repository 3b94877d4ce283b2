"""When a Channel's Deployments count as rolled out, when encoder B may follow A, and what the
Channel's Reconciling says meanwhile (pure: rollout.py and aggregate_channel)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kubecast.api.loader import load_text
from kubecast.operator.builders import build_channel_children
from kubecast.operator.rollout import DeploymentState, newer, not_rolled_out, second_may_roll, wanted_hashes
from kubecast.operator.settings import OperatorSettings
from kubecast.operator.status import aggregate_channel

NOW = datetime(2026, 1, 1, tzinfo=UTC)
CHANNEL = """
apiVersion: kubecast.io/v1alpha1
kind: Channel
metadata: {name: news}
spec:
  encoding: {preset: Custom, renditions: [{name: hi, width: 1280, height: 720, bitrate: 3000000}]}
"""


def deployment(
    spec_hash: str, *, generation: int = 2, observed: int = 2, replicas: int = 1, updated: int = 1, ready: int = 1
) -> DeploymentState:
    return DeploymentState.of(
        {
            "metadata": {"generation": generation},
            "spec": {"replicas": 1, "template": {"metadata": {"annotations": {"kubecast.io/spec-hash": spec_hash}}}},
            "status": {
                "observedGeneration": observed,
                "replicas": replicas,
                "updatedReplicas": updated,
                "readyReplicas": ready,
            },
        }
    )


def test_a_deployment_has_rolled_out_only_once_its_controller_has_acted_on_the_new_template() -> None:
    assert deployment("new").rolled_out("new")
    assert not deployment("old").rolled_out("new"), "another template"
    assert not deployment("new", observed=1).rolled_out("new"), "the status still describes the previous template"
    assert deployment("new", observed=1).serving, "yet the old pod serves"
    assert not deployment("new", ready=0).rolled_out("new") and not deployment("new", ready=0).serving
    assert not deployment("new", replicas=2).rolled_out("new"), "an old pod is still there"
    assert not_rolled_out({"a": "new", "b": "new"}, {"a": deployment("new"), "b": deployment("old")}) == ["b"]
    assert not_rolled_out({"a": "new"}, {}) == ["a"], "not made yet"


def test_b_follows_only_once_a_runs_the_new_spec_and_is_ready() -> None:
    assert not second_may_roll("a2", "b2", deployment("a2", observed=1), deployment("b1"))
    assert not second_may_roll("a2", "b2", deployment("a2", ready=0), deployment("b1"))
    assert not second_may_roll("a2", "b2", None, deployment("b1"))
    assert second_may_roll("a2", "b2", deployment("a2"), deployment("b1"))
    assert second_may_roll("a2", "b2", deployment("a1"), deployment("b2")), (
        "B already has it: a re-apply changes nothing"
    )
    assert second_may_roll("a2", "b2", None, None), "B does not exist yet"


def test_the_later_view_of_a_deployment_wins() -> None:
    applied, event = deployment("new", generation=2, observed=1), deployment("new", generation=2, observed=2)
    assert newer(applied, event) is event and newer(event, applied) is event
    assert newer(applied, None) is applied and newer(None, event) is event


def test_the_spec_hash_covers_the_pod_template_so_a_new_image_is_a_new_spec() -> None:
    channel = load_text(CHANNEL).channels["news"]
    before = wanted_hashes(build_channel_children(channel, uid="u", namespace="media", settings=OperatorSettings()))
    again = wanted_hashes(build_channel_children(channel, uid="u", namespace="media", settings=OperatorSettings()))
    image = wanted_hashes(
        build_channel_children(
            channel, uid="u", namespace="media", settings=OperatorSettings(encoder_image="encoder:2")
        )
    )
    assert set(before) == {"news-encoder-a", "news-encoder-b", "news-packager"} and before == again
    assert image["news-encoder-a"] != before["news-encoder-a"] and image["news-packager"] == before["news-packager"]


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_reconciling_stays_true_while_encoder_b_runs_the_old_spec() -> None:
    channel = load_text(CHANNEL).channels["news"]
    wanted = {"news-encoder-a": "a2", "news-encoder-b": "b2", "news-packager": "p2"}
    rolled = {"news-encoder-a": deployment("a2"), "news-encoder-b": deployment("b2"), "news-packager": deployment("p2")}
    done = aggregate_channel(
        channel, generation=2, deployments=rolled, services={}, secret_error=None, previous=None, now=NOW, wanted=wanted
    )
    assert conditions(done)["Reconciling"] == ("False", "Reconciled")
    old_b = {**rolled, "news-encoder-b": deployment("b1", generation=1, observed=1)}
    rolling = aggregate_channel(
        channel, generation=2, deployments=old_b, services={}, secret_error=None, previous=None, now=NOW, wanted=wanted
    )
    assert conditions(rolling) == {
        "Ready": ("True", "Redundant"),
        "Reconciling": ("True", "RollingOut"),
        "Stalled": ("False", "Reconciled"),
    }
    assert (
        next(c for c in rolling["conditions"] if c["type"] == "Reconciling")["message"]
        == "not yet running the current spec: news-encoder-b"
    )
    unseen = {**rolled, "news-encoder-b": deployment("b2", observed=1)}
    status = aggregate_channel(
        channel, generation=2, deployments=unseen, services={}, secret_error=None, previous=None, now=NOW, wanted=wanted
    )
    assert conditions(status)["Reconciling"] == ("True", "RollingOut"), (
        "B's controller has not acted on the new template"
    )


def test_only_what_the_pods_read_rolls_them() -> None:
    """The encoder and packager pods read their config files at start: a new ladder rolls them; the
    preview's allow-list (the endpoint enforces it) and the deletion policy (the operator's) must not."""

    def hashes(extra: str) -> dict[str, str]:
        channel = load_text(CHANNEL + extra).channels["news"]
        return wanted_hashes(build_channel_children(channel, uid="u", namespace="media", settings=OperatorSettings()))

    plain = hashes("")
    assert hashes("  preview: {allowedIps: [10.0.0.0/8]}\n") == plain
    assert hashes("  deletionPolicy: Delete\n") == plain
    ladder = hashes("  segmentDuration: 4\n")
    assert all(ladder[name] != plain[name] for name in plain), (ladder, plain)

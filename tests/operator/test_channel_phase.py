"""A Channel's phase and its conditions as it starts, runs, stops and is stopped (pure), and
what the Argo CD health check makes of each."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from test_helm import health

from kubecast.api import load_text
from kubecast.operator.rollout import DeploymentState
from kubecast.operator.status import ReadyEvent, aggregate_channel, initial_conditions, ready_event

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
PARTS = ("news-encoder-a", "news-encoder-b", "news-packager")


def channel(state: str):
    text = f"apiVersion: kubecast.io/v1alpha1\nkind: Channel\nmetadata: {{name: news}}\nspec: {{state: {state}}}\n"
    return load_text(text).channels["news"]


def deployment(*, desired: int, pods: int, ready: int, observed: bool = True) -> DeploymentState:
    return DeploymentState.of(
        {
            "metadata": {"generation": 2},
            "spec": {"replicas": desired},
            "status": {
                "observedGeneration": 2 if observed else 1,
                "replicas": pods,
                "updatedReplicas": pods,
                "readyReplicas": ready,
            },
        }
    )


RUNNING = dict.fromkeys(PARTS, deployment(desired=1, pods=1, ready=1))
SCALED_DOWN = dict.fromkeys(PARTS, deployment(desired=0, pods=0, ready=0))


@pytest.mark.parametrize(
    ("state", "deployments", "phase", "ready", "reconciling", "argo"),
    [
        ("Running", {}, "Starting", ("False", "Starting"), "True", "Progressing"),
        ("Running", RUNNING, "Running", ("True", "Redundant"), "False", "Healthy"),
        ("Stopped", RUNNING, "Stopping", ("False", "Stopped"), "True", "Progressing"),
        # the zero is written, its controller has not acted on it yet
        (
            "Stopped",
            dict.fromkeys(PARTS, deployment(desired=0, pods=0, ready=0, observed=False)),
            "Stopping",
            None,
            "True",
            "Progressing",
        ),
        (
            "Stopped",
            {**SCALED_DOWN, "news-packager": deployment(desired=0, pods=1, ready=0)},
            "Stopping",
            None,
            "True",
            "Progressing",
        ),
        ("Stopped", SCALED_DOWN, "Stopped", ("False", "Stopped"), "False", "Suspended"),
        ("Stopped", {}, "Stopped", ("False", "Stopped"), "False", "Suspended"),  # stopped from its creation
    ],
)
def test_phase_and_conditions(state, deployments, phase, ready, reconciling, argo):
    status = aggregate_channel(
        channel(state), generation=2, deployments=deployments, services={}, secret_error=None, previous=None, now=NOW
    )
    conditions = {c["type"]: c for c in status["conditions"]}
    assert status["phase"] == phase
    if ready is not None:
        assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == ready
    assert conditions["Reconciling"]["status"] == reconciling
    assert conditions["Stalled"]["status"] == "False"
    assert health({"metadata": {"name": "news", "generation": 2}, "status": status})["status"] == argo


def test_stopping_names_what_still_runs():
    status = aggregate_channel(
        channel("Stopped"),
        generation=2,
        deployments={**SCALED_DOWN, "news-encoder-b": deployment(desired=0, pods=1, ready=1)},
        services={},
        secret_error=None,
        previous=None,
        now=NOW,
    )
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["message"] == "channel news is stopped: start it to publish (stopping: encoder B still running)"


def test_a_stopped_channel_says_why_its_publishers_are_refused_as_the_ingest_does():
    """On a cluster no ingest pod is left to refuse a publisher with a reason: the status gives
    the reason the ingest gives locally (its RTMP error, HTTP 403 body and log line)."""
    from kubecast.ingest.publication import ChannelStopped

    status = aggregate_channel(
        channel("Stopped"),
        generation=2,
        deployments=SCALED_DOWN,
        services={},
        secret_error=None,
        previous=None,
        now=NOW,
    )
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["message"].startswith(str(ChannelStopped("news")) + " (")
    assert str(ChannelStopped("news")) == "channel news is stopped: start it to publish"
    assert health({"metadata": {"name": "news", "generation": 2}, "status": status}) == {
        "status": "Suspended",
        "message": ready["message"],
    }


def test_a_missing_secret_stalls_a_stopped_channel_too():
    status = aggregate_channel(
        channel("Stopped"),
        generation=2,
        deployments={},
        services={},
        secret_error="Secret x is missing",
        previous=None,
        now=NOW,
    )
    assert {c["type"]: c["status"] for c in status["conditions"]}["Stalled"] == "True"
    assert status["phase"] == "Stopped"


def timeline(state: str, newest: int | None):
    from datetime import timedelta

    from kubecast.media.timeline import Timeline, TimelineSegment, TimelineTrack
    from kubecast.media.tracks import TrackInfo

    info = TrackInfo(id="video", kind="video", codecs="avc1.64001f", bandwidth=1, timescale=1000, init="i.mp4")
    rows = [] if newest is None else [TimelineSegment(newest, newest * 2000, 2000, 1, "A")]
    return Timeline(
        channel="news",
        state=state,
        updated=NOW,
        availability_start_time=NOW - timedelta(hours=1),
        segment_duration_ms=2000,
        window_ms=60000,
        tracks=[TimelineTrack(info=info, init_source="A", segments=rows)],
    )


def ready_since(minutes: int) -> dict:
    from datetime import timedelta

    at = (NOW - timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"conditions": [{"type": "Ready", "status": "True", "reason": "Redundant", "lastTransitionTime": at}]}


def idle_channel(timeout: str | None, state: str = "Running"):
    spec = f"{{state: {state}" + (f", idleTimeout: {timeout}}}" if timeout else "}")
    text = f"apiVersion: kubecast.io/v1alpha1\nkind: Channel\nmetadata: {{name: news}}\nspec: {spec}\n"
    return load_text(text).channels["news"]


@pytest.mark.parametrize(
    ("timeout", "status", "stream", "stops"),
    [
        (None, ready_since(60), None, False),  # off by default
        ("PT10M", ready_since(60), None, True),  # running an hour, never a contribution
        ("PT10M", ready_since(5), None, False),  # started 5 minutes ago
        ("PT10M", {"conditions": []}, None, False),  # not running yet
        ("PT10M", ready_since(60), ("live", 1790), False),  # a live contribution
        ("PT10M", ready_since(60), ("waiting", 1400), True),  # its last segment ended 13 minutes ago
        ("PT10M", ready_since(60), ("waiting", 1790), False),  # ... 18 s ago
    ],
)
def test_idle_stop(timeout, status, stream, stops):
    from kubecast.operator.status.phase import idle_stop

    message = idle_stop(idle_channel(timeout), status=status, timeline=timeline(*stream) if stream else None, now=NOW)
    assert (message is not None) == stops
    if stops:
        assert "spec.idleTimeout PT10M" in message


def test_a_stopped_channel_is_never_stopped_for_idleness():
    from kubecast.operator.status.phase import idle_stop

    assert idle_stop(idle_channel("PT1S", "Stopped"), status=ready_since(60), timeline=None, now=NOW) is None


def test_an_event_says_that_ready_changed_and_never_that_a_new_channel_is_starting():
    def status(previous, deployments, secret_error=None):
        return aggregate_channel(
            channel("Running"),
            generation=1,
            deployments=deployments,
            services={},
            secret_error=secret_error,
            previous=previous,
            now=NOW,
        )

    first_sight = {"conditions": initial_conditions(1, NOW)}
    assert ready_event(None, first_sight) is None  # nothing judged yet
    starting = status(first_sight, {})
    assert ready_event(first_sight, starting) is None  # created, so starting: no news
    assert ready_event(None, starting) is None
    redundant = status(starting, RUNNING)
    assert ready_event(starting, redundant) == ReadyEvent(
        "Normal", "Redundant", "both encoders and the packager are ready", "True"
    )
    assert ready_event(redundant, status(redundant, RUNNING)) is None  # nothing changed
    lost = status(redundant, {})
    assert ready_event(redundant, lost) == ReadyEvent(
        "Warning", "Starting", "waiting for encoder A, encoder B, packager", "False"
    )
    missing = status(first_sight, {}, secret_error="Secret key is missing")
    assert ready_event(first_sight, missing) == ReadyEvent("Warning", "SecretMissing", "Secret key is missing", "False")

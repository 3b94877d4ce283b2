"""A Channel's refresh applies only the children that changed or went away (refresh.py)."""

from __future__ import annotations

from kubecast.api import load_text
from kubecast.operator.builders import build_channel_children
from kubecast.operator.refresh import child_key, fingerprint, needs_apply
from kubecast.operator.settings import OperatorSettings

CHANNEL = """
apiVersion: kubecast.io/v1alpha1
kind: Channel
metadata: {name: news}
spec:
  ingest: {streamKeySecretRef: {name: key, key: streamKey}}
  encoding: {preset: Default720p}
"""


def children(settings: OperatorSettings) -> list[dict]:
    channel = load_text(CHANNEL).channels["news"]
    return build_channel_children(channel, uid="uid-news", namespace="media", settings=settings)


def test_a_refresh_applies_what_changed_or_went_away_and_everything_on_a_full_round():
    built = children(OperatorSettings())
    applied = {child_key(child): fingerprint(child) for child in built}
    watched = {child_key(child) for child in built if child["kind"] in ("Deployment", "Service")}
    assert not [c for c in built if needs_apply(c, applied=applied, watched=watched, full=False)]
    assert all(needs_apply(c, applied=applied, watched=watched, full=True) for c in built)
    # Another encoder image: the Deployments differ from what was applied, nothing else does.
    newer = children(OperatorSettings(encoder_image="registry.example/encoder:2"))
    assert {child_key(c) for c in newer if needs_apply(c, applied=applied, watched=watched, full=False)} == {
        ("Deployment", "news-encoder-a"),
        ("Deployment", "news-encoder-b"),
    }
    # A watched child the watch no longer has is applied again; an unwatched one waits for a full round.
    gone = {("Deployment", "news-packager"), ("Service", "news-ingest-b")}
    assert {child_key(c) for c in built if needs_apply(c, applied=applied, watched=watched - gone, full=False)} == gone

"""The operator's kopf storages give kopf the essences its own would, with less copying
(kubecast/operator/essence.py)."""

from __future__ import annotations

import copy
import json

import kopf
import pytest

import kubecast.operator.handlers  # noqa: F401 - registers every handler
from kubecast.operator.essence import ESSENCE_GROUP, OwnProgressStorage, SpecEssenceStorage

PREFIX, KEY = "kubecast.io", "last-handled-configuration"


def channel(**extra: object) -> dict:
    return {
        "apiVersion": "kubecast.io/v1alpha1",
        "kind": "Channel",
        "metadata": {
            "name": "news",
            "namespace": "media",
            "uid": "u1",
            "resourceVersion": "17",
            "generation": 3,
            "labels": {"team": "sport"},
            "annotations": {
                "note": "kept",
                "kubecast.io/reconcile": json.dumps({"started": "2026-01-01T00:00:00"}),
                f"kubecast.io/{KEY}": '{"spec":{}}\n',
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
                "other.kopf.zalando.org/last-handled-configuration": "{}",
            },
            "finalizers": ["kubecast.io/media"],
            "ownerReferences": [{"kind": "Team", "name": "t", "uid": "t1"}],
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {"f:encoding": {}}}}],
        },
        "spec": {"encoding": {"preset": "Default720p"}, "ingest": {"protocols": ["RTMP"]}},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
        **extra,
    }


@pytest.mark.parametrize(
    "body, extra_fields",
    [
        (channel(), []),
        (channel(), [("spec",)]),
        (channel(), [("spec", "encoding")]),
        (channel(), [("status", "phase")]),
        (channel(), [("metadata", "finalizers")]),
        (channel(data={"x": 1}), [("spec",)]),
        ({"apiVersion": "kubecast.io/v1alpha1", "kind": "Program", "metadata": {"name": "p"}}, []),
    ],
)
def test_the_essence_is_kopfs_own_and_the_body_is_left_alone(body, extra_fields):
    ours = (SpecEssenceStorage(prefix=PREFIX, key=KEY), OwnProgressStorage(prefix=PREFIX))
    kopfs = (kopf.AnnotationsDiffBaseStorage(prefix=PREFIX, key=KEY), kopf.AnnotationsProgressStorage(prefix=PREFIX))
    untouched = copy.deepcopy(body)
    essences = []
    for diffbase, progress in (ours, kopfs):
        essence = diffbase.build(body=kopf.Body(body), extra_fields=extra_fields)
        essences.append(progress.clear(essence=essence))
    assert essences[0] == essences[1]
    assert body == untouched
    essences[0].setdefault("spec", {})["changed"] = True  # kopf may keep and change what it gets
    assert body == untouched


def test_kinds_outside_the_group_get_no_essence_and_have_no_handler_that_would_compare_one():
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 1}}
    assert SpecEssenceStorage(prefix=PREFIX, key=KEY).build(body=kopf.Body(deployment)) == {}
    registry = kopf.get_default_registry()
    compared = [*registry._changing._handlers, *registry._spawning._handlers]  # noqa: SLF001
    assert compared, "the handlers are registered"
    for handler in compared:
        selector = handler.selector
        assert selector is not None and f"{selector.group}/" == ESSENCE_GROUP, handler.id

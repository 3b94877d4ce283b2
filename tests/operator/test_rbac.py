"""The chart's ClusterRole is exactly what the operator uses: every request the operator sent
to the emulated clusters of this session (recorded by conftest.py's ``cluster`` fixture) is
granted, and every verb granted was used.  It runs after the kmock tests (file order)."""

from __future__ import annotations

import pytest
from test_helm import render


def granted() -> set[tuple[str, str, str]]:
    role = next(d for d in render({"replicaCount": 2}) if d["kind"] == "ClusterRole")
    return {
        (verb, group, resource)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


# kopf lists and watches the namespaces (to serve only existing ones); the emulator answers
# /api/v1/namespaces (with conftest.py's path fix) but leaves those requests out of its log.
UNLOGGED = {("list", "", "namespaces"), ("watch", "", "namespaces")}


def test_the_cluster_role_is_what_the_operator_uses(sent_to_cluster):
    if not sent_to_cluster:
        pytest.skip("run with the kmock tests of tests/operator: they record what the operator sends")
    unused = granted() - sent_to_cluster - UNLOGGED
    denied = sent_to_cluster - granted()
    assert not denied, f"the operator needs, and the chart does not grant: {sorted(denied)}"
    assert not unused, f"the chart grants, and the operator never used: {sorted(unused)}"

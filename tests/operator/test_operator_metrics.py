"""The operator's own metrics: every reconcile counted by outcome and timed, API errors by code."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from kubecast.operator.api import ApiError
from kubecast.operator.metrics import observed


def sample(name: str, labels: dict) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_reconciles_are_counted_timed_and_their_api_errors_kept():
    calls = []

    @observed("Test")
    async def reconcile(*, outcome: str, **_):
        calls.append(outcome)
        if outcome == "api":
            raise ApiError(status=409, reason="Conflict")
        if outcome == "bug":
            raise ValueError("bug")
        return "done"

    before = {
        key: sample("kubecast_operator_reconciles_total", {"kind": "Test", "outcome": key}) for key in ("ok", "error")
    }
    conflicts = sample("kubecast_operator_api_errors_total", {"code": "409"})
    timed = sample("kubecast_operator_reconcile_duration_seconds_count", {"kind": "Test"})
    assert await reconcile(outcome="ok", logger=None) == "done"
    with pytest.raises(ApiError):  # kopf must still see the error, to retry
        await reconcile(outcome="api")
    with pytest.raises(ValueError):
        await reconcile(outcome="bug")
    assert calls == ["ok", "api", "bug"] and reconcile.__name__ == "reconcile"
    assert sample("kubecast_operator_reconciles_total", {"kind": "Test", "outcome": "ok"}) == before["ok"] + 1
    assert sample("kubecast_operator_reconciles_total", {"kind": "Test", "outcome": "error"}) == before["error"] + 2
    assert sample("kubecast_operator_api_errors_total", {"code": "409"}) == conflicts + 1
    assert sample("kubecast_operator_reconcile_duration_seconds_count", {"kind": "Test"}) == timed + 3


def test_the_reconcile_handlers_are_observed():
    from kubecast.operator.handlers import channel, endpoint, program

    for handler in (channel.reconcile_channel, endpoint.reconcile_endpoint, program.reconcile_program):
        assert handler.__wrapped__ is not None, handler

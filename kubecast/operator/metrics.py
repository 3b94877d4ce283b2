"""Prometheus metrics of the operator (``kubecast operator --metrics-port``): each reconcile
counted and timed by kind and outcome, and the Kubernetes API errors that failed one."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import Counter, Histogram

from .api import ApiError

RECONCILES = Counter(
    "kubecast_operator_reconciles_total", "Reconciles run, by kind and outcome (ok, error)", ["kind", "outcome"]
)
DURATION = Histogram(
    "kubecast_operator_reconcile_duration_seconds",
    "Wall-clock time of a reconcile",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
API_ERRORS = Counter(
    "kubecast_operator_api_errors_total", "Kubernetes API errors that failed a reconcile, by HTTP status", ["code"]
)


def observed(kind: str) -> Callable[[Callable[..., Awaitable[Any]]], Callable[..., Awaitable[Any]]]:
    """Count and time every run of a reconcile handler; kopf still sees its exceptions (and retries)."""

    def decorate(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(handler)
        async def run(*args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            try:
                result = await handler(*args, **kwargs)
            except ApiError as error:
                API_ERRORS.labels(str(error.status)).inc()
                RECONCILES.labels(kind, "error").inc()
                raise
            except Exception:
                RECONCILES.labels(kind, "error").inc()
                raise
            finally:
                DURATION.labels(kind).observe(time.monotonic() - started)
            RECONCILES.labels(kind, "ok").inc()
            return result

        return run

    return decorate

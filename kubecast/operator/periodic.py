"""Periodic work per object without a finalizer.

kopf's timers and daemons put a finalizer on every object they serve: kopf stops them when it
sees ``deletionTimestamp``, and without a finalizer an object can vanish before it does (the
watch then says DELETED, which stops nothing), leaving a task behind.  That finalizer makes every
``kubectl delete`` of a Channel, Program or StreamingEndpoint wait for a running operator: with
the operator uninstalled or crash-looping, deletion hangs.

Nothing the periodic handlers do needs to happen before an object goes (they refresh status and
re-apply children that the garbage collector removes with their owner), so ``every`` registers a
kopf daemon whose handler does not require the finalizer and which ends itself instead: an
``on.event`` handler marks the object gone in its per-object memo when the watch reports it
DELETED, and the daemon returns at once.  kopf still stops the daemon on operator exit, on a
peering pause and when it does see a deletion in progress (a Channel that keeps its own
finalizer for ``deletionPolicy: Delete``).

kopf 1.45 offers no option for this; the registry entry is rewritten with ``requires_finalizer``
off (a frozen dataclass, replaced as a whole).  A kopf upgrade that changes this is caught by
tests/operator/test_operator_lifecycle.py (deletion with the operator down, a program deleted while
it runs).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Awaitable, Callable
from typing import Any

import kopf

GONE = "kubecast.gone"  # per-object memo key: an asyncio.Event set when the watch says DELETED
_PLURALS: set[tuple[str, str, str]] = set()


def _gone(memo: kopf.Memo) -> asyncio.Event:
    if GONE not in memo:
        memo[GONE] = asyncio.Event()
    gone: asyncio.Event = memo[GONE]
    return gone


async def _sleep(seconds: float, stopped: kopf.DaemonStopped, gone: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(stopped.wait()), asyncio.ensure_future(gone.wait())]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


def _watch_deletions(group: str, version: str, plural: str) -> None:
    if (group, version, plural) in _PLURALS:
        return
    _PLURALS.add((group, version, plural))

    @kopf.on.event(group, version, plural, id="gone")
    async def mark_gone(
        event: kopf.RawEvent, memo: kopf.Memo, **_: Any
    ) -> None:  # a coroutine: kopf runs no thread for it
        if event.get("type") == "DELETED":
            _gone(memo).set()


# Seconds, or a function of the object's memo giving them: looked at again every RECHECK_SECONDS
# while waiting, so an object whose interval shortens (a Channel now waiting for a Secret) is not
# left in a long sleep.
Interval = float | Callable[[kopf.Memo], float]
RECHECK_SECONDS = 5.0


async def _wait(interval: Interval, memo: kopf.Memo, stopped: kopf.DaemonStopped, gone: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not stopped and not gone.is_set():
        left = (interval(memo) if callable(interval) else interval) - (loop.time() - started)
        if left <= 0:
            return
        await _sleep(min(left, RECHECK_SECONDS) if callable(interval) else left, stopped, gone)


def every(
    group: str,
    version: str,
    plural: str,
    *,
    id: str,
    interval: Interval,
    initial_delay: Interval = 0.0,
) -> Callable[[Callable[..., Awaitable[None]]], Callable[..., Awaitable[None]]]:
    """Call the decorated coroutine every ``interval`` seconds for each object of the resource,
    as kopf calls a timer (same kwargs, and ``periodic=True``; ``patch.status`` is sent after each
    call), with no finalizer."""
    _watch_deletions(group, version, plural)

    def decorator(fn: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        @functools.wraps(fn)
        async def daemon(
            stopped: kopf.DaemonStopped,
            memo: kopf.Memo,
            resource: kopf.Resource,
            body: kopf.Body,
            logger: kopf.Logger,
            patch: kopf.Patch,
            **kwargs: Any,
        ) -> None:
            del patch  # kopf's applies only when a daemon ends: each round gets its own
            from .handlers.common import api  # the one client, logged in by kopf

            gone = _gone(memo)
            await _wait(initial_delay, memo, stopped, gone)
            while not stopped and not gone.is_set():
                patch = kopf.Patch()
                try:
                    await fn(
                        stopped=stopped,
                        memo=memo,
                        resource=resource,
                        body=body,
                        logger=logger,
                        patch=patch,
                        periodic=True,
                        **kwargs,
                    )
                    if patch.get("status") and not gone.is_set():
                        meta = body["metadata"]
                        await api().patch_status(
                            f"{group}/{version}", body["kind"], meta["namespace"], meta["name"], dict(patch["status"])
                        )
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # noqa: BLE001 - one failed round must not end the object's periodic work
                    logger.warning("%s failed: %s; will try again", id, error)
                await _wait(interval, memo, stopped, gone)

        kopf.daemon(group, version, plural, id=id)(daemon)
        registry = kopf.get_default_registry()
        spawning = registry._spawning  # noqa: SLF001 - see the module docstring
        spawning._handlers = [
            dataclasses.replace(h, requires_finalizer=False) if h.fn is daemon else h for h in spawning._handlers
        ]  # noqa: SLF001
        return fn

    return decorator

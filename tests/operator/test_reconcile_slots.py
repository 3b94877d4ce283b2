"""Reconciles run a few at a time (RECONCILE_SLOTS): at 1000 Channels kopf starts one per object
at once, and what they all held at that peak stayed in the operator's memory."""

from __future__ import annotations

import asyncio

import kopf

from kubecast.operator.handlers import common
from kubecast.operator.handlers.channel import reconcile_channel
from kubecast.operator.handlers.endpoint import reconcile_endpoint
from kubecast.operator.handlers.program import reconcile_program


async def test_no_more_reconciles_run_at_once_than_the_operator_has_slots():
    memo = kopf.Memo()
    common.configure(settings=kopf.OperatorSettings(), memo=memo)
    slots = memo[common.SLOTS_MEMO]
    running, most, done = 0, 0, []

    @common.one_slot
    async def reconcile(*, name: str, memo: kopf.Memo) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.001)
        running -= 1
        done.append(name)

    # every object's memo is a shallow copy of the operator's, so all share the one semaphore
    await asyncio.gather(*(reconcile(name=f"ch{i}", memo=kopf.Memo(memo)) for i in range(100)))
    assert len(done) == 100
    assert most == common.RECONCILE_SLOTS == slots._value  # noqa: SLF001 - all slots given back


async def test_without_the_operators_memo_a_reconcile_is_not_held():
    @common.one_slot
    async def reconcile(*, memo: kopf.Memo) -> None:
        return None

    await asyncio.wait_for(reconcile(memo=kopf.Memo()), 1)


def test_every_kinds_reconcile_takes_a_slot():
    for handler in (reconcile_channel, reconcile_endpoint, reconcile_program):
        assert handler.__code__ is common.one_slot(handler).__code__, handler.__name__

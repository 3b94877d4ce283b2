"""The one-line-per-interval rule every retrying component logs its outages by."""

from __future__ import annotations

from kubecast.outage import Outage, left_out_note


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_first_failure_is_logged_and_the_next_ones_counted_until_the_interval_passes():
    clock = Clock()
    outage = Outage(every=10.0, clock=clock)
    assert outage.failed() == 0
    for _ in range(5):
        clock.now += 1.0
        assert outage.failed() is None
    clock.now += 5.0
    assert outage.failed() == 5  # the line now due says how many it left out
    assert outage.failed() is None


def test_a_success_ends_the_outage_with_its_length_and_the_next_outage_is_logged_at_once():
    clock = Clock()
    outage = Outage(every=10.0, clock=clock)
    assert outage.ended() is None  # nothing failed: nothing to say
    outage.failed()
    clock.now += 3.5
    assert outage.ended() == 3.5
    assert outage.ended() is None
    clock.now += 1.0
    assert outage.failed() == 0  # a new outage: logged although the last line is 4.5 s old


def test_the_note_names_the_failures_left_out_only_when_there_are_some():
    assert left_out_note(0) == ""
    assert "7 more failures" in left_out_note(7)

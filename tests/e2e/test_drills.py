"""The freeze drill (``freeze_drill.py``) with 10 s freezes: per fault, a viewer must not notice.

``KUBECAST_DRILL_FREEZE`` sets the freeze length; ``bench/drills.py`` runs it with 30 s.
"""

from __future__ import annotations

import os

import pytest
from freeze_drill import (
    FAULTS,
    RENDITIONS,
    SEGMENT_SECONDS,
    program_growth,
    run_drill,
    steps_back,
    what_a_viewer_noticed,
)

pytestmark = [pytest.mark.e2e, pytest.mark.drill]


@pytest.fixture(scope="module")
def drill(tmp_path_factory):
    return run_drill(tmp_path_factory.mktemp("drill"), float(os.environ.get("KUBECAST_DRILL_FREEZE", "10")))


@pytest.mark.parametrize("fault", [name for name, _, _ in FAULTS])
def test_a_viewer_does_not_notice(drill, fault):
    outcome = drill.outcomes[fault]
    assert outcome.stall <= SEGMENT_SECONDS, f"{fault}: the player stalled {outcome.stall:.2f} s (seed {drill.seed})"
    assert what_a_viewer_noticed(drill, fault) == [], f"{fault} (seed {drill.seed}): {outcome}"


def test_no_discontinuity_and_no_failed_request(drill):
    assert {r: s.discontinuities for r, s in drill.served.items()} == dict.fromkeys(RENDITIONS, 0)
    assert drill.poll.failures == [], drill.poll.failures


def test_a_programs_window_goes_on_while_the_packager_is_frozen(drill):
    """The endpoints carry a running program's DVR window on as they carry the live timeline on
    (they notice a stale timeline after 3 s, so about 3 s of the freeze pass before it grows)."""
    grew = program_growth(drill)
    assert grew >= drill.freeze_seconds / SEGMENT_SECONDS - 3, f"the program grew by {grew} segments"
    assert drill.program.failures == [], drill.program.failures
    assert steps_back(drill.program.seen, drill) == [], f"the program's playlist went back (seed {drill.seed})"

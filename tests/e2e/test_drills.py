"""The freeze drill (``freeze_drill.py``) with 10 s freezes: per fault, a viewer must not notice.

``KUBECAST_DRILL_FREEZE`` sets the freeze length; ``bench/drills.py`` runs it with 30 s.
"""

from __future__ import annotations

import os

import pytest
from freeze_drill import FAULTS, RENDITIONS, SEGMENT_SECONDS, run_drill, what_a_viewer_noticed

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

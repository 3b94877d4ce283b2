"""The freeze drill with long faults: every data-plane process frozen (or killed) for 30 s.

    python bench/drills.py [--freeze 30] [--seed N]

One dual-push channel (ffmpeg's ``tee``, each output through its own ``fifo``, as the README
gives it), two endpoint replicas behind haproxy, hls.js playing through haproxy in headless
Chromium; in turn, at seeded random moments: ingest A, ingest B, ingest A killed and started
again, encoder A, encoder B, the packager, one endpoint replica, and one endpoint replica killed
and started again (``tests/e2e/freeze_drill.py``; the CI test runs the same with 10 s).
Prints, per fault, the player's longest stall beside the segment duration it must stay within,
and anything else a viewer could have noticed (player errors, missing segments, ``tfdt`` jumps,
replicas serving different bytes, a playlist going back), and how far a running Program's DVR
window grew while the packager was frozen.  Takes about 7 minutes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "e2e")]

from freeze_drill import SEGMENT_SECONDS, program_growth, run_drill, what_a_viewer_noticed  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--freeze", type=float, default=30.0, help="seconds each process stays frozen (or dead)")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    if args.seed is not None:
        os.environ["KUBECAST_KILL_SEED"] = str(args.seed)
    with tempfile.TemporaryDirectory(prefix="kubecast-drills-") as workdir:
        drill = run_drill(Path(workdir), args.freeze)

    print(f"\nseed {drill.seed}; each fault {args.freeze:.0f} s; segment duration {SEGMENT_SECONDS} s")
    print(f"{'fault':28} {'longest stall':>14} {'segment':>8}  noticed")
    failed = False
    for name, outcome in drill.outcomes.items():
        noticed = what_a_viewer_noticed(drill, name)
        failed |= bool(noticed) or outcome.stall > SEGMENT_SECONDS
        print(f"{name:28} {outcome.stall:13.2f}s {SEGMENT_SECONDS:7d}s  {'; '.join(noticed) or 'nothing'}")
    discontinuities = {rendition: served.discontinuities for rendition, served in drill.served.items()}
    print(f"discontinuities listed: {discontinuities}; failed playlist reloads: {len(drill.poll.failures)}")
    grew = program_growth(drill)
    print(f"a running program's playlist while the packager was frozen: grew {grew} segments")
    return 1 if failed or any(discontinuities.values()) or drill.poll.failures else 0


if __name__ == "__main__":
    sys.exit(main())

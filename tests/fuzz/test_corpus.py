"""The fuzz targets as a regression test: every committed input (seeds from real captures, and each
input that once crashed a parser) replayed through its target, then a short coverage-guided run of
every target under atheris, which must find nothing.  The long runs are ``bench/fuzz.py``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fuzz_targets import TARGETS

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
BRIEF_RUNS = 500


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_committed_input_is_refused_cleanly_or_accepted(name: str) -> None:
    target = TARGETS[name]
    inputs = sorted(path for path in (CORPUS / name).iterdir() if path.is_file())
    assert inputs, f"target {name} has no committed corpus"
    accepted = 0
    for path in inputs:
        try:
            target.run(path.read_bytes())
            accepted += 1
        except target.declared:
            pass
    # Seeds a parser refuses outright would leave the fuzzer outside the parser: most must pass.
    seeds = [path for path in inputs if not path.name.startswith("crash-")]
    assert accepted >= len(seeds) // 2, f"{name}: only {accepted} of {len(inputs)} inputs got through the parser"


@pytest.mark.timeout(540)  # pytest's default 300 s would cut the run's own 480 s bound short under load
def test_a_brief_coverage_guided_run_of_every_target_finds_nothing(tmp_path: Path) -> None:
    bench = str(HERE.parents[1] / "bench" / "fuzz.py")
    result = subprocess.run(  # its own artifacts folder: a long fuzz run beside it must not share crash files
        # Two at once, for two cores: most of a target's time is its instrumented start-up (~5 s idle).
        [
            sys.executable,
            bench,
            "--runs",
            str(BRIEF_RUNS),
            "--max-seconds",
            "30",
            "--jobs",
            "2",
            "--artifacts",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=480,  # 15 targets: about a minute on two idle cores, four at a load average of 20
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    rows = {
        line.split()[0]: line.split()
        for line in result.stdout.splitlines()
        if line.split() and line.split()[0] in TARGETS
    }
    assert set(rows) == set(TARGETS), result.stdout
    for name, row in rows.items():
        executions, coverage = int(row[1]), int(row[4])
        assert executions >= BRIEF_RUNS, f"{name} ran {executions} inputs"
        assert coverage > 0, f"{name} reaches no kubecast code: {result.stdout}"

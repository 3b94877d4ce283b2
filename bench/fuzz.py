"""Coverage-guided fuzzing of every parser that reads a stranger's bytes (atheris, libFuzzer).

    python bench/fuzz.py [--runs 1000000] [--targets amf0,flv] [--max-seconds 0] [--jobs 1] [--timeout 10]
                         [--rss-mb 2048]

Each target (``tests/fuzz/fuzz_targets.py``) runs in a process of its own for ``--runs``
executions, starting from its committed corpus (``tests/fuzz/corpus/<target>``); inputs the
fuzzer finds are kept in a scratch folder, not in the corpus.  Per target it prints the
executions, the coverage (Python branch edges of kubecast reached) after the seeds and at the
end, the new coverage the mutations found, executions per second, and the crashes (an
exception other than the parser's declared error), hangs (one input running longer than
``--timeout`` s) and out-of-memory inputs (over ``--rss-mb``).  A crashing input is written to
``--artifacts`` and the target stops there, as libFuzzer does.  Coverage that barely moves
from zero means the target never reaches its parser.  Exit status 1 when anything crashed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUZZ = ROOT / "tests" / "fuzz"
TESTS = ROOT / "tests"  # the fixtures the targets share with the tests (timeline_fixtures)
CORPUS = FUZZ / "corpus"

_STATUS = re.compile(r"^#(\d+)\s+(INITED|DONE|pulse|NEW|REDUCE)\s+cov: (\d+)")
_EXECUTED = re.compile(r"stat::number_of_executed_units: (\d+)")


@dataclass
class Outcome:
    target: str
    executions: int = 0
    seeds: int = 0
    coverage_seeds: int = 0
    coverage_end: int = 0
    seconds: float = 0.0
    crashes: int = 0
    hangs: int = 0
    ooms: int = 0
    interrupted: bool = False  # stopped by a signal before its executions were done: not a finding
    artifact: str = ""

    @property
    def new_coverage(self) -> int:
        return self.coverage_end - self.coverage_seeds


def child(target: str, libfuzzer_args: list[str]) -> None:
    """Runs inside the target's own process: instrument kubecast, then hand over to libFuzzer."""
    import logging

    import atheris

    logging.disable(logging.CRITICAL)  # refusals are logged; formatting millions of log lines would be most of the work
    sys.path[:0] = [str(FUZZ), str(TESTS)]
    with atheris.instrument_imports(include=["kubecast"]):
        import fuzz_targets
    fuzz = fuzz_targets.TARGETS[target]
    atheris.Setup([sys.argv[0], *libfuzzer_args], fuzz)
    atheris.Fuzz()


def run_target(target: str, args: argparse.Namespace, scratch: Path) -> Outcome:
    seeds = CORPUS / target
    work = scratch / target
    work.mkdir(parents=True, exist_ok=True)
    artifacts = Path(args.artifacts)
    artifacts.mkdir(parents=True, exist_ok=True)
    libfuzzer = [
        f"-runs={args.runs}",
        f"-timeout={args.timeout}",
        f"-rss_limit_mb={args.rss_mb}",
        "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/{target}-",
        f"-max_len={args.max_len}",
        f"-max_total_time={args.max_seconds}",
        str(work),
        str(seeds),
    ]
    command = [sys.executable, __file__, "--child", target, "--", *libfuzzer]
    started = time.monotonic()
    finished = subprocess.run(command, capture_output=True, text=True, errors="replace", cwd=scratch, check=False)
    outcome = Outcome(
        target,
        seconds=time.monotonic() - started,
        seeds=sum(1 for path in seeds.iterdir() if path.is_file()) if seeds.exists() else 0,
    )
    log = finished.stderr
    for line in log.splitlines():
        if match := _STATUS.match(line):
            if match.group(2) == "INITED":
                outcome.coverage_seeds = int(match.group(3))
            outcome.coverage_end = max(outcome.coverage_end, int(match.group(3)))
            outcome.executions = max(outcome.executions, int(match.group(1)))
        elif match := _EXECUTED.search(line):
            outcome.executions = int(match.group(1))
        elif "Test unit written to " in line:
            outcome.artifact = line.split("Test unit written to ", 1)[1].strip()
    if "libFuzzer: run interrupted" in log:
        outcome.interrupted = True
    elif "ERROR: libFuzzer: timeout" in log or "ALARM: working on the last Unit" in log:
        outcome.hangs = 1
    elif "out-of-memory" in log or "malloc(" in log and "exceeds" in log:
        outcome.ooms = 1
    elif finished.returncode != 0:
        outcome.crashes = 1
    if finished.returncode != 0:
        tail = "\n".join(log.splitlines()[-40:])
        print(
            f"--- {target}: exit status {finished.returncode}, last lines of its log ---\n{tail}\n---", file=sys.stderr
        )
    return outcome


def table(outcomes: list[Outcome]) -> str:
    header = (
        f"{'target':<16} {'executions':>11} {'seeds':>6} {'cov seeds':>10} {'cov end':>8} {'new cov':>8} "
        f"{'exec/s':>7} {'crashes':>8} {'hangs':>6} {'ooms':>5}"
    )
    lines = [header, "-" * len(header)]
    for o in outcomes:
        rate = o.executions / o.seconds if o.seconds else 0.0
        lines.append(
            f"{o.target:<16} {o.executions:>11} {o.seeds:>6} {o.coverage_seeds:>10} {o.coverage_end:>8} "
            f"{o.new_coverage:>8} {rate:>7.0f} {o.crashes:>8} {o.hangs:>6} {o.ooms:>5}"
            + (f"  {o.artifact}" if o.artifact else "")
            + ("  (interrupted)" if o.interrupted else "")
        )
    return "\n".join(lines)


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[4:])
        return 0
    sys.path[:0] = [str(FUZZ), str(TESTS)]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1_000_000, help="executions per target")
    parser.add_argument("--targets", default="", help="comma-separated target names (default: all)")
    parser.add_argument("--max-seconds", type=int, default=0, help="stop a target after this long (0: no limit)")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may run before it counts as a hang")
    parser.add_argument(
        "--rss-mb", type=int, default=2048, help="memory a target may use before it counts as unbounded"
    )
    parser.add_argument("--max-len", type=int, default=8192, help="largest input the fuzzer makes")
    parser.add_argument("--jobs", type=int, default=1, help="targets fuzzed at the same time, one process each")
    parser.add_argument(
        "--artifacts",
        default=str(Path(tempfile.gettempdir()) / "kubecast-fuzz-artifacts"),
        help="where crashing inputs go",
    )
    args = parser.parse_args()
    import fuzz_targets  # only for the names: the targets themselves run instrumented, in their own processes

    names = list(fuzz_targets.TARGETS)
    if args.targets:
        names = args.targets.split(",")
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="kubecast-fuzz-") as scratch, ThreadPoolExecutor(max(1, args.jobs)) as pool:
        running = [pool.submit(run_target, name, args, Path(scratch)) for name in names]
        for future in as_completed(running):
            outcomes.append(future.result())
            print(table(outcomes[-1:]).splitlines()[-1], flush=True)
    outcomes.sort(key=lambda outcome: names.index(outcome.target))
    print(f"\n{table(outcomes)}\n\ncommand: {' '.join([Path(sys.executable).name, *sys.argv])}")
    return 1 if any(o.crashes or o.hangs or o.ooms for o in outcomes) else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())

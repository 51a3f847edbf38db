"""`make unit`: the suite under coverage in two phases, each in the same random order's
seed. First every test that may share the machine, on `--workers N` parallel workers
(pytest-xdist) when N is over 1; then the tests marked alone (tests/conftest.py: ALONE,
and the Docker and browser tiers), one at a time. Then the 15 slowest tests of both.

Other arguments are pytest's, passed to both phases (`-m TIER`, `--randomly-seed=N`, a
path). One worker unless asked (`make unit WORKERS=2`: the first phase's tests wait on
processes, sockets and deadlines about half of their time; docs/contributing.md).
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
from pathlib import Path

SLOWEST = 15
NO_TESTS_COLLECTED = 5  # pytest's exit status when a phase has nothing selected


def _pytest(phase: str, args: list[str], durations: Path, workers: int) -> int:
    parallel = ["-n", str(workers), "--dist", "loadgroup"] if workers > 1 else []
    command = [sys.executable, "-m", "coverage", "run", "-m", "pytest", f"--phase={phase}",
               f"--durations-file={durations}", *parallel, *args]  # fmt: skip
    print(f"\n== {phase} phase: {' '.join(command[3:])}", flush=True)
    status = subprocess.call(command)
    return 0 if status == NO_TESTS_COLLECTED else status


def _slowest(durations: Path) -> list[str]:
    rows = [line.split("\t", 1) for line in durations.read_text().splitlines()]
    rows.sort(key=lambda row: -float(row[0]))
    return [f"{float(seconds):8.2f}s  {test}" for seconds, test in rows[:SLOWEST]]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.phases", add_help=False)
    parser.add_argument("--workers", type=int, default=1)
    options, args = parser.parse_known_args(argv)
    if options.workers < 1:
        parser.error(f"--workers: {options.workers} is not a number of workers (1 or more)")
    # One order for both phases: a failure is repeated with the seed either one prints.
    if "no:randomly" not in args and not any(a.startswith("--randomly-seed") for a in args):
        args = [f"--randomly-seed={random.randrange(2**32)}", *args]
    with tempfile.TemporaryDirectory() as scratch:
        durations = Path(scratch, "durations")
        durations.touch()
        statuses = [
            _pytest(phase, args, durations, options.workers if phase == "shared" else 1)
            for phase in ("shared", "alone")
        ]
        print(f"\n== the {SLOWEST} slowest tests (setup, call and teardown)")
        print("\n".join(_slowest(durations)))
    return next((status for status in statuses if status), 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Regenerate docs/benchmarks.md and docs/benchmarks.png: every figure from one run.

    .venv/bin/python benchmarks/regenerate.py            # about 14 minutes on 2 cores
    .venv/bin/python benchmarks/regenerate.py --quick    # shorter runs, for a look

Each experiment is the `shardstack` CLI as a user runs it (`shardstack bench compare`,
`bench tail`, `shardstack up` loaded by `bench run` and by wrk; experiments.py); this
script runs them in turn and writes the page (page.py).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import experiments
import page
from experiments import ROOT, bench

DOCS = ROOT / "docs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (figures are rougher)")
    args = parser.parse_args()
    duration, rounds = ("5s", 1) if args.quick else ("10s", 3)
    work = Path(tempfile.mkdtemp(prefix="shardstack-report-"))
    started = time.monotonic()

    compare = bench(work / "compare.json", "compare", "--latency", "fixed:1",
                    "-d", duration, "--rounds", str(rounds))  # fmt: skip
    tail = bench(work / "tail.json", "tail", "-d", "30s" if not args.quick else "10s")
    generator = experiments.generator_check(duration)
    half = experiments.half_saturation(duration)
    memory = experiments.stack_memory(duration)
    overload = bench(work / "overload.json", "overload", "--workers", "2", "-c", "24",
                     "-d", "15s" if not args.quick else "5s")  # fmt: skip
    connections = experiments.connections(10_000 if not args.quick else 2_000)

    page.plot(compare, tail, DOCS / "benchmarks.png")
    text = page.page(compare, tail, generator, half, memory, overload, connections,
                     time.monotonic() - started, args.quick)  # fmt: skip
    (DOCS / "benchmarks.md").write_text(text)
    print(f"wrote {DOCS / 'benchmarks.md'} and {DOCS / 'benchmarks.png'}", file=sys.stderr)


if __name__ == "__main__":
    if shutil.which("wrk") is None:
        sys.exit("regenerate.py: wrk is needed (Debian: apt-get install wrk)")
    main()

"""Regenerate docs/benchmarks.md and its plots: every figure from one run.

    .venv/bin/python -m benchmarks.regenerate            # about 40 minutes on 2 cores
    .venv/bin/python -m benchmarks.regenerate --quick    # shorter runs, for a look
    .venv/bin/python -m benchmarks.regenerate --render results.json   # the page again

Every run saves what it measured (results.json in its work directory, printed at the
end), so the page can be written again from the same run without measuring anew.

Each experiment is the `shardstack` CLI as a user runs it (`shardstack bench compare`,
`bench tail`, `shardstack up` loaded by `bench run` and by wrk; experiments.py); this
script runs them in turn and writes the page (page.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import experiments, page
from benchmarks.experiments import ROOT, bench

DOCS = ROOT / "docs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (figures are rougher)")
    parser.add_argument("--render", type=Path, help="write the page from a saved results.json")
    args = parser.parse_args()
    if args.render is not None:
        results = json.loads(args.render.read_text())
    else:
        _check_tools()
        results = measure(args.quick)
    page.plot(results["compare"], results["tails"][0], DOCS / "benchmarks.png")
    page.plot_calibration(results["calibration"]["report"], DOCS / "calibration.png")
    (DOCS / "benchmarks.md").write_text(page.page(**results))
    print(f"wrote {DOCS / 'benchmarks.md'}, benchmarks.png and calibration.png", file=sys.stderr)


def measure(quick: bool) -> dict[str, object]:
    duration, rounds = ("5s", 1) if quick else ("10s", 3)
    work = Path(tempfile.mkdtemp(prefix="shardstack-report-"))
    started = time.monotonic()

    shard = experiments.shard_cost(3 if quick else 10, 1 if quick else 3)
    compare = bench(work / "compare.json", "compare", "--latency", "fixed:1",
                    "-d", duration, "--rounds", str(rounds))  # fmt: skip
    # The hedging target is "in three runs out of three".
    tails = [bench(work / f"tail-{index}.json", "tail", "-d", "10s" if quick else "30s")
             for index in range(3)]  # fmt: skip
    generator = experiments.generator_check(duration)
    half = {str(layout): experiments.half_saturation(duration, layout) for layout in (1, 20)}
    calibration = experiments.calibrate(
        work / "calibrate.json", "--latency", "percentiles:p50=5,p90=20,p99=80,p99.9=300",
        "-d", "20s" if quick else "60s",
    )  # fmt: skip
    memory = experiments.stack_memory(duration)
    overload = bench(work / "overload.json", "overload", "--workers", "2", "-c", "24",
                     "-d", "15s" if not quick else "5s")  # fmt: skip
    connections = experiments.connections(10_000 if not quick else 2_000)
    backends = experiments.backends("10s" if quick else "20s")
    shed_seconds = 5 if quick else 10
    cpu = {
        "shed": experiments.shed_cost(shed_seconds), "shed_seconds": shed_seconds,
        "storm": experiments.cpu_storm(8 if quick else 20),
        "overload": bench(work / "overload-cpu.json", "overload", "--latency", "fixed:1",
                          "--workers", "2", "-c", "24", "-d", "5s" if quick else "15s"),
    }  # fmt: skip
    spread = experiments.connections_spread(6_000 if quick else 50_000, processes=3, workers=4)

    results: dict[str, object] = {
        "shard": shard, "compare": compare, "tails": tails, "generator": generator,
        "half": half, "calibration": calibration, "memory": memory, "overload": overload,
        "connections": connections, "backends": backends, "cpu": cpu, "spread": spread,
        "took_s": time.monotonic() - started, "quick": quick,
    }  # fmt: skip
    saved = work / "results.json"
    saved.write_text(json.dumps(results))
    print(f"saved the measurements in {saved} (--render {saved} writes the page again)",
          file=sys.stderr)  # fmt: skip
    return results


def _check_tools() -> None:
    missing = [tool for tool in ("wrk", "nginx") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"regenerate.py: {' and '.join(missing)} needed "
                 "(Debian: apt-get install wrk nginx-light)")  # fmt: skip


if __name__ == "__main__":
    main()

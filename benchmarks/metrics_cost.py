"""What one metric update costs the gateway's hot path, in multiprocess mode (as under
gunicorn) against a single process's in-memory values.

Each mode runs in its own interpreter, because prometheus-client picks its value store
when first imported. Per 20-shard aggregate the gateway makes about 20 x (2 gauge
updates + 2 histogram observations + 1 counter increment) of these.

    .venv/bin/python benchmarks/metrics_cost.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

CALLS = 200_000

_MEASURE = f"""
import time
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from shardstack_kernel.latency_buckets import LATENCY_BUCKETS_S

registry = CollectorRegistry()
gauge = Gauge("g", "", registry=registry, multiprocess_mode="livesum")
counter = Counter("c", "", ["shard", "outcome"], registry=registry).labels("3", "ok")
histogram = Histogram("h", "", ["shard"], registry=registry, buckets=LATENCY_BUCKETS_S).labels("3")
for name, update in [
    ("gauge inc", gauge.inc),
    ("counter inc", counter.inc),
    ("histogram observe", lambda: histogram.observe(0.012)),
]:
    started = time.perf_counter()
    for _ in range({CALLS}):
        update()
    print(f"{{name:18}} {{(time.perf_counter() - started) / {CALLS} * 1e6:5.2f}} us")
"""


def main() -> None:
    with tempfile.TemporaryDirectory() as metrics_dir:
        for mode, extra in [
            ("single process", {}),
            ("multiprocess", {"PROMETHEUS_MULTIPROC_DIR": metrics_dir}),
        ]:
            env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
            print(f"{mode}:")
            sys.stdout.flush()
            subprocess.run([sys.executable, "-c", _MEASURE], env={**env, **extra}, check=True)


if __name__ == "__main__":
    main()

"""Short forms of two benchmark claims (docs/benchmarks.md runs the long ones): the
gateway holds many client connections and answers each, twice, within the deadline;
the whole 20-shard stack stays under 1 GiB while it does."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import orjson
import psutil

from tests.e2e.stack import StartStack, gunicorn_master

ROOT = Path(__file__).parents[2]
CONNECTIONS = 1000
GIB = 1 << 30


def _stack_pss(root_pid: int) -> int:
    root = psutil.Process(root_pid)
    total = 0
    for member in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += member.memory_full_info().pss
    return total


def test_held_connections_are_each_answered_twice_and_the_stack_stays_under_a_gib(
    start: StartStack,
) -> None:
    # Idle connections are closed after GATEWAY_KEEPALIVE_S; held ones need it longer.
    # The claim is about connections, not the CPU: on a shared machine a neighbour can
    # make the event loop lag, and the adaptive cap would rightly shed the aggregates past
    # its floor of 8 (tests/e2e/test_cpu_overload.py holds that); a fixed cap of 64 here.
    stack = start(
        "--latency", "fixed:1", shards=20,
        GATEWAY_KEEPALIVE_S="300", GATEWAY_LOOP_LAG_TARGET_MS="0",
    )  # fmt: skip
    master = gunicorn_master(stack)
    port = stack.gateway_url.rsplit(":", 1)[1]
    command = [sys.executable, str(ROOT / "benchmarks" / "connections.py"),
               "--connections", str(CONNECTIONS), "--rate", "250", "--hold", "2",
               "--port", port, "--pid", str(master)]  # fmt: skip
    held = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak_pss = 0
    while held.poll() is None:
        peak_pss = max(peak_pss, _stack_pss(stack.process.pid))
        with contextlib.suppress(subprocess.TimeoutExpired):
            held.wait(0.5)
    out, err = held.communicate(timeout=60)
    assert held.returncode == 0, err.decode()
    run = orjson.loads(out)
    assert run["opened"] == CONNECTIONS
    assert not run["open_errors"]
    for phase in ("first", "again"):
        assert run[phase]["statuses"] == {"200": CONNECTIONS}, run[phase]
        assert not run[phase]["errors"], run[phase]
        assert run[phase]["past_deadline"] == 0, run[phase]
    assert run["held"]["open_fds"] >= CONNECTIONS
    assert 0 < peak_pss < GIB, peak_pss

"""The physical limit `shardstack bench compare` states: the CPU one keep-alive HTTP/1.1
request over loopback costs a C client here (wrk, against one of the shards).

A fan-out's side of an aggregate is one request served and one call per shard made, so
(shards + 1) times that is what its CPU per aggregate could come down to with C on both
ends of every exchange; a Python gateway is some multiple of it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

DURATION_S = 3
CONNECTIONS = 16
_REQUESTS = re.compile(r"^\s*(\d+) requests in ", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class LoopbackLimit:
    us_per_request: float  # wrk's CPU (user + system) per answered request
    requests: int

    def ms_per_aggregate(self, shards: int) -> float:
        return (shards + 1) * self.us_per_request / 1000.0

    def describe(self, shards: int, cpu_ms_per_answer: dict[str, float]) -> str:
        limit_ms = self.ms_per_aggregate(shards)
        multiples = ", ".join(
            f"{name} {cpu / limit_ms:.0f}x" for name, cpu in cpu_ms_per_answer.items()
        )
        return (
            f"physical limit: a C client (wrk) spends {self.us_per_request:.1f} µs of CPU per "
            f"keep-alive request here ({self.requests:,} requests), so {shards} calls and one "
            f"answer could cost {limit_ms:.2f} ms per aggregate; CPU per answer is {multiples} that"
        )


def measure_loopback_limit(url: str) -> LoopbackLimit | None:
    """wrk against `url` for a few seconds; None if wrk is not installed."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    argv = [wrk, "-t1", f"-c{CONNECTIONS}", f"-d{DURATION_S}s", url]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    output = process.stdout.read().decode()
    # wait4 gives this one child's CPU (the shards and servers are other children).
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stdout.close()
    found = _REQUESTS.search(output)
    if process.returncode != 0 or found is None or int(found.group(1)) == 0:
        return None
    requests = int(found.group(1))
    return LoopbackLimit((usage.ru_utime + usage.ru_stime) / requests * 1e6, requests)

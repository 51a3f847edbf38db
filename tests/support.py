"""What the tests share besides fixtures: the loopback host and admin token, port
allocation, process start and stop, and the problem+json check."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from shardstack.bench.exposition import Samples
from shardstack.testing import ports
from shardstack_kernel.problem import Problem

HOST = "127.0.0.1"
ADMIN_TOKEN = "test-admin-token-0123456789"
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}

# What a test may see past a moment the product promises ("by its deadline", "at the same
# moments"): the stack's own bookkeeping, and this test process and the stack sharing two
# loaded cores. The stated margin for measuring those claims from outside.
SCHEDULING_MARGIN_S = 0.25

# conftest.make_gateway: shard URLs and settings in, the in-process gateway out.
GatewayFactory = Callable[..., TestClient]


def assert_problem(response: Any, status: int, fields: list[str] | None = None) -> None:
    """`response` is an RFC 9457 problem with `status`, naming exactly `fields` in that order."""
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    Problem.model_validate(problem)
    assert problem["status"] == status
    assert problem["detail"]
    if fields is not None:
        assert [error["field"] for error in problem["errors"]] == fields
        assert problem["detail"].startswith(f"{fields[0]}: ")


def require_binary(name: str) -> str:
    """The path of `name`; skips where it is not installed, but fails in CI, which installs it."""
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; .ci/run installs it")
        pytest.skip(f"{name} is not installed (Debian: apt-get install prometheus)")
    return found


def free_port() -> int:
    return free_port_block(1)


def free_port_block(count: int, also_at: int | None = None) -> int:
    """As the fleets' own allocation (a chunk per xdist worker); a failure is the test's."""
    try:
        return ports.free_port_block(count, also_at)
    except ports.NoFreePorts as exc:
        raise AssertionError(str(exc)) from None


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout_s}s")


def run_shardstack(
    *args: str, env: dict[str, str] | None = None, timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    """The `shardstack` CLI in a process of its own, as a user runs it; `env` whole (default
    this process's)."""
    return subprocess.run(
        [sys.executable, "-m", "shardstack", *args],
        env=os.environ if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def without_coverage(env: Mapping[str, str]) -> dict[str, str]:
    """`env` for a process whose coverage would add nothing: a tool (schemathesis, whose
    hooks call one selector helper the unit tests cover) or the suite's runner on the
    suite's own files. `make unit` measures every Python process the tests start
    (coverage.py's subprocess patch passes its settings down in this variable), and
    tracing such a process's every call only slows it."""
    return {name: value for name, value in env.items() if name != "COVERAGE_PROCESS_CONFIG"}


def wait_for_stack(check: Callable[[], bool], what: str, timeout_s: float = 300) -> None:
    """Poll `check` each second on a stack in containers, still starting or changing: a
    refused connection or a half-formed answer counts as not yet. Fails naming `what` and
    the last result."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last is True:
                return
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            last = exc
        time.sleep(1)
    raise AssertionError(f"{what} not seen within {timeout_s}s (last: {last!r})")


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class ShardProcess:
    id: int
    port: int
    admin_port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://{HOST}:{self.admin_port}"

    def calls_received(self) -> float:
        """Every /data call this shard has counted, from its own metrics."""
        samples = Samples.parse(httpx.get(f"{self.admin_url}/metrics").text)
        assert samples.exported("shard_requests_total"), "shard_requests not exported"
        return samples.total("shard_requests_total")


StartShard = Callable[..., ShardProcess]

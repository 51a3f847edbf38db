"""The one readiness poll of the benchmarks and the tests, against real processes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from shardstack.bench.readiness import NotReady, wait_ready
from tests.support import HOST, free_port, stop_process


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    stop_process(process)


def test_a_server_is_ready_once_it_answers() -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", HOST],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_ready(f"http://{HOST}:{port}/", server, timeout_s=30)
    finally:
        stop_process(server)


def test_a_process_that_exits_is_named_at_once() -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(NotReady, match="the thing: process exited with 3"):
        wait_ready(f"http://{HOST}:{free_port()}/", process, timeout_s=30, what="the thing")


def test_a_process_that_never_answers_is_given_up_on(
    sleeper: subprocess.Popen[bytes],
) -> None:
    url = f"http://{HOST}:{free_port()}/healthz"
    with pytest.raises(NotReady, match=f"{url} not ready after 0.3s"):
        wait_ready(url, sleeper, timeout_s=0.3)
    assert sleeper.poll() is None

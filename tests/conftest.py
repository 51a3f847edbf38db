"""Fixtures that start real shard processes on free loopback ports and stop them after."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.settings import ENV_PREFIX as GATEWAY_ENV_PREFIX
from shard_sim.settings import ENV_PREFIX as SHARD_ENV_PREFIX

HOST = "127.0.0.1"
ADMIN_TOKEN = "test-admin-token-0123456789"
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}

# What the product reads from the environment: the services' settings, the CLI's token and
# gateway, the metrics directory. A developer's shell may export any of them.
_PRODUCT_ENV_PREFIXES = (GATEWAY_ENV_PREFIX, SHARD_ENV_PREFIX, "SHARDSTACK_")
_PRODUCT_ENV = ("PROMETHEUS_MULTIPROC_DIR",)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fresh-images",
        action="store_true",
        help="remove this project's Docker images and the engine's build cache first, "
        "so the Docker tests build everything as a new machine does",
    )


@pytest.fixture(scope="session", autouse=True)
def _environment_of_a_new_machine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The suite sees what CI sees: none of the product's variables from the shell that
    started it, and an empty state directory instead of the tokens `shardstack up` left
    under ~/.local/state."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(_PRODUCT_ENV_PREFIXES) or name in _PRODUCT_ENV:
                patch.delenv(name)
        patch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
        yield


def assert_problem(response: Any, status: int, fields: list[str] | None = None) -> None:
    """`response` is an RFC 9457 problem with `status`, naming exactly `fields` in that order."""
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
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


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
        return True


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def free_port_block(count: int, also_at: int | None = None) -> int:
    """The first of `count` consecutive free ports (and of `count` more from base + `also_at`)."""
    starts = (0,) if also_at is None else (0, also_at)
    # Below the kernel's ephemeral range: a port there that is free now can still be taken
    # by an outgoing connection before the server under test binds it.
    highest = _ephemeral_start() - max(starts) - count
    for _ in range(200):
        base = random.randrange(10_000, highest)
        if all(_is_free(base + start + offset) for start in starts for offset in range(count)):
            return base
    raise RuntimeError(f"no block of {count} free ports found")


def wait_until_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1.0, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready after {timeout_s}s")


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


StartShard = Callable[..., ShardProcess]


@pytest.fixture(scope="session")
def start_shard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartShard]:
    """Start a real `python -m shard_sim` process; every one is stopped at session end."""
    started: list[ShardProcess] = []
    log_dir = tmp_path_factory.mktemp("shard-logs")

    def start(shard_id: int = 0, latency: str = "fixed:0", **env: str) -> ShardProcess:
        port = free_port_block(2)
        child_env: Mapping[str, str] = {
            **os.environ,
            "SHARDSTACK_ADMIN_TOKEN": ADMIN_TOKEN,
            "SHARD_ID": str(shard_id),
            "SHARD_PORT": str(port),
            "SHARD_ADMIN_PORT": str(port + 1),
            "SHARD_LATENCY": latency,
            **{f"SHARD_{key.upper()}": value for key, value in env.items()},
        }
        with Path(log_dir, f"shard-{shard_id}-{port}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "shard_sim"],
                env=child_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        shard = ShardProcess(shard_id, port, port + 1, process)
        started.append(shard)
        wait_until_ready(f"{shard.url}/healthz", process)
        return shard

    yield start
    for shard in started:
        stop_process(shard.process)

"""A running `shardstack up` (the real CLI, real shard processes, gunicorn with real
workers) and what the end-to-end tests look at in it: processes, ports, answers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from shardstack_kernel.topology import ADMIN_PORT_OFFSET
from tests.support import HOST, free_port_block

STARTUP_TIMEOUT_S = 90


@dataclass
class RunningStack:
    process: subprocess.Popen[bytes]
    gateway_url: str
    shard_base_port: int
    shards: int
    stderr_path: Path
    env: dict[str, str]

    def shard_url(self, shard_id: int) -> str:
        return f"http://{HOST}:{self.shard_base_port + shard_id}"

    def admin_url(self, shard_id: int) -> str:
        return f"http://{HOST}:{self.shard_base_port + ADMIN_PORT_OFFSET + shard_id}"

    def admin_headers(self) -> dict[str, str]:
        """The token `shardstack up` generated and saved for the CLI."""
        port = self.gateway_url.rsplit(":", 1)[1]
        path = Path(self.env["XDG_STATE_HOME"], "shardstack", f"{HOST}-{port}.token")
        return {"authorization": f"Bearer {path.read_text().strip()}"}

    def cli(
        self, *args: str, gateway: str | None = None, timeout_s: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """`shardstack ARGS --gateway <this stack>`; the token comes from the saved file."""
        return subprocess.run(
            [sys.executable, "-m", "shardstack", *args, "--gateway", gateway or self.gateway_url],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def diagnosis(self, lines: int = 15) -> str:
        """For a failing test's message: is `up` running, and the ends of its output and
        of the gateway's log."""
        state = "running" if self.process.poll() is None else f"exited {self.process.returncode}"
        gateway_log = self.stderr_path.parent / "logs" / "gateway.log"
        tail = gateway_log.read_text().splitlines()[-lines:] if gateway_log.exists() else []
        return "\n".join(
            [f"shardstack up {state}; its stderr ends:", *self.stderr().splitlines()[-lines:],
             "gateway.log ends:", *tail]
        )  # fmt: skip

    def stop(self, sig: signal.Signals = signal.SIGINT, timeout_s: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout_s)

    def ports(self) -> list[int]:
        gateway_port = int(self.gateway_url.rsplit(":", 1)[1])
        shard_ports = [self.shard_base_port + i for i in range(self.shards)]
        return [gateway_port, *shard_ports, *(port + ADMIN_PORT_OFFSET for port in shard_ports)]


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, read from /proc."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        found.extend(int(child) for child in children)
        pending.extend(int(child) for child in children)
    return found


def direct_children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def gunicorn_master(stack: RunningStack) -> int:
    """The gateway's gunicorn master process."""
    [master] = [pid for pid in direct_children(stack.process.pid) if "-m gunicorn" in cmdline(pid)]
    return master


def gunicorn_workers(stack: RunningStack) -> list[int]:
    """The gateway's gunicorn worker processes."""
    return direct_children(gunicorn_master(stack))


def default_sigint() -> None:
    """A child's preexec: Ctrl-C acts as from a terminal (a suite started in the
    background inherits SIGINT ignored, and Python then leaves it alone)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def site_hook(tmp_path: Path, code: str) -> str:
    """A directory for PYTHONPATH whose sitecustomize.py runs `code` in every Python
    process started with it: a real misbehaviour injected into one shard."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(code)
    return str(hook)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((HOST, port)) == 0


def start_stack(tmp_path: Path, *args: str, shards: int = 20, **env: str) -> RunningStack:
    """Start `shardstack up`; without Prometheus unless `args` name a --prometheus option."""
    if not any(arg.startswith("--prometheus") for arg in args):
        args = (*args, "--no-prometheus")
    # One block for the shards and the gateway (its last port), so no two draws collide.
    base = free_port_block(shards + 1, also_at=ADMIN_PORT_OFFSET)
    gateway_port = base + shards
    stderr_path = tmp_path / "shardstack.err"
    # Each stack saves its token under its own state dir, as a user's `up` would.
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), **env}
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "shardstack", "up",
                "--shards", str(shards),
                "--port", str(gateway_port),
                "--shard-base-port", str(base),
                "--log-dir", str(tmp_path / "logs"),
                *args,
            ],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )  # fmt: skip
    return RunningStack(process, f"http://{HOST}:{gateway_port}", base, shards, stderr_path, env)


def wait_until_up(stack: RunningStack) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if stack.process.poll() is not None:
            raise RuntimeError(f"shardstack up exited: {stack.stderr()}")
        if "Press Ctrl-C to stop." in stack.stderr():
            return
        time.sleep(0.1)
    raise RuntimeError(f"shardstack up not ready: {stack.stderr()}")


@contextlib.contextmanager
def running_stack(
    tmp_path: Path, *args: str, shards: int = 3, **env: str
) -> Iterator[RunningStack]:
    """A stack up for the `with` block (a module's, shared by tests that leave it as they
    found it), stopped by SIGTERM at its end."""
    stack = start_stack(tmp_path, *args, shards=shards, **env)
    try:
        wait_until_up(stack)
        yield stack
    finally:
        stack.stop(signal.SIGTERM)


StartStack = Callable[..., RunningStack]


def get(url: str, **params: object) -> httpx.Response:
    return httpx.get(url, params=params, timeout=30, trust_env=False)  # type: ignore[arg-type]

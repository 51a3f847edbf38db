"""Starting, watching and stopping the local stack's processes.

Our own code rather than honcho or circus: honcho's Manager has no readiness
checks or start order and owns signal handling and output; circus needs ZeroMQ and a
daemon. Here each child gets its own session (so a terminal's Ctrl-C reaches only us
and we choose the stop order), a log file, and an HTTP readiness probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from shardstack.errors import OperatorError

_PR_SET_PDEATHSIG = 1


class LaunchError(OperatorError):
    """The stack could not be started; the message is one line for the operator."""


class PortInUse(LaunchError):
    pass


class ChildFailed(LaunchError):
    pass


class StartupTimeout(LaunchError):
    pass


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """One child: how to start it and how to know it is ready."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    ready_url: str
    ports: Sequence[tuple[str, int]] = ()


@dataclass(slots=True)
class _Child:
    spec: ProcessSpec
    process: asyncio.subprocess.Process
    log_path: Path
    exited: asyncio.Task[int] = field(init=False)

    def __post_init__(self) -> None:
        self.exited = asyncio.ensure_future(self.process.wait())

    def describe_exit(self) -> str:
        code = self.process.returncode
        how = (
            f"was killed by {signal.Signals(-code).name}"
            if code is not None and code < 0
            else f"exited with code {code}"
        )
        tail = _last_line(self.log_path)
        return f"{self.spec.name} {how}" + (f": {tail}" if tail else f" (log: {self.log_path})")


def raise_open_file_limit() -> None:
    """Raise this process's soft limit on open files to the hard limit; children inherit
    it. A gateway worker, or the load generator, holding thousands of connections needs
    more descriptors than the usual soft limit of 1024."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def check_ports_free(specs: Sequence[ProcessSpec]) -> None:
    """Fail before starting anything if a port is taken (as a server binding it would)."""
    for spec in specs:
        for host, port in spec.ports:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((host, port))
                except OSError as exc:
                    raise PortInUse(
                        f"port {port} on {host} (for {spec.name}) is not free: {exc.strerror}"
                    ) from None


class Supervisor:
    """Owns every child it starts; `stop` leaves no process and no bound port behind."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._children: list[_Child] = []

    @property
    def pids(self) -> list[int]:
        return [child.process.pid for child in self._children]

    def pid(self, name: str) -> int:
        return next(child.process.pid for child in self._children if child.spec.name == name)

    async def start(self, specs: Sequence[ProcessSpec], timeout_s: float) -> None:
        """Start `specs` together and return once every one answers its readiness URL."""
        group = [await self._spawn(spec) for spec in specs]
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(trust_env=False, timeout=1.0) as client:
            pending = list(group)
            while pending:
                for child in pending:
                    if child.exited.done():
                        raise ChildFailed(f"{child.describe_exit()}")
                results = await asyncio.gather(
                    *(_answers(client, c.spec.ready_url) for c in pending)
                )
                pending = [
                    child for child, ready in zip(pending, results, strict=True) if not ready
                ]
                if pending and time.monotonic() > deadline:
                    names = ", ".join(child.spec.name for child in pending[:5])
                    raise StartupTimeout(
                        f"not ready after {timeout_s:g}s: {names} (logs: {self.log_dir})"
                    )
                if pending:
                    await asyncio.sleep(0.05)

    async def next_exit(self) -> _Child:
        """Wait until any child exits and return it (its exit is then forgotten). What it
        started is ended with it: a dead gunicorn master's workers would keep its port."""
        waiting = {child.exited: child for child in self._children if not child.exited.done()}
        done_child = next((c for c in self._children if c.exited.done()), None)
        if done_child is None:
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            done_child = waiting[done.pop()]
        self._children.remove(done_child)
        _signal_group(done_child.process.pid, signal.SIGKILL)
        return done_child

    async def stop(self, names_in_order: Sequence[Sequence[str]], grace_s: float) -> int:
        """Stop children group by group (SIGTERM, then SIGKILL after `grace_s`); count them."""
        stopped = 0
        for names in names_in_order:
            stopped += await self.stop_some(names, grace_s)
        stopped += await self._stop_group(list(self._children), grace_s)
        return stopped

    async def stop_some(self, names: Sequence[str], grace_s: float) -> int:
        """Stop the named children only, as `stop` does; the others keep running."""
        group = [child for child in self._children if child.spec.name in names]
        return await self._stop_group(group, grace_s)

    async def _stop_group(self, group: list[_Child], grace_s: float) -> int:
        for child in group:
            _signal_group(child.process.pid, signal.SIGTERM)
        if group:
            await asyncio.wait([child.exited for child in group], timeout=grace_s)
        for child in group:
            # SIGKILL the whole session too: it also reaps grandchildren (gunicorn workers).
            _signal_group(child.process.pid, signal.SIGKILL)
            await child.exited
            self._children.remove(child)
        return len(group)

    async def _spawn(self, spec: ProcessSpec) -> _Child:
        log_path = self.log_dir / f"{spec.name}.log"
        with log_path.open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                *spec.argv,
                env=dict(spec.env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=functools.partial(terminate_with_parent, os.getpid()),
            )
        child = _Child(spec, process, log_path)
        self._children.append(child)
        return child


async def _answers(client: httpx.AsyncClient, url: str) -> bool:
    try:
        response = await client.get(url)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def terminate_with_parent(parent_pid: int) -> None:
    """In the child, before exec: get SIGTERM if the launcher dies, even by SIGKILL (Linux)."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:  # the launcher died before prctl took effect
        os._exit(1)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""

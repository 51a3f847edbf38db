"""Waiting for a process started beside the caller to answer: one poll for the
benchmarks and the tests (the launcher's own, async, is in shardstack/launcher)."""

from __future__ import annotations

import subprocess
import time

import httpx


class NotReady(RuntimeError):
    """The process exited, or did not answer 200 in time."""


def wait_ready(
    url: str,
    process: subprocess.Popen[bytes],
    timeout_s: float = 30.0,
    what: str | None = None,
    every_s: float = 0.05,
) -> None:
    """Until GET `url` answers 200; NotReady, naming `what` (or the URL), if `process`
    exits first or `timeout_s` passes."""
    name = what or url
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NotReady(f"{name}: process exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1.0, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(every_s)
    raise NotReady(f"{name} not ready after {timeout_s:g}s")

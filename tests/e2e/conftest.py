"""The `start` fixture: `shardstack up` stacks a test starts, all stopped at its end."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import RunningStack, StartStack, start_stack, wait_until_up


@pytest.fixture
def start(tmp_path: Path) -> Iterator[StartStack]:
    """Start `shardstack up` (waiting until it is up, unless `wait=False`); stopped at teardown."""
    started: list[RunningStack] = []

    def start(*args: str, shards: int = 3, wait: bool = True, **env: str) -> RunningStack:
        work_dir = tmp_path / f"stack-{len(started)}"
        work_dir.mkdir()
        stack = start_stack(work_dir, *args, shards=shards, **env)
        started.append(stack)
        if wait:
            wait_until_up(stack)
        return stack

    yield start
    for stack in started:
        stack.stop(signal.SIGTERM)

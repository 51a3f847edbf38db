"""The shards `bench compare`, `tail` and `overload` load their variants against: started
once, with each variant started beside them in turn."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from shardstack.bench.processes import ProcessTree
from shardstack.launcher.plan import Stack
from shardstack.launcher.supervisor import ProcessSpec, Supervisor, check_ports_free

STARTUP_TIMEOUT_S = 60.0
STOP_GRACE_S = 15.0


class Lab:
    def __init__(self, supervisor: Supervisor, shards: ProcessTree) -> None:
        self._supervisor = supervisor
        self.shards = shards

    @asynccontextmanager
    async def serving(self, spec: ProcessSpec) -> AsyncIterator[ProcessTree]:
        """Run one variant for the block; its process tree, for CPU and memory."""
        await self._supervisor.start([spec], STARTUP_TIMEOUT_S)
        try:
            yield ProcessTree([self._supervisor.pid(spec.name)])
        finally:
            await self._supervisor.stop_some([spec.name], STOP_GRACE_S)


@asynccontextmanager
async def lab(
    stack: Stack, first: ProcessSpec, log_dir: Path, echo: Callable[[str], None]
) -> AsyncIterator[Lab]:
    """The stack's shards, running for the block; `first` is the first variant, whose
    ports (shared by every variant) must be free too."""
    check_ports_free([*stack.shard_specs, first])
    supervisor = Supervisor(log_dir)
    try:
        echo(f"starting {len(stack.shard_specs)} shards (logs: {log_dir}) ...")
        await supervisor.start(stack.shard_specs, STARTUP_TIMEOUT_S)
        yield Lab(supervisor, ProcessTree(supervisor.pid(spec.name) for spec in stack.shard_specs))
    finally:
        await supervisor.stop([], STOP_GRACE_S)

"""`shardstack up`: start the shards, then the gateway; run until told to stop; stop it all."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from shardstack.control.token_store import forget_token, save_token
from shardstack.launcher.plan import GATEWAY, Stack
from shardstack.launcher.prometheus import PROMETHEUS, SCRAPE_INTERVAL
from shardstack.launcher.supervisor import (
    ChildFailed,
    Supervisor,
    check_ports_free,
    raise_open_file_limit,
)

_T = TypeVar("_T")


class _Stopped(Exception):
    """SIGINT or SIGTERM arrived before the stack was up."""


async def run(
    stack: Stack, log_dir: Path, startup_timeout_s: float, echo: Callable[[str], None]
) -> None:
    """Run the stack until SIGINT/SIGTERM; `LaunchError` if it cannot start or the gateway dies."""
    prometheus = None if stack.prometheus is None else stack.prometheus.spec(log_dir)
    check_ports_free([*stack.specs, *([prometheus] if prometheus else [])])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    raise_open_file_limit()
    decision_log = stack.shards[0].decision_log if stack.shards else None
    if decision_log is not None:
        decision_log.write_bytes(b"")  # this run's decisions only; the shards append
    supervisor = Supervisor(log_dir)
    began = time.monotonic()
    try:
        echo(f"starting {_shards_in_processes(stack)} ...")
        await _unless_stopped(supervisor.start(stack.shard_specs, startup_timeout_s), stop)
        echo(f"starting the gateway ({stack.gateway.workers} gunicorn workers) ...")
        await _unless_stopped(supervisor.start([stack.gateway_spec], startup_timeout_s), stop)
        if prometheus is not None:
            echo("starting Prometheus ...")
            await _unless_stopped(supervisor.start([prometheus], startup_timeout_s), stop)
        token_file = save_token(stack.gateway_url, stack.admin_token)
        echo(_summary(stack, log_dir, time.monotonic() - began, token_file))
        await _watch(supervisor, stop, echo)
    except _Stopped:
        pass
    finally:
        echo("stopping ...")
        grace_s = stack.gateway.graceful_timeout_s + 5.0
        shard_names = [spec.name for spec in stack.shard_specs]
        count = await supervisor.stop([[GATEWAY], shard_names, [PROMETHEUS]], grace_s)
        forget_token(stack.gateway_url)
        echo(f"stopped {count} processes")
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _unless_stopped(work: Awaitable[_T], stop: asyncio.Event) -> _T:
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not task.done():
        task.cancel()
        raise _Stopped
    return task.result()


async def _watch(supervisor: Supervisor, stop: asyncio.Event, echo: Callable[[str], None]) -> None:
    """Report children that exit; a shard's exit is survivable, the gateway's is not."""
    while True:
        child = await _unless_stopped(supervisor.next_exit(), stop)
        if child.spec.name == GATEWAY:
            raise ChildFailed(child.describe_exit())
        if child.spec.name == PROMETHEUS:
            echo(f"{child.describe_exit()}; metrics are no longer recorded")
        else:
            echo(f"{child.describe_exit()}; the gateway now reports that shard as failed")


def _summary(stack: Stack, log_dir: Path, took_s: float, token_file: Path) -> str:
    first, last = stack.shards[0], stack.shards[-1]
    specs = [shard.latency.spec() for shard in stack.shards]
    [(common, _)] = Counter(specs).most_common(1)
    others = [f"shard {index}: {spec}" for index, spec in enumerate(specs) if spec != common]
    latency = "; ".join([common, *others[:4]]) + ("; ..." if len(others) > 4 else "")
    settings = stack.gateway
    return "\n".join(
        [
            f"shardstack is up ({took_s:.1f}s): {_shards_in_processes(stack)}, a gateway"
            + ("" if stack.prometheus is None else " and Prometheus"),
            f"  gateway  {stack.gateway_url}  gunicorn, {settings.workers} workers; "
            f"per worker: semaphore {settings.semaphore_size}, "
            f"pool {settings.pool_max_connections} connections",
            f"  panel    {stack.gateway_url}/ui  live shards, semaphore, pool and faults",
            f"  shards   http://{first.host}:{first.port} .. :{last.port}  latency {latency}",
            f"  admin    {first.host}:{first.admin_port} .. :{last.admin_port}  "
            f"(shard admin ports, /metrics)",
            f"  metrics  {_prometheus_line(stack)}",
            f"  token    {_token_line(stack, token_file)}",
            f"  logs     {log_dir}",
            f"  try      curl -s {stack.gateway_url}/api/aggregate",
            "           shardstack fault inject 3 latency latency=fixed:300 --for 30s",
            "Press Ctrl-C to stop.",
        ]
    )


def _prometheus_line(stack: Stack) -> str:
    prometheus = stack.prometheus
    if prometheus is None:
        return "no Prometheus (--prometheus PATH runs one)"
    graph = prometheus.graph_url(
        "gateway_semaphore_in_use", 'gateway_pool_connections{state="active"}'
    )
    return f"Prometheus {prometheus.url}, scraping every {SCRAPE_INTERVAL}\n           {graph}"


def _token_line(stack: Stack, token_file: Path) -> str:
    if stack.token_generated:
        # Printed once, as Jupyter does; the CLI reads it from the file.
        return f"{stack.admin_token}  (generated; saved for the CLI in {token_file})"
    return f"from SHARDSTACK_ADMIN_TOKEN (saved for the CLI in {token_file})"


def _shards_in_processes(stack: Stack) -> str:
    shards, processes = len(stack.shards), len(stack.shard_specs)
    if shards == processes:
        return f"{shards} shards"
    return f"{shards} shards in {processes} processes"

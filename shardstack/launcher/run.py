"""`shardstack up`: start the shards, then the gateway; run until told to stop; stop it all."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from shardstack.control.token_store import forget_token, save_token
from shardstack.launcher.fleet_file import FleetDescription, FleetShard
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
    stack: Stack,
    log_dir: Path,
    startup_timeout_s: float,
    echo: Callable[[str], None],
    fleet_file: Path,
) -> None:
    """Run the stack until SIGINT/SIGTERM; `LaunchError` if it cannot start or the gateway
    dies. `fleet_file` is written once the shards are ready and removed at the end."""
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
        if stack.gateway_spec is not None:
            echo(f"starting the gateway ({stack.gateway.workers} gunicorn workers) ...")
            await _unless_stopped(supervisor.start([stack.gateway_spec], startup_timeout_s), stop)
        if prometheus is not None:
            echo("starting Prometheus ...")
            await _unless_stopped(supervisor.start([prometheus], startup_timeout_s), stop)
        token_file = None
        if stack.gateway_spec is not None:
            token_file = save_token(stack.gateway_url, stack.admin_token)
        fleet = _describe(stack, decision_log)
        fleet.write(fleet_file)
        echo(_summary(stack, log_dir, time.monotonic() - began, token_file, fleet, fleet_file))
        await _watch(supervisor, stop, echo)
    except _Stopped:
        pass
    finally:
        echo("stopping ...")
        grace_s = stack.gateway.graceful_timeout_s + 5.0
        shard_names = [spec.name for spec in stack.shard_specs]
        count = await supervisor.stop([[GATEWAY], shard_names, [PROMETHEUS]], grace_s)
        _forget(stack, fleet_file)
        echo(f"stopped {count} processes")
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _forget(stack: Stack, fleet_file: Path) -> None:
    """What the stack left for its clients points at nothing once it stops."""
    fleet_file.unlink(missing_ok=True)
    if stack.gateway_spec is not None:
        forget_token(stack.gateway_url)


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


def _describe(stack: Stack, decision_log: Path | None) -> FleetDescription:
    return FleetDescription(
        shards=tuple(
            FleetShard(
                id=shard.id,
                url=f"http://{shard.host}:{shard.port}",
                admin_url=f"http://{shard.host}:{shard.admin_port}",
                zone=shard.zone,
            )
            for shard in stack.shards
        ),
        token=stack.admin_token,
        decision_log=decision_log,
        pid=os.getpid(),
    )


def _summary(
    stack: Stack,
    log_dir: Path,
    took_s: float,
    token_file: Path | None,
    fleet: FleetDescription,
    fleet_file: Path,
) -> str:
    first, last = stack.shards[0], stack.shards[-1]
    specs = [shard.latency.spec() for shard in stack.shards]
    [(common, _)] = Counter(specs).most_common(1)
    others = [f"shard {index}: {spec}" for index, spec in enumerate(specs) if spec != common]
    latency = "; ".join([common, *others[:4]]) + ("; ..." if len(others) > 4 else "")
    settings = stack.gateway
    parts = [_shards_in_processes(stack)]
    parts += ["a gateway"] if stack.gateway_spec is not None else []
    parts += ["Prometheus"] if stack.prometheus is not None else []
    listed = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
    lines = [f"shardstack is up ({took_s:.1f}s): {listed}"]
    if stack.gateway_spec is not None:
        lines += [
            f"  gateway  {stack.gateway_url}  gunicorn, {settings.workers} workers; "
            f"per worker: semaphore {settings.semaphore_size}, "
            f"pool {settings.pool_max_connections} connections",
            f"  panel    {stack.gateway_url}/ui  live shards, semaphore, pool and faults",
        ]
    lines += [
        f"  shards   http://{first.host}:{first.port} .. :{last.port}  latency {latency}",
        f"  admin    {first.host}:{first.admin_port} .. :{last.admin_port}  "
        f"(shard admin ports, /metrics)",
    ]
    if stack.gateway_spec is None:
        lines += [
            f"  urls     {','.join(shard.url for shard in fleet.shards)}",
            f"  fleet    {fleet_file}  (URLs and token, for shardstack.testing)",
        ]
    lines += [
        f"  metrics  {_prometheus_line(stack)}",
        f"  token    {_token_line(stack, token_file)}",
        f"  logs     {log_dir}",
    ]
    if stack.gateway_spec is not None:
        lines += [
            f"  try      curl -s {stack.gateway_url}/api/aggregate",
            "           shardstack fault inject 3 latency latency=fixed:300 --for 30s",
        ]
    return "\n".join([*lines, "Press Ctrl-C to stop."])


def _prometheus_line(stack: Stack) -> str:
    prometheus = stack.prometheus
    if prometheus is None:
        return "no Prometheus (--prometheus PATH runs one)"
    graph = prometheus.graph_url(
        "gateway_semaphore_in_use", 'gateway_pool_connections{state="active"}'
    )
    return f"Prometheus {prometheus.url}, scraping every {SCRAPE_INTERVAL}\n           {graph}"


def _token_line(stack: Stack, token_file: Path | None) -> str:
    # Printed once, as Jupyter does; the CLI reads it from its file, a test from the fleet's.
    saved = "in the fleet file" if token_file is None else f"saved for the CLI in {token_file}"
    if stack.token_generated:
        return f"{stack.admin_token}  (generated; {saved})"
    return f"from SHARDSTACK_ADMIN_TOKEN ({saved})"


def _shards_in_processes(stack: Stack) -> str:
    shards, processes = len(stack.shards), len(stack.shard_specs)
    if shards == processes:
        return f"{shards} shards"
    return f"{shards} shards in {processes} processes"

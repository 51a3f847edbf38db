"""`shardstack up`: the whole stack on this machine, without Docker, until Ctrl-C."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Literal

import click

from shard_sim.capacity import Capacity
from shardstack.cli.options import (
    LATENCY_MODELS,
    CapacityType,
    LatencyType,
    ShardLatencyType,
    stack_options,
)
from shardstack.launcher import run as launcher
from shardstack.launcher.fleet_file import FLEET_FILE_NAME
from shardstack.launcher.plan import StackConfig, plan
from shardstack.launcher.prometheus import find_binary as find_prometheus
from shardstack_kernel import topology
from shardstack_kernel.latency import LatencyModel
from shardstack_kernel.validation import InvalidInput


@click.command()
@stack_options()
@click.option(
    "--host", default=topology.HOST, show_default=True, help="Address every process listens on."
)
@click.option(
    "--latency",
    type=LatencyType(),
    default=None,
    help=f"Latency model of every shard: {LATENCY_MODELS}. Default: SHARD_LATENCY, else fixed:0.",
)
@click.option(
    "--shard-latency",
    type=ShardLatencyType(),
    multiple=True,
    help="Latency model of one shard, e.g. 3=fixed:500 (repeatable).",
)
@click.option(
    "--capacity",
    type=CapacityType(),
    default=None,
    help="Every shard's finite capacity, e.g. workers=2,queue=2,overflow=503 "
    "(overflow 503, 429, reset or hang; order=lifo serves the newest first). "
    "Default: SHARD_CAPACITY, else unbounded.",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="RNG seed for every shard: the same seed and request ids replay the same decisions.",
)
@click.option(
    "--zones",
    type=int,
    default=None,
    help="Failure domains: shard i in zone z{i mod N}, for zone:NAME selectors. "
    "Default: GATEWAY_SHARD_ZONES, else none.",
)
@click.option(
    "--decision-log",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File every shard appends its decisions to, one JSON line per call (emptied at start).",
)
@click.option(
    "--log-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where each process logs (default: a new temporary directory).",
)
@click.option(
    "--startup-timeout",
    type=click.FloatRange(1, 600),
    default=60,
    show_default=True,
    help="Seconds to wait for every process to be ready.",
)
@click.option(
    "--allow-request-faults",
    is_flag=True,
    help="Honour the X-Shardstack-Fault header on /api/aggregate.",
)
@click.option(
    "--prometheus",
    "prometheus_binary",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Prometheus binary to run beside the stack (default: `prometheus` on PATH).",
)
@click.option("--no-prometheus", is_flag=True, help="Run no Prometheus.")
@click.option(
    "--shards-only",
    is_flag=True,
    help="Run the shards (and Prometheus) without the gateway, to put a service of your "
    "own in its place; their URLs are printed and in the fleet file.",
)
@click.option(
    "--fleet-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the shards' URLs and the admin token (JSON, owner-only) once they "
    f"are ready; removed at stop. Default: {FLEET_FILE_NAME} in the log directory.",
)
@click.option(
    "--prometheus-port",
    type=click.IntRange(1, 65535),
    default=topology.PROMETHEUS_PORT,
    show_default=True,
    help="Port Prometheus listens on.",
)
def up(
    shards: int,
    workers: int,
    port: int,
    shard_base_port: int,
    shards_per_process: int,
    host: str,
    latency: LatencyModel | None,
    shard_latency: tuple[tuple[int, LatencyModel], ...],
    capacity: Capacity | Literal["unbounded"] | None,
    seed: int | None,
    zones: int | None,
    decision_log: Path | None,
    log_dir: Path | None,
    startup_timeout: float,
    allow_request_faults: bool,
    prometheus_binary: Path | None,
    no_prometheus: bool,
    prometheus_port: int,
    shards_only: bool,
    fleet_file: Path | None,
) -> None:
    """Run shards and the gateway on this machine until Ctrl-C.

    GATEWAY_* and SHARD_* environment variables reach the processes (e.g.
    GATEWAY_SEMAPHORE_SIZE); the manual's settings reference lists them all. Prometheus,
    when there is one, scrapes every process each second.
    """
    if no_prometheus and prometheus_binary is not None:
        raise click.UsageError("--prometheus and --no-prometheus exclude each other")
    if shards_only:
        _refuse_gateway_options()
    searched = not no_prometheus and prometheus_binary is None
    if searched:
        prometheus_binary = find_prometheus()
    stack = plan(
        StackConfig(
            shards=shards,
            workers=workers,
            host=host,
            gateway_port=port,
            shard_base_port=shard_base_port,
            shards_per_process=shards_per_process,
            latency=latency,
            shard_latency=dict(shard_latency),
            capacity=capacity,
            seed=seed,
            zones=zones,
            decision_log=None if decision_log is None else decision_log.resolve(),
            allow_request_faults=allow_request_faults,
            gateway=not shards_only,
            prometheus=prometheus_binary,
            prometheus_port=prometheus_port,
        )
    )
    if searched and prometheus_binary is None:
        progress(
            "no `prometheus` on PATH: running without it "
            "(Debian: apt-get install prometheus; or --prometheus PATH)"
        )
    if fleet_file is not None and not fleet_file.parent.is_dir():
        raise InvalidInput.field("--fleet-file", f"{fleet_file.parent} is not a directory")
    if log_dir is None:
        log_dir = Path(tempfile.mkdtemp(prefix="shardstack-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    fleet_file = (fleet_file or log_dir / FLEET_FILE_NAME).resolve()
    asyncio.run(launcher.run(stack, log_dir, startup_timeout, progress, fleet_file))


_GATEWAY_OPTIONS = {
    "port": "--port",
    "workers": "--workers",
    "allow_request_faults": "--allow-request-faults",
}


def _refuse_gateway_options() -> None:
    context = click.get_current_context()
    for name, flag in _GATEWAY_OPTIONS.items():
        if context.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError(f"{flag} sets the gateway, which --shards-only does not run")


def progress(line: str) -> None:
    click.echo(line, err=True)

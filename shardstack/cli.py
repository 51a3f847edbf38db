"""The `shardstack` command. Errors of every kind end here, as one line and a non-zero exit."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

import click

from shard_sim.latency import LatencyModel
from shardstack import __version__, launcher
from shardstack.bench_commands import bench
from shardstack.fault_commands import fault
from shardstack.gateway_client import GatewayError
from shardstack.latency_option import LatencyType, ShardLatencyType
from shardstack.prometheus import find_binary as find_prometheus
from shardstack.scenario_commands import scenario_group
from shardstack.stack import StackConfig, plan
from shardstack.supervisor import LaunchError
from shardstack.validation import InvalidInput


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="shardstack")
def cli() -> None:
    """A shard simulator and fan-out gateway: watch and measure fan-out under stress."""


@cli.command()
@click.option(
    "--shards",
    type=click.IntRange(1, 1000),
    default=20,
    show_default=True,
    help="Number of shard processes.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=2,
    show_default=True,
    help="Gunicorn workers serving the gateway.",
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address every process listens on."
)
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="Gateway port."
)
@click.option(
    "--shard-base-port",
    type=click.IntRange(1, 65535),
    default=9000,
    show_default=True,
    help="Shard i listens on this port + i.",
)
@click.option(
    "--latency",
    type=LatencyType(),
    default=None,
    help="Latency model of every shard: fixed:10, uniform:5,15, normal:10,3, "
    "exponential:10, lognormal:5,80 (p50,p99), pareto:2,1.5 (scale,alpha). "
    "Default: SHARD_LATENCY, else fixed:0.",
)
@click.option(
    "--shard-latency",
    type=ShardLatencyType(),
    multiple=True,
    help="Latency model of one shard, e.g. 3=fixed:500 (repeatable).",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="RNG seed for every shard: the same seed replays the same delays.",
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
    "--prometheus-port",
    type=click.IntRange(1, 65535),
    default=9090,
    show_default=True,
    help="Port Prometheus listens on.",
)
def up(
    shards: int,
    workers: int,
    host: str,
    port: int,
    shard_base_port: int,
    latency: LatencyModel | None,
    shard_latency: tuple[tuple[int, LatencyModel], ...],
    seed: int | None,
    log_dir: Path | None,
    startup_timeout: float,
    allow_request_faults: bool,
    prometheus_binary: Path | None,
    no_prometheus: bool,
    prometheus_port: int,
) -> None:
    """Run shards and the gateway on this machine until Ctrl-C.

    GATEWAY_* and SHARD_* environment variables reach the processes (e.g.
    GATEWAY_SEMAPHORE_SIZE); see the README for the full list. Prometheus, when there
    is one, scrapes every process each second.
    """
    if no_prometheus and prometheus_binary is not None:
        raise click.UsageError("--prometheus and --no-prometheus exclude each other")
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
            latency=latency,
            shard_latency=dict(shard_latency),
            seed=seed,
            allow_request_faults=allow_request_faults,
            prometheus=prometheus_binary,
            prometheus_port=prometheus_port,
        )
    )
    if searched and prometheus_binary is None:
        _progress(
            "no `prometheus` on PATH: running without it "
            "(Debian: apt-get install prometheus; or --prometheus PATH)"
        )
    if log_dir is None:
        log_dir = Path(tempfile.mkdtemp(prefix="shardstack-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(launcher.run(stack, log_dir, startup_timeout, _progress))


cli.add_command(fault)
cli.add_command(bench)
cli.add_command(scenario_group)


def _progress(line: str) -> None:
    click.echo(line, err=True)


def main() -> None:
    """Entry point: run the CLI and turn every expected failure into one line."""
    try:
        cli.main(standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("shardstack: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        _fail(exc.format_message(), exc.exit_code)
    except InvalidInput as exc:
        _fail(f"invalid input: {exc}", 2)
    except (LaunchError, GatewayError) as exc:
        _fail(str(exc), 1)
    except OSError as exc:
        _fail(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""), 1)


def _fail(message: str, code: int) -> None:
    click.echo(f"shardstack: {message}", err=True)
    sys.exit(code)

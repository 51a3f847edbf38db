"""`shardstack bench`: load a gateway (or compare variants) and print what it measured."""

from __future__ import annotations

import os
import sys
import tempfile
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import orjson
import uvloop

from shard_sim.latency import LatencyModel, parse_latency
from shardstack.bench import report
from shardstack.bench.compare import compare
from shardstack.bench.load import LoadPlan
from shardstack.bench.measure import Measurement, measure
from shardstack.bench.overload import MULTIPLES, OPEN_LOOP_CONNECTIONS, OverloadRun, overload
from shardstack.bench.processes import ProcessTree
from shardstack.bench.recording import Recording
from shardstack.bench.variants import DEFAULT_VARIANTS, OVERLOAD_VARIANTS, TAIL_VARIANTS, chosen
from shardstack.durations import parse_duration
from shardstack.gateway_client import DEFAULT_GATEWAY, GATEWAY_ENV
from shardstack.latency_option import LatencyType
from shardstack.stack import Stack, StackConfig
from shardstack.stack import plan as plan_stack
from shardstack.supervisor import raise_open_file_limit
from shardstack.validation import InvalidInput

AGGREGATE_PATH = "/api/aggregate"
# Heavy-tailed shards, as in "The Tail at Scale": p50 ~3 ms, p99 ~43 ms, p99.9 ~200 ms.
TAIL_LATENCY = "pareto:2,1.5"
TAIL_RATE = 40.0
# Shards slow enough that the shard-call permits, not the CPU, set the saturation point,
# as with real backends: 2 workers x 100 permits / 20 calls / 0.2 s = 50 aggregates/s.
OVERLOAD_LATENCY = "fixed:200"


class Progress:
    """A progress bar over the recorded seconds, with answers and rate so far (stderr)."""

    def __init__(self, label: str, duration_s: float) -> None:
        self._label = label
        self._steps = max(1, round(duration_s * 10))
        self._duration_s = duration_s
        self._bar: Any = None
        self._line = ""

    def __call__(self, elapsed_s: float, recording: Recording, done: bool) -> None:
        if self._bar is None:
            self._bar = click.progressbar(
                length=self._steps,
                label=self._label,
                file=sys.stderr,
                show_eta=False,
                item_show_func=lambda _: self._line,
            ).__enter__()
        errors = recording.sent - recording.ok
        rate = recording.answers / elapsed_s if elapsed_s else 0.0
        self._line = f"{recording.answers} answers, {rate:.0f}/s, {errors} not ok"
        target = (
            self._steps
            if done
            else min(self._steps, int(elapsed_s / self._duration_s * self._steps))
        )
        self._bar.update(max(0, target - self._bar.pos))
        if done:
            self._bar.__exit__(None, None, None)


def _seconds(field: str) -> Any:
    def convert(ctx: click.Context, param: click.Parameter, value: str) -> float:
        return parse_duration(value, field)

    return convert


@click.command()
@click.argument("url", required=False)
@click.option(
    "-c",
    "--connections",
    type=click.IntRange(1, 20_000),
    default=32,
    show_default=True,
    help="Closed loop: requests in flight. Open loop: the most at once.",
)
@click.option(
    "--rate",
    type=click.FloatRange(0, 1_000_000, min_open=True),
    default=None,
    help="Open loop: requests per second, latency counted from when each was due.",
)
@click.option(
    "-d",
    "--duration",
    default="10s",
    show_default=True,
    callback=_seconds("--duration"),
    help="Recorded time per run.",
)
@click.option(
    "--warmup",
    default="2s",
    show_default=True,
    callback=_seconds("--warmup"),
    help="Load before recording, not counted.",
)
@click.option(
    "--timeout",
    default="10s",
    show_default=True,
    callback=_seconds("--timeout"),
    help="A request with no answer by then counts as a timeout.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the results, with latency CDFs, to this file.",
)
@click.option(
    "--compare",
    "compare_mode",
    is_flag=True,
    help="Start shards and run each variant against them in turn.",
)
@click.option(
    "--tail",
    "tail_mode",
    is_flag=True,
    help="The tail-latency experiment: --compare of the gateway without and with hedging, "
    f"shards at {TAIL_LATENCY} unless --latency, open loop at {TAIL_RATE:g}/s unless --rate.",
)
@click.option(
    "--overload",
    "overload_mode",
    is_flag=True,
    help="The overload experiment: per variant its peak (closed loop, -c), then open loop "
    f"at {' and '.join(f'{m:g}' for m in MULTIPLES)} times it (up to "
    f"{OPEN_LOOP_CONNECTIONS} at once); shards at {OVERLOAD_LATENCY} unless --latency.",
)
@click.option(
    "--variants",
    default=None,
    help=f"With --compare: which, in order [default: {','.join(DEFAULT_VARIANTS)}; "
    f"with --tail: {','.join(TAIL_VARIANTS)}; with --overload: {','.join(OVERLOAD_VARIANTS)}].",
)
@click.option(
    "--rounds",
    type=click.IntRange(1, 20),
    default=1,
    show_default=True,
    help="With --compare: runs per variant, alternating; the median is kept.",
)
@click.option(
    "--shards",
    type=click.IntRange(1, 1000),
    default=20,
    show_default=True,
    help="With --compare: shard processes.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="With --compare: gunicorn workers of every variant.",
)
@click.option(
    "--latency",
    type=LatencyType(),
    default=None,
    help="With --compare: every shard's latency model (default fixed:0).",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8000,
    show_default=True,
    help="With --compare: where each variant listens.",
)
@click.option(
    "--shard-base-port",
    type=click.IntRange(1, 65535),
    default=9000,
    show_default=True,
    help="With --compare: shard i listens on this port + i.",
)
def bench(
    url: str | None,
    connections: int,
    rate: float | None,
    duration: float,
    warmup: float,
    timeout: float,
    json_path: Path | None,
    compare_mode: bool,
    tail_mode: bool,
    overload_mode: bool,
    variants: str | None,
    rounds: int,
    shards: int,
    workers: int,
    latency: LatencyModel | None,
    port: int,
    shard_base_port: int,
) -> None:
    """Load a gateway and report throughput, latency percentiles, errors by kind, and the
    server's CPU per answer and peak RSS (when it runs on this machine).

    \b
    shardstack bench                          # the local gateway, 32 connections, 10s
    shardstack bench --rate 200 -d 30s        # open loop at 200/s
    shardstack bench --compare                # gateway (aiohttp, httpx) vs seed vs floor
    shardstack bench --tail                   # p99 without and with hedging
    shardstack bench --overload --workers 2   # goodput at 2x and 10x the peak, vs seed
    """
    if duration <= 0:
        raise InvalidInput.field("--duration", "must be more than 0")
    raise_open_file_limit()
    modes = [flag for flag, on in (("--compare", compare_mode), ("--tail", tail_mode),
             ("--overload", overload_mode)) if on]  # fmt: skip
    if len(modes) > 1:
        raise click.UsageError(f"{' and '.join(modes)} are different experiments; pick one")
    if modes and url is not None:
        raise click.UsageError(f"{modes[0]} starts its own servers; give no URL")
    if overload_mode:
        if rate is not None:
            raise click.UsageError("--overload sets its own rates from each variant's peak")
        if click.get_current_context().get_parameter_source("rounds") is not _DEFAULT:
            raise click.UsageError("--rounds needs --compare or --tail")
        runs = _overload(
            variants or ",".join(OVERLOAD_VARIANTS), shards, workers,
            latency or parse_latency(OVERLOAD_LATENCY), port, shard_base_port,
            lambda target: LoadPlan(target, connections, None, duration, warmup, timeout),
        )  # fmt: skip
        click.echo(report.overload_table(runs))
        results = [m for run in runs for m in (run.peak, *run.overloaded)]
    elif compare_mode or tail_mode:
        if tail_mode:
            latency = latency or parse_latency(TAIL_LATENCY)
            rate = rate or TAIL_RATE
        names = variants or ",".join(TAIL_VARIANTS if tail_mode else DEFAULT_VARIANTS)
        results = _compare(
            names, rounds, shards, workers, latency, port, shard_base_port,
            lambda target: LoadPlan(target, connections, rate, duration, warmup, timeout),
        )  # fmt: skip
        click.echo(report.table(results, ratios_to=("seed", "floor")))
    else:
        _refuse_compare_options(click.get_current_context())
        target = _target(url)
        load = LoadPlan(target, connections, rate, duration, warmup, timeout)
        server = ProcessTree.listening_on_url(target)
        click.echo(
            f"{target}: {load.describe()}, {duration:g}s after {warmup:g}s warm-up", err=True
        )
        result = uvloop.run(measure("gateway", load, server, Progress("load", duration)))
        if server is None:
            click.echo("(the server is not on this machine: no CPU or memory figures)", err=True)
        results = [result]
        click.echo(report.table(results))
    if json_path is not None:
        json_path.write_bytes(
            orjson.dumps([m.as_dict() for m in results], option=orjson.OPT_INDENT_2)
        )
    if not any(m.recording.answers for m in results):
        raise click.ClickException(f"no answers: {report.errors(results[0])}")


_COMPARE_ONLY = ("variants", "rounds", "shards", "workers", "latency", "port", "shard_base_port")


_DEFAULT = click.core.ParameterSource.DEFAULT


def _refuse_compare_options(ctx: click.Context) -> None:
    for name in _COMPARE_ONLY:
        if ctx.get_parameter_source(name) is not _DEFAULT:
            option = "--" + name.replace("_", "-")
            raise click.UsageError(f"{option} needs --compare, --tail or --overload")


def _target(url: str | None) -> str:
    """The URL to load: the gateway's aggregate route unless a path is given."""
    base = url or os.environ.get(GATEWAY_ENV) or DEFAULT_GATEWAY
    parts = urllib.parse.urlsplit(base)
    if parts.scheme != "http" or not parts.hostname:
        raise InvalidInput.field("URL", f"{base!r} is not an http:// URL")
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError as exc:
        raise InvalidInput.field("URL", f"{base!r}: {exc}") from None
    return base if parts.path not in ("", "/") else base.rstrip("/") + AGGREGATE_PATH


def _compare(
    variants: str,
    rounds: int,
    shards: int,
    workers: int,
    latency: LatencyModel | None,
    port: int,
    shard_base_port: int,
    load: Callable[[str], LoadPlan],
) -> list[Measurement]:
    picked = chosen(_names(variants))
    stack, log_dir = _lab_stack(shards, workers, latency, port, shard_base_port)
    plan = load(stack.gateway_url + AGGREGATE_PATH)
    return uvloop.run(
        compare(
            stack, picked, plan, rounds, log_dir, _echo,
            lambda label: Progress(label, plan.duration_s),
        )
    )  # fmt: skip


def _overload(
    variants: str,
    shards: int,
    workers: int,
    latency: LatencyModel,
    port: int,
    shard_base_port: int,
    load: Callable[[str], LoadPlan],
) -> list[OverloadRun]:
    picked = chosen(_names(variants))
    stack, log_dir = _lab_stack(shards, workers, latency, port, shard_base_port)
    saturation = load(stack.gateway_url + AGGREGATE_PATH)
    return uvloop.run(
        overload(
            stack, picked, saturation, log_dir, _echo,
            lambda label: Progress(label, saturation.duration_s),
        )
    )  # fmt: skip


def _names(variants: str) -> list[str]:
    return [name.strip() for name in variants.split(",") if name.strip()]


def _lab_stack(
    shards: int, workers: int, latency: LatencyModel | None, port: int, shard_base_port: int
) -> tuple[Stack, Path]:
    """The stack whose shards the experiment starts, and a new directory for its logs."""
    stack = plan_stack(
        StackConfig(
            shards=shards, workers=workers, gateway_port=port,
            shard_base_port=shard_base_port, latency=latency,
        )
    )  # fmt: skip
    return stack, Path(tempfile.mkdtemp(prefix="shardstack-bench-"))


def _echo(line: str) -> None:
    click.echo(line, err=True)

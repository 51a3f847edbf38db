"""`shardstack bench run | compare | tail | overload`: load a gateway, or start shards and
put variants side by side, and print what was measured. Each command declares only the
options it takes."""

from __future__ import annotations

import os
import tempfile
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson
import uvloop

from shardstack.bench import tables
from shardstack.bench.calibrate import calibrate as calibrate_stack
from shardstack.bench.compare import compare as compare_variants
from shardstack.bench.load import DEFAULT_REQUEST_IDS, LoadPlan
from shardstack.bench.measure import Measurement, measure
from shardstack.bench.overload import MULTIPLES, OPEN_LOOP_CONNECTIONS
from shardstack.bench.overload import overload as overload_variants
from shardstack.bench.processes import ProcessTree
from shardstack.bench.variants import (
    DEFAULT_VARIANTS,
    OVERLOAD_VARIANTS,
    TAIL_VARIANTS,
    VARIANTS,
    Variant,
    chosen,
)
from shardstack.cli.options import LATENCY_MODELS, LatencyType, seconds, stack_options, stacked
from shardstack.cli.progress import Progress
from shardstack.control.client import DEFAULT_GATEWAY, GATEWAY_ENV
from shardstack.launcher.plan import Stack, StackConfig, plan
from shardstack.launcher.supervisor import raise_open_file_limit
from shardstack_kernel.request_id import checked_request_id
from shardstack_kernel.validation import InvalidInput

_F = TypeVar("_F", bound=Callable[..., Any])

AGGREGATE_PATH = "/api/aggregate"
# Heavy-tailed shards, as in "The Tail at Scale": p50 ~3 ms, p99 ~43 ms, p99.9 ~200 ms.
TAIL_LATENCY = "pareto:2,1.5"
TAIL_RATE = 40.0
# Shards slow enough that the shard-call permits, not the CPU, set the saturation point,
# as with real backends: 2 workers x 100 permits / 20 calls / 0.2 s = 50 aggregates/s.
OVERLOAD_LATENCY = "fixed:200"
# A model with a tail, at a rate far from saturation: what the platform adds, not queueing.
CALIBRATE_LATENCY = "lognormal:5,40"
CALIBRATE_RATE = 50.0
# Where the former flags went, for a user who types them.
_MOVED = {"--compare": "compare", "--tail": "tail", "--overload": "overload"}


class _BenchGroup(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        for flag, command in _MOVED.items():
            if flag in args:
                raise click.UsageError(f"bench {flag} is now `shardstack bench {command}`")
        return super().parse_args(ctx, args)


@click.group(cls=_BenchGroup)
def bench() -> None:
    """Load a gateway and report throughput, latency percentiles, errors by kind, and the
    servers' CPU per answer and peak RSS (when they run on this machine).

    \b
    shardstack bench run                      # the local gateway, 32 connections, 10s
    shardstack bench run --rate 200 -d 30s    # open loop at 200/s
    shardstack bench compare                  # gateway (aiohttp, httpx) vs seed vs floor
    shardstack bench tail                     # p99 without and with hedging
    shardstack bench overload --workers 2     # goodput at 2x and 10x the peak, vs seed
    shardstack bench calibrate                # what the shards were asked vs what was done
    """


def _request_id_prefix(_ctx: click.Context, _param: click.Parameter, value: str) -> str | None:
    if value == "gateway":
        return None
    try:
        return checked_request_id(value, "--request-ids")
    except InvalidInput as exc:
        raise click.BadParameter(str(exc).removeprefix("--request-ids: ")) from None


def _load_options(rate: bool = True) -> Callable[[_F], _F]:
    """-c, -d, --warmup, --timeout, --json, and (unless the command sets rates) --rate."""
    options = [
        click.option(
            "-c",
            "--connections",
            type=click.IntRange(1, 20_000),
            default=32,
            show_default=True,
            help="Closed loop: requests in flight. Open loop: the most at once.",
        ),
        click.option(
            "-d",
            "--duration",
            default="10s",
            show_default=True,
            callback=seconds("--duration"),
            help="Recorded time per run.",
        ),
        click.option(
            "--warmup",
            default="2s",
            show_default=True,
            callback=seconds("--warmup"),
            help="Load before recording, not counted.",
        ),
        click.option(
            "--timeout",
            default="10s",
            show_default=True,
            callback=seconds("--timeout"),
            help="A request with no answer by then counts as a timeout.",
        ),
        click.option(
            "--json",
            "json_path",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Also write the results, with latency CDFs, to this file.",
        ),
        click.option(
            "--request-ids",
            default=DEFAULT_REQUEST_IDS,
            show_default=True,
            callback=_request_id_prefix,
            help="Send X-Request-Id PREFIX-0000001, PREFIX-0000002, ... in order, so runs "
            "against shards of the same seed see the same shard decisions per request; "
            "'gateway' lets the gateway make them.",
        ),
    ]
    if rate:
        options.append(
            click.option(
                "--rate",
                type=click.FloatRange(0, 1_000_000, min_open=True),
                default=None,
                help="Open loop: requests per second, latency counted from when each was due.",
            )
        )
    return stacked(options)


def _lab_options(variants: Sequence[str], latency: str | None, rounds: bool) -> Callable[[_F], _F]:
    """What the commands that start their own shards take: the stack, variants, latency."""
    options = [
        stack_options(workers=1, what="each variant"),
        click.option(
            "--variants",
            default=",".join(variants),
            show_default=True,
            help=f"Which, in order; known: {', '.join(VARIANTS)}.",
        ),
        click.option(
            "--latency",
            type=LatencyType(),
            default=latency,
            show_default=latency is not None,
            help=f"Every shard's latency model: {LATENCY_MODELS}"
            + ("" if latency else " [default: fixed:0]"),
        ),
    ]
    if rounds:
        options.append(
            click.option(
                "--rounds",
                type=click.IntRange(1, 20),
                default=1,
                show_default=True,
                help="Runs per variant, alternating; the median is kept.",
            )
        )
    return stacked(options)


@bench.command()
@click.argument("url", required=False)
@_load_options()
def run(url: str | None, **load: Any) -> None:
    """Load the gateway at URL (default: SHARDSTACK_GATEWAY, else the local one).

    Without a path, URL's aggregate route is loaded.
    """
    target = _target(url)
    plan_ = _load_plan(target, load)
    server = ProcessTree.listening_on_url(target)
    click.echo(
        f"{target}: {plan_.describe()}, {plan_.duration_s:g}s after {plan_.warmup_s:g}s warm-up",
        err=True,
    )
    result = uvloop.run(measure("gateway", plan_, server, Progress("load", plan_.duration_s)))
    if server is None:
        click.echo("(the server is not on this machine: no CPU or memory figures)", err=True)
    click.echo(tables.table([result]))
    _finish([result], load["json_path"])


@bench.command()
@_lab_options(DEFAULT_VARIANTS, None, rounds=True)
@_load_options()
def compare(**options: Any) -> None:
    """Start shards and run each variant against them in turn, with the same load."""
    _compared(options)


@bench.command(
    help="The tail-latency experiment: `compare` of the gateway without and with hedging, "
    f"open loop at {TAIL_RATE:g}/s unless --rate."
)
@_lab_options(TAIL_VARIANTS, TAIL_LATENCY, rounds=True)
@_load_options()
def tail(**options: Any) -> None:
    options["rate"] = options["rate"] or TAIL_RATE
    _compared(options)


@bench.command(
    help="The overload experiment: per variant its peak (closed loop, -c), then open loop "
    f"at {' and '.join(f'{m:g}' for m in MULTIPLES)} times it (up to "
    f"{OPEN_LOOP_CONNECTIONS} at once): goodput, latency and shed requests at each."
)
@_lab_options(OVERLOAD_VARIANTS, OVERLOAD_LATENCY, rounds=False)
@_load_options(rate=False)
def overload(**options: Any) -> None:
    stack, log_dir = _lab_stack(options)
    saturation = _load_plan(stack.gateway_url + AGGREGATE_PATH, options)
    runs = uvloop.run(
        overload_variants(
            stack, _variants(options), saturation, log_dir, _echo,
            lambda label: Progress(label, saturation.duration_s),
        )
    )  # fmt: skip
    click.echo(tables.overload_table(runs))
    _finish([m for run in runs for m in (run.peak, *run.overloaded)], options["json_path"])


@bench.command(
    help="Start shards and the gateway, load them open loop (default "
    f"{CALIBRATE_RATE:g}/s) and print, per call and per aggregate, the latency model's "
    "percentiles next to what each layer achieved: injected and served by the shards, "
    "observed by the gateway, and the aggregate against the model's slowest of N."
)
@stack_options()
@click.option(
    "--latency",
    type=LatencyType(),
    default=CALIBRATE_LATENCY,
    show_default=True,
    help=f"Every shard's latency model: {LATENCY_MODELS}",
)
@_load_options()
def calibrate(**options: Any) -> None:
    options["rate"] = options["rate"] or CALIBRATE_RATE
    stack, log_dir = _lab_stack(options)
    load = _load_plan(stack.gateway_url + AGGREGATE_PATH, options)
    report = uvloop.run(
        calibrate_stack(stack, load, log_dir, _echo, Progress("calibrate", load.duration_s))
    )
    click.echo(tables.calibration_table(report))
    layers = report.layers
    click.echo(
        f"{layers.calls:,} shard calls, {layers.calls_not_ok:,} not ok"
        + (f", {layers.unknown:,} without Server-Timing" if layers.unknown else "")
        + f"; load: {tables.errors(report.measurement)} errors",
    )
    json_path = options["json_path"]
    if json_path is not None:
        json_path.write_bytes(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2))
    if not report.measurement.recording.ok:
        raise click.ClickException(f"no answers: {tables.errors(report.measurement)}")


def _compared(options: dict[str, Any]) -> None:
    stack, log_dir = _lab_stack(options)
    load = _load_plan(stack.gateway_url + AGGREGATE_PATH, options)
    results, limit = uvloop.run(
        compare_variants(
            stack, _variants(options), load, options["rounds"], log_dir, _echo,
            lambda label: Progress(label, load.duration_s),
        )
    )  # fmt: skip
    click.echo(tables.table(results, ratios_to=("seed", "floor", "floor-pyreqwest")))
    for line in tables.hedge_lines(results):
        click.echo(line)
    if limit is None:
        click.echo("physical limit: not measured (wrk is not installed)")
    else:
        cpu = {m.name: m.cpu_ms_per_answer() for m in results}
        measured = {name: ms for name, ms in cpu.items() if ms is not None}
        click.echo(limit.describe(len(stack.gateway.shard_urls), measured))
    _finish(results, options["json_path"])


def _load_plan(target: str, options: dict[str, Any]) -> LoadPlan:
    if options["duration"] <= 0:
        raise InvalidInput.field("--duration", "must be more than 0")
    raise_open_file_limit()
    return LoadPlan(
        target,
        options["connections"],
        options.get("rate"),
        options["duration"],
        options["warmup"],
        options["timeout"],
        request_ids=options["request_ids"],
    )


def _finish(results: list[Measurement], json_path: Path | None) -> None:
    if json_path is not None:
        json_path.write_bytes(
            orjson.dumps([m.as_dict() for m in results], option=orjson.OPT_INDENT_2)
        )
    if not any(m.recording.answers for m in results):
        raise click.ClickException(f"no answers: {tables.errors(results[0])}")


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


def _variants(options: dict[str, Any]) -> list[Variant]:
    return chosen([name.strip() for name in options["variants"].split(",") if name.strip()])


def _lab_stack(options: dict[str, Any]) -> tuple[Stack, Path]:
    """The stack whose shards the experiment starts, and a new directory for its logs."""
    stack = plan(
        StackConfig(
            shards=options["shards"],
            workers=options["workers"],
            gateway_port=options["port"],
            shard_base_port=options["shard_base_port"],
            shards_per_process=options["shards_per_process"],
            latency=options["latency"],
        )
    )
    return stack, Path(tempfile.mkdtemp(prefix="shardstack-bench-"))


def _echo(line: str) -> None:
    click.echo(line, err=True)

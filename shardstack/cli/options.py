"""Parameter types and options more than one command takes, each declared once, with
defaults taken from the settings classes and the kernel's topology."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from gateway.settings import GatewaySettings
from shard_sim.capacity import UNBOUNDED, Capacity, parse_capacity
from shard_sim.settings import ShardSettings
from shardstack_kernel import topology
from shardstack_kernel.durations import parse_duration
from shardstack_kernel.latency import LatencyModel, parse_latency
from shardstack_kernel.validation import InvalidInput

_F = TypeVar("_F", bound=Callable[..., Any])

LATENCY_MODELS = (
    "fixed:10, uniform:5,15, normal:10,3, exponential:10, lognormal:5,80 (p50,p99), "
    "pareto:2,1.5 (scale,alpha), percentiles:p50=5,p90=20,p99=80, empirical:FILE"
)


class LatencyType(click.ParamType[LatencyModel, Any]):
    name = "MODEL"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> LatencyModel:
        try:
            return parse_latency(value)
        except InvalidInput as exc:
            self.fail(str(exc), param, ctx)


class CapacityType(click.ParamType[Capacity | str, Any]):
    """A `Capacity`, or the word `unbounded` (which overrides SHARD_CAPACITY)."""

    name = "SPEC"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Capacity | str:
        try:
            return parse_capacity(value) or UNBOUNDED
        except InvalidInput as exc:
            self.fail(str(exc), param, ctx)


class ShardLatencyType(click.ParamType[tuple[int, LatencyModel], Any]):
    name = "ID=MODEL"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int, LatencyModel]:
        shard, sep, model = str(value).partition("=")
        if not sep or not shard.strip().isdigit():
            self.fail(f"{value!r} is not ID=MODEL, e.g. 3=fixed:500", param, ctx)
        return int(shard), LatencyType().convert(model, param, ctx)


def seconds(option: str) -> Callable[[click.Context, click.Parameter, str], float]:
    """A callback turning `30s`, `2m`, `500ms` into seconds, or naming `option` if not."""

    def convert(ctx: click.Context, param: click.Parameter, value: str) -> float:
        return parse_duration(value, option)

    return convert


def stack_options(
    workers: int = GatewaySettings.model_fields["workers"].default, what: str = ""
) -> Callable[[_F], _F]:
    """--shards, --workers, --port, --shard-base-port, --shards-per-process: the local
    stack's shape."""
    return stacked(
        [
            click.option(
                "--shards",
                type=click.IntRange(1, 1000),
                default=topology.SHARD_COUNT,
                show_default=True,
                help="Number of shard processes.",
            ),
            click.option(
                "--workers",
                type=click.IntRange(1, 256),
                default=workers,
                show_default=True,
                help=f"Gunicorn workers serving {what or 'the gateway'}.",
            ),
            click.option(
                "--port",
                type=click.IntRange(1, 65535),
                default=topology.GATEWAY_PORT,
                show_default=True,
                help=f"Where {what or 'the gateway'} listens.",
            ),
            click.option(
                "--shard-base-port",
                type=click.IntRange(1, 65535),
                default=topology.SHARD_BASE_PORT,
                show_default=True,
                help="Shard i listens on this port + i.",
            ),
            click.option(
                "--shards-per-process",
                type=click.IntRange(1, 1000),
                default=ShardSettings.model_fields["pack"].default,
                show_default=True,
                help="Shards one process serves, each with its own ports, state and faults: "
                "fewer processes than shards on a machine with fewer cores (a kill -9 then "
                "takes them all). Compose keeps one container per shard.",
            ),
        ]
    )


def stacked(options: Sequence[Callable[[Any], Any]]) -> Callable[[_F], _F]:
    """Several click decorators as one, applied in the order written."""

    def decorate(command: _F) -> _F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate

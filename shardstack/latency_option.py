"""Latency models as click parameter types, for every command that takes one."""

from __future__ import annotations

from typing import Any

import click

from shard_sim.latency import LatencyModel, parse_latency
from shardstack.validation import InvalidInput


class LatencyType(click.ParamType[LatencyModel, Any]):
    name = "MODEL"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> LatencyModel:
        try:
            return parse_latency(value)
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

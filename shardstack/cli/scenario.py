"""`shardstack scenario ...`: check and run scenario files against a gateway."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

import click

from gateway import scenarios
from shardstack.cli.connection import connect, gateway_option, token_option
from shardstack.control.client import GatewayClient
from shardstack.control.scenario import run as play
from shardstack_kernel.topology import striped_zones

_path = click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))


@click.group(name="scenario")
def scenario_group() -> None:
    """Seeded fault timelines from YAML files (examples in scenarios/)."""


@scenario_group.command()
@_path
@click.option(
    "--shards",
    "shard_count",
    type=click.IntRange(1, 10000),
    default=None,
    help="Plan for this many shards without asking a gateway.",
)
@click.option(
    "--zones",
    "zone_count",
    type=click.IntRange(1, 10000),
    default=None,
    help="With --shards: shard i in zone z{i mod N}, as `shardstack up --zones N` places them.",
)
@gateway_option
def check(file: Path, shard_count: int | None, zone_count: int | None, gateway: str) -> None:
    """Validate FILE and print the timeline it resolves to (nothing is injected; with
    --shards no gateway is asked, else only its shard count and zones, which need no
    token)."""
    loaded = scenarios.load(file)
    if zone_count is not None and shard_count is None:
        raise click.UsageError(
            "--zones plans for --shards; without it the gateway's zones are used"
        )
    zones: list[str | None] | None = None
    if zone_count is not None:
        zones = list(striped_zones(shard_count or 0, zone_count))
    if shard_count is None:
        with connect(gateway, None, admin=False) as client:
            shard_count, zones = _topology(client)
    click.echo(f"{loaded.name}: seed {loaded.seed}, {shard_count} shards")
    for step in scenarios.plan(loaded, shard_count, zones):
        click.echo(f"[{step.at_s:8.2f}s] {step.describe()}")


@scenario_group.command()
@_path
@click.option("--keep", is_flag=True, help="Leave the scenario's faults in place at the end.")
@gateway_option
@token_option
def run(file: Path, keep: bool, gateway: str, token: str | None) -> None:
    """Run FILE's timeline; Ctrl-C (or SIGTERM) stops it and removes what it injected."""
    loaded = scenarios.load(file)
    with connect(gateway, token) as client:
        steps = scenarios.plan(loaded, *_topology(client))
        total_s = scenarios.end_s(steps)
        click.echo(f"{loaded.name}: {len(steps)} steps over {total_s:g}s, seed {loaded.seed}")

        def inject(step: scenarios.PlannedStep) -> str:
            _, body = client.request(
                "POST", "/admin/faults", json={**step.fault, "shards": step.shards}, accept=(409,)
            )
            failed = [entry for entry in body["shards"] if entry["status"] != "added"]
            outcome = step.describe()
            if failed:
                outcome += f"  ({len(failed)} shards failed: {failed[0].get('detail')})"
            return outcome

        # SIGTERM (docker stop, kill, a supervisor) cleans up as Ctrl-C does.
        signal.signal(signal.SIGTERM, _terminated)
        try:
            took_s = play(steps, inject, click.echo)
        except (KeyboardInterrupt, _Terminated) as stopped:
            click.echo("interrupted; removing the scenario's faults", err=True)
            _remove(client, steps)
            raise click.exceptions.Exit(143 if isinstance(stopped, _Terminated) else 130) from None
        if not keep:
            _remove(client, steps)
        click.echo(f"done in {took_s:.1f}s")


class _Terminated(Exception):
    """SIGTERM arrived while the scenario ran."""


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def _topology(client: GatewayClient) -> tuple[int, list[str | None] | None]:
    """How many shards the gateway has, and their zones if it has any."""
    _, body = client.request("GET", "/readyz", accept=(503,))
    return int(body["shards"]), body.get("zones")


def _remove(client: GatewayClient, steps: list[scenarios.PlannedStep]) -> None:
    for step in steps:
        client.request("DELETE", f"/admin/faults/{step.fault['id']}", accept=(404,))

"""`shardstack token`: the admin token the CLI uses, or a container stack's, read through
the engine and saved so every later command finds it."""

from __future__ import annotations

import click

from shardstack.cli.connection import gateway_option, token_option
from shardstack.control.client import resolve_token
from shardstack.control.engine_token import read_stack_token
from shardstack.control.token_store import save_token


@click.command()
@click.option(
    "--compose",
    "compose",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[PROJECT]",
    help="Read it from the running compose stack (PROJECT, else the only one) and save it "
    "for its published gateway (or, for the shards-only profile, only print it).",
)
@click.option(
    "--swarm",
    "swarm",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[STACK]",
    help="The same for a swarm stack (docker stack deploy).",
)
@gateway_option
@token_option
def token(compose: str | None, swarm: str | None, gateway: str, token: str | None) -> None:
    """Print the admin token: the one the CLI would send to --gateway, or with --compose
    or --swarm the container stack's (then saved, so `shardstack fault ...` needs no
    --token)."""
    if compose is not None and swarm is not None:
        raise click.UsageError("--compose and --swarm name two stacks; pass one")
    if compose is None and swarm is None:
        click.echo(resolve_token(gateway, token))
        return
    found = (
        read_stack_token("compose", compose or None)
        if compose is not None
        else read_stack_token("swarm", swarm or None)
    )
    click.echo(found.token)
    if found.shards_only:
        click.echo(f"the shards of {found.project}, without a gateway, from {found.url}", err=True)
        return
    saved = save_token(found.url, found.token)
    click.echo(f"saved for {found.url} ({found.project}) in {saved}", err=True)

"""The options of the commands that talk to a running gateway, and their client.

Apart from `options.py` (the local stack's shape, with defaults read from the services'
settings), so that `shardstack fault list` imports no settings class.
"""

from __future__ import annotations

import click

from shardstack.control.client import DEFAULT_GATEWAY, GATEWAY_ENV, GatewayClient, resolve_token

gateway_option = click.option(
    "--gateway",
    envvar=GATEWAY_ENV,
    default=DEFAULT_GATEWAY,
    show_default=True,
    help=f"Gateway URL (or {GATEWAY_ENV}), e.g. the compose stack's.",
)
token_option = click.option(
    "--token",
    default=None,
    help="Admin token; default SHARDSTACK_ADMIN_TOKEN, else the one `shardstack up` saved.",
)


def connect(gateway: str, token: str | None, admin: bool = True) -> GatewayClient:
    """A client for `gateway`; with `admin`, one that carries the admin token (or fails
    saying where to find one)."""
    return GatewayClient(gateway, resolve_token(gateway, token) if admin else token)

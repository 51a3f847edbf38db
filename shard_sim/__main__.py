"""`python -m shard_sim`: serve one shard, configured by `SHARD_*` environment variables."""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError

from shard_sim.app import create_app
from shard_sim.server import FaultableProtocol, ShardServer
from shard_sim.settings import ENV_PREFIX, ShardSettings
from shardstack.common.validation import InvalidInput


def main() -> int:
    try:
        settings = ShardSettings()
    except ValidationError as exc:
        print(
            f"shard: invalid setting: {InvalidInput.from_settings(exc, ENV_PREFIX)}",
            file=sys.stderr,
        )
        return 2
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http=FaultableProtocol,
        access_log=False,
        log_level=settings.log_level,
        # Keep idle upstream connections open longer than the gateway's pool keeps them,
        # so the gateway never reuses a connection the shard is about to close.
        timeout_keep_alive=75,
        # A hung request (the hang fault) must not hold the shard up on shutdown.
        timeout_graceful_shutdown=3,
    )
    server = ShardServer(config, (settings.host, settings.port), settings.admin_address)
    app.state.shard.listener = server
    try:
        sockets = server.bind()
    except OSError as exc:
        print(f"shard: cannot listen: {exc}", file=sys.stderr)
        return 1
    server.run(sockets=sockets)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m shard_sim`: serve one shard, configured by `SHARD_*` environment variables."""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError

from shard_sim.app import create_app
from shard_sim.settings import ENV_PREFIX, ShardSettings
from shardstack.validation import InvalidInput


def main() -> int:
    try:
        settings = ShardSettings()
    except ValidationError as exc:
        print(
            f"shard: invalid setting: {InvalidInput.from_settings(exc, ENV_PREFIX)}",
            file=sys.stderr,
        )
        return 2
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level=settings.log_level,
        # Keep idle upstream connections open longer than the gateway's pool keeps them,
        # so the gateway never reuses a connection the shard is about to close.
        timeout_keep_alive=75,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m shard_sim`: serve one shard (or `SHARD_PACK` of them), configured by
`SHARD_*` environment variables."""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError

from shard_sim.app import ByPort, create_app
from shard_sim.decision_log import DecisionLog
from shard_sim.server import DataPort, ShardServer, listening
from shard_sim.settings import ENV_PREFIX, ShardSettings
from shardstack_kernel.http_protocol import ConnectionTimeouts, HeadLimitedProtocol
from shardstack_kernel.validation import InvalidInput

# A hung request (the hang fault) must not hold the shard up on shutdown.
GRACEFUL_SHUTDOWN_S = 3.0
# An idle admin connection closes after this (uvicorn's default); the gateway's admin
# client keeps its own for less (gateway/shard_admin.py).
ADMIN_KEEP_ALIVE_S = 5


def main() -> int:
    try:
        settings = ShardSettings()
    except ValidationError as exc:
        print(
            f"shard: invalid setting: {InvalidInput.from_settings(exc, ENV_PREFIX)}",
            file=sys.stderr,
        )
        return 2
    apps, data_ports, admin_sockets = {}, [], []
    timeouts = ConnectionTimeouts(settings.header_timeout_s, settings.body_timeout_s)
    try:
        decision_log = None if settings.decision_log is None else DecisionLog(settings.decision_log)
    except OSError as exc:
        print(f"shard: cannot open SHARD_DECISION_LOG: {exc}", file=sys.stderr)
        return 2
    try:
        for shard in settings.packed():
            app = create_app(shard, decision_log)
            port = DataPort(
                app.state.shard, (shard.host, shard.port), timeouts, settings.idle_timeout_s
            )
            app.state.shard.listener = port
            data_ports.append(port)
            port.bind()
            admin_sockets.append(listening(shard.admin_address))
            apps[shard.admin_address[1]] = app
    except OSError as exc:
        print(f"shard: cannot listen: {exc}", file=sys.stderr)
        return 1
    config = uvicorn.Config(
        ByPort(apps),
        loop="uvloop",
        http=HeadLimitedProtocol.configured(timeouts),
        timeout_keep_alive=ADMIN_KEEP_ALIVE_S,
        lifespan="off",
        access_log=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=int(GRACEFUL_SHUTDOWN_S),
    )
    try:
        ShardServer(config, data_ports, GRACEFUL_SHUTDOWN_S).run(sockets=admin_sockets)
    finally:
        if decision_log is not None:
            decision_log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What one gateway worker holds for its lifetime, made by the lifespan and handed to routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from pydantic import SecretStr

from gateway.admission import Admission
from gateway.fanout import FanOut
from gateway.metrics import GatewayMetrics
from gateway.panel import PanelSource
from gateway.settings import GatewaySettings
from gateway.shard_admin import ShardAdmin
from gateway.shards import Shard
from gateway.upstream import UpstreamClient
from shardstack_kernel.http_protocol import ConnectionTimeouts


@dataclass(frozen=True, slots=True)
class GatewayState:
    settings: GatewaySettings
    shards: tuple[Shard, ...]
    upstream: UpstreamClient
    fanout: FanOut
    admission: Admission
    admin: ShardAdmin
    admin_token: SecretStr
    metrics: GatewayMetrics
    panel: PanelSource
    # What a client connection may take to send a request (gateway/front_door.py).
    connection_timeouts: ConnectionTimeouts


# Async, so FastAPI calls it in the event loop: a plain `def` dependency is run in its
# thread pool, a hop through a worker thread on every request.
async def _gateway_state(request: Request) -> GatewayState:
    state: GatewayState = request.state.gateway
    return state


Gateway = Annotated[GatewayState, Depends(_gateway_state)]

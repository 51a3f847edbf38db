"""The shard's ASGI app factory.

Plain Starlette rather than FastAPI: a shard is a tiny fixed API, and twenty of them
run at once, so the smaller import (about 7 MiB less per process) is worth more here
than generated OpenAPI docs.
"""

from __future__ import annotations

from starlette.applications import Starlette

from shard_sim.routes import admin, data
from shard_sim.settings import ShardSettings
from shard_sim.state import ShardState
from shardstack.problem import EXCEPTION_HANDLERS


def create_app(settings: ShardSettings | None = None) -> Starlette:
    settings = settings or ShardSettings()
    app = Starlette(
        routes=[*data.ROUTES, *admin.ROUTES],
        exception_handlers=dict(EXCEPTION_HANDLERS),
    )
    app.state.shard = ShardState.from_settings(settings)
    return app

"""The shard's ASGI app factory.

Plain Starlette rather than FastAPI (README, design notes: twenty of them run at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette

from shard_sim.listener_watch import keep_listener_in_step
from shard_sim.routes import admin, data, exposition
from shard_sim.settings import ShardSettings
from shard_sim.state import NoListener, ShardState
from shardstack.common.admin_token import token_or_new
from shardstack.common.problem import EXCEPTION_HANDLERS
from shardstack.common.tasks import cancel_and_wait

_log = logging.getLogger("shard_sim")


def create_app(settings: ShardSettings | None = None) -> Starlette:
    """The server that runs the app sets `state.shard.listener` (for `down`)."""
    settings = settings or ShardSettings()
    token = token_or_new(settings.admin_token, _log, f"shard {settings.id}")
    state = ShardState.from_settings(settings, token, NoListener())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        watch = asyncio.create_task(keep_listener_in_step(state))
        try:
            yield
        finally:
            await cancel_and_wait(watch)

    app = Starlette(
        routes=[*data.ROUTES, *admin.ROUTES, *exposition.ROUTES],
        exception_handlers=dict(EXCEPTION_HANDLERS),
        lifespan=lifespan,
    )
    # As on the gateway: `DELETE /admin/faults/` must not become `DELETE /admin/faults`.
    app.router.redirect_slashes = False
    app.state.shard = state
    return app

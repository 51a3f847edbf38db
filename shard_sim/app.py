"""The shard's admin app: runtime control (latency, faults), metrics and health, one
Starlette app per shard; `ByPort` serves several from one uvicorn (a packed process).

Plain Starlette rather than FastAPI: a small fixed API, in every shard process, needs no
generated documents. The data port is not an ASGI app at all (shard_sim.data_protocol).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from prometheus_client import Counter
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from shard_sim.decision_log import DecisionLog
from shard_sim.routes import admin, exposition
from shard_sim.settings import ShardSettings
from shard_sim.state import NoListener, ShardState
from shardstack_kernel.admin_token import token_or_new
from shardstack_kernel.problem import EXCEPTION_HANDLERS

_log = logging.getLogger("shard_sim")


def create_app(
    settings: ShardSettings | None = None, decision_log: DecisionLog | None = None
) -> Starlette:
    """One shard's admin app; `app.state.shard` is its state, whose `listener` the server
    sets to the shard's data port (until then, in process and in tests, `down` does nothing).
    `decision_log` is the process's, which the caller owns (packed shards share one)."""
    settings = settings or ShardSettings()
    token = token_or_new(settings.configured_token, _log, f"shard {settings.id}")
    state = ShardState.from_settings(settings, token, NoListener(), decision_log)
    app = Starlette(
        routes=[*admin.ROUTES, *exposition.ROUTES], exception_handlers=dict(EXCEPTION_HANDLERS)
    )
    # As on the gateway: `DELETE /admin/faults/` must not become `DELETE /admin/faults`.
    app.router.redirect_slashes = False
    app.state.shard = state
    app.add_middleware(_Counted, counter=state.metrics.admin_requests)
    return app


class _Counted:
    """Counts every HTTP request the admin app serves."""

    def __init__(self, app: ASGIApp, counter: Counter) -> None:
        self._app = app
        self._counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self._counter.inc()
        await self._app(scope, receive, send)


class ByPort:
    """Several shards' admin apps behind one server: each request goes to the app whose
    admin port it arrived on."""

    def __init__(self, apps: Mapping[int, ASGIApp]) -> None:
        self._apps = apps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._apps[scope["server"][1]](scope, receive, send)

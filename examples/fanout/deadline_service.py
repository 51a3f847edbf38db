"""The same search service with a deadline: it answers with what came back in time and
names the shards that did not, so one slow shard costs its own part of the answer, not
the whole answer's latency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

DEADLINE_S = 0.25


def create_app(shard_urls: list[str]) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.client = httpx.AsyncClient(timeout=10.0)
        app.state.semaphore = asyncio.Semaphore(100)
        yield
        await app.state.client.aclose()

    app = FastAPI(lifespan=lifespan)

    async def fetch(url: str) -> Any:
        async with app.state.semaphore:
            response = await app.state.client.get(f"{url}/data")
            return response.json()

    @app.get("/search")
    async def search() -> dict[str, Any]:
        calls = [asyncio.ensure_future(fetch(url)) for url in shard_urls]
        await asyncio.wait(calls, timeout=DEADLINE_S)
        for call in calls:
            call.cancel()  # the late ones: their connections are closed, not waited for
        answered = [call for call in calls if call.done() and not call.cancelled()]
        return {
            "results": [call.result() for call in answered if call.exception() is None],
            "missing": [index for index, call in enumerate(calls) if call not in answered],
        }

    return app
